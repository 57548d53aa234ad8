"""Opening the remote backend a URL names, behind a guard that turns anything its client raises into a
RemoteError, so that a remote's failure is a warning and a local build, never the build's failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aotbuild.cache import remote_url
from aotbuild.cache.store import IntegrityError, Kind, RemoteError, Store
from aotbuild.errors import UserError
from aotbuild.workspace import settings

T = TypeVar("T")


def open_remote(config: settings.RemoteSettings) -> Store:
    """The backend a URL names: http(s):// speaks Bazel's HTTP cache protocol, s3:// uses boto3."""
    from aotbuild.cache import signing

    scheme = config.url.split("://", 1)[0].lower() if "://" in config.url else ""
    # Only an uploading build signs; any build that lists public keys verifies what it downloads.
    signer = signing.load_signer(config.signing_key, config.signing_key_file) if config.upload else None
    verifier = signing.load_verifier(list(config.verify_keys))
    limits = {"deadline": config.deadline_s, "max_blob_bytes": config.max_blob_bytes,
              "signer": signer, "verifier": verifier}
    if scheme in ("http", "https"):
        from aotbuild.cache.http import HttpStore

        return HttpStore(config.url, token=config.token, user=config.user, password=config.password,
                         netrc_file=config.netrc, **limits)
    if scheme == "s3":
        from aotbuild.cache.s3 import S3Store

        return S3Store(config.url, endpoint=config.s3_endpoint, **limits)
    raise UserError(f"remote cache URL must start with http://, https:// or s3://, got scheme {scheme[:20]!r}")


class LazyRemote:
    """Opens the backend on first use: an action answered by the local cache never imports boto3 or
    http.client, nor reads ~/.netrc. Whatever else the client raises (a RecursionError from a redirect loop,
    a parser's ValueError) becomes a RemoteError: a remote's failure is never the build's."""

    def __init__(self, config: settings.RemoteSettings) -> None:
        self._config = config
        self._store: Store | None = None

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_remote(self._config)
        return self._store

    def _call(self, op: Callable[[Store], T]) -> T:
        try:
            return op(self._open())
        except (RemoteError, IntegrityError, UserError):
            raise
        except Exception as e:
            raise RemoteError(f"remote cache {self.name}: {type(e).__name__}: "
                              f"{_scrub(str(e), self._config)[:200]}") from None

    @property
    def name(self) -> str:
        return str(getattr(self._store, "name", None) or remote_url.redact(self._config.url))

    @property
    def notices(self) -> list[str]:
        return list(getattr(self._store, "notices", []))

    def get_blob(self, digest: str, dest: Path, limit: int | None = None) -> bool:
        return self._call(lambda s: s.get_blob(digest, dest, limit))

    def put_blob(self, digest: str, src: Path) -> None:
        self._call(lambda s: s.put_blob(digest, src))

    def get_action(self, key: str) -> dict[str, Any] | None:
        return self._call(lambda s: s.get_action(key))

    def put_action(self, key: str, value: dict[str, Any]) -> None:
        self._call(lambda s: s.put_action(key, value))

    def contains(self, kind: Kind, key: str) -> bool:
        return self._call(lambda s: s.contains(kind, key))

    def stats(self) -> dict[str, Any]:
        return self._store.stats() if self._store is not None else {}


def _scrub(text: str, config: settings.RemoteSettings) -> str:
    """`text` without any secret the configuration holds, in case a client quoted one."""
    _, user, password = remote_url.split_credentials(config.url)
    for secret in (config.token, config.password, password, config.signing_key):
        if secret:
            text = text.replace(secret, "<redacted>")
    return text

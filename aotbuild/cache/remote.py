"""The remote backends' shared parts: URLs without credentials, checked bodies, the guarded remote actions open."""

from __future__ import annotations

import contextlib
import io
import ipaddress
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aotbuild.cache.signing import Signer, Verifier
from aotbuild.cache.store import IntegrityError, Kind, RemoteError, Store, check_hex, decode_action, encode_action
from aotbuild.errors import UserError
from aotbuild.fsutil import copy_stream, pending_file
from aotbuild.hashing import HashingWriter
from aotbuild.workspace import settings

T = TypeVar("T")

MAX_ACTION_BYTES = 16 << 20  # action entries are small JSON; a bigger answer is not one of ours
MAX_BLOB_BYTES = 4 << 30  # a blob whose entry declares no size
DEADLINE_S = 600.0  # per request, whole answer included: a server sending 1 byte a minute is down, not slow
Sink = Callable[[], AbstractContextManager[Any]]


@dataclass(frozen=True)
class RemoteUrl:
    scheme: str  # lower case
    host: str
    port: int | None
    path: str  # without the trailing slash
    user: str | None = field(default=None, repr=False)  # `repr` never shows the credentials
    password: str | None = field(default=None, repr=False)

    @property
    def redacted(self) -> str:
        """The only form of the URL that may appear in a message, report or log."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{host}{port}{self.path}"


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without user info, user, password), percent-decoded. Everything before the LAST `@` after
    `scheme://` is `user[:password]`: in `http://ci:abc/def@host/` urllib would read host `ci`, port `abc`,
    and its error would quote the password; so a prefix holding an `@` must be written `%40`."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url, None, None
    userinfo, _, hostpart = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return f"{scheme}://{hostpart}", urllib.parse.unquote(user), urllib.parse.unquote(password) if colon else None


def parse(url: str) -> RemoteUrl:
    """The URL's parts; ValueError (naming scheme and host at most) if it has no host or a bad port."""
    clean, user, password = split_credentials(url.strip())
    try:
        parts = urllib.parse.urlsplit(clean)
        port = parts.port
    except ValueError:
        raise ValueError(f"cannot parse the remote cache URL {_safe_prefix(clean)}...: expected "
                     "scheme://host[:port]/prefix (a password with '/', '@' or ':' works as it is; "
                     "an '@' in the prefix must be written %40)") from None
    if not parts.hostname:
        raise ValueError(f"remote cache URL {_safe_prefix(clean)}... has no host")
    return RemoteUrl(parts.scheme.lower(), parts.hostname, port, parts.path.rstrip("/"), user, password)


def _safe_prefix(clean: str) -> str:
    scheme, _, rest = clean.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split(':', 1)[0]}"


def redact(url: str) -> str:
    """The redacted form of any URL string (credentials, query and fragment dropped), for messages."""
    try:
        return parse(url).redacted
    except ValueError:
        return _safe_prefix(split_credentials(url.strip())[0])


def plain_http_warning(url: RemoteUrl, sends_credentials: bool) -> str | None:
    """Basic auth and bearer tokens travel in clear over http://: anyone on the link can read and reuse them."""
    loopback_names = ("localhost", "localhost.localdomain", "ip6-localhost")
    if not sends_credentials or url.scheme != "http" or url.host.lower() in loopback_names:
        return None
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(url.host).is_loopback:
            return None
    return (f"remote cache {url.redacted}: credentials are sent over plain http:// to a host that is not "
            "loopback, readable by anyone on the link; use https://")


class RemoteStore:
    """A remote backend; subclasses provide `name`, `_prefix` (ending in `/` unless empty), `_head(path)`,
    `_put(path, body, size)` and `_get(path, limit, sink)`: stream the object into what `sink` opens, through
    `_receive`; False if it is absent."""

    name: str
    _prefix: str

    def __init__(self, deadline: float, max_blob_bytes: int, signer: Signer | None, verifier: Verifier | None) -> None:
        self._deadline, self._max_blob = deadline, max_blob_bytes
        self._signer, self._verifier = signer, verifier
        self.counters = {"requests": 0, "bytes_down": 0, "bytes_up": 0}
        self.notices: list[str] = []  # for the build summary, which shows each once

    def get_blob(self, digest: str, dest: Path, limit: int | None = None) -> bool:
        """A failed body (cut short, longer than `limit` or the cap, bad digest) is an IntegrityError at once:
        the caller counts failures per blob and stops asking after the second."""
        limit = self._max_blob if limit is None else min(limit, self._max_blob)
        return self._get(self._path("cas", digest), limit, lambda: verified_download(dest, digest, self.name))

    def put_blob(self, digest: str, src: Path) -> None:
        self._put(self._path("cas", digest), src, src.stat().st_size)

    def get_action(self, key: str) -> dict[str, Any] | None:
        return self._get_action(key, self._verifier)

    def _get_action(self, key: str, verifier: Verifier | None) -> dict[str, Any] | None:
        body = io.BytesIO()
        if not self._get(self._path("ac", key), MAX_ACTION_BYTES, lambda: nullcontext(body)):
            return None
        return decode_action(key, body.getvalue(), self.name, verifier)

    def put_action(self, key: str, value: dict[str, Any]) -> None:
        body = encode_action(key, value, self._signer)
        self._put(self._path("ac", key), body, len(body))

    def contains(self, kind: Kind, key: str) -> bool:
        if kind == "ac" and self._signer is not None:
            # A signing uploader overwrites an entry it did not sign (older, unsigned): readers would refuse it.
            try:
                return self._get_action(key, self._signer.verifier()) is not None
            except IntegrityError:
                return False
        return self._head(self._path(kind, key))

    def stats(self) -> dict[str, Any]:
        return {"url": self.name, **self.counters}

    def _path(self, kind: str, key: str) -> str:
        return f"{self._prefix}{kind}/{check_hex('digest' if kind == 'cas' else 'key', key)}"

    def _receive(self, body: Any, size: int | None, out: Any, limit: int, what: str,
                 expired: Callable[[], bool]) -> None:
        """Copy at most `limit` bytes of a body announced as `size` (None: not announced); one announced or found
        longer, or cut short, is an IntegrityError; one still arriving when `expired()`, a RemoteError."""
        if size is not None and size > limit:
            raise IntegrityError(f"remote cache {self.name}: {what} announced {size} bytes, more than the {limit} "
                                 "expected; not downloaded")
        try:
            n = copy_stream(body, out, limit + 1)
        except Exception as e:  # the client's, the socket's and the disk's errors alike: no whole body
            if expired():
                raise self._too_slow(what) from None
            if isinstance(e, IntegrityError):
                raise
            # The exception's text is left out: a client's may quote the request.
            raise IntegrityError(f"remote cache {self.name}: {what}: body cut off: {type(e).__name__}") from None
        if expired():  # a body closed under the copy by a deadline reads as a short one
            raise self._too_slow(what)
        self.counters["bytes_down"] += n
        if n > limit:
            raise IntegrityError(f"remote cache {self.name}: {what} sent more than the {limit} bytes expected; cut")
        if size is not None and n != size:  # http.client returns short data instead of raising when a body ends early
            raise IntegrityError(f"remote cache {self.name}: {what}: body cut off after {n} of {size} bytes")

    def _too_slow(self, what: str) -> RemoteError:
        return RemoteError(f"remote cache {self.name}: {what} got no complete answer within {self._deadline:g} s")


@contextmanager
def verified_download(dest: Path, digest: str, where: str) -> Iterator[HashingWriter]:
    """A file to stream a blob into; on exit its sha256 is checked and it is renamed onto `dest`. Other bytes
    raise IntegrityError, and any failure (a body cut short included) leaves `dest` untouched."""
    with pending_file(dest.parent, f"{dest.name}.download") as pending:
        hashing = HashingWriter(pending.file)
        yield hashing
        got = hashing.sha256.hexdigest()
        if got != digest:
            raise IntegrityError(f"remote cache {where}/cas/{digest} failed its digest check ({hashing.size} bytes "
                                 f"hash to {got[:16]}...)")
        pending.commit(dest)


def open_remote(config: settings.RemoteSettings) -> RemoteStore:
    """The backend a URL names: http(s):// speaks Bazel's HTTP cache protocol, s3:// uses boto3."""
    from aotbuild.cache import signing

    scheme = config.url.split("://", 1)[0].lower() if "://" in config.url else ""
    # Only an uploading build signs; any build that lists public keys verifies what it downloads.
    signer = signing.load_signer(config.signing_key, config.signing_key_file) if config.upload else None
    limits = {"deadline": config.deadline_s, "max_blob_bytes": config.max_blob_bytes, "signer": signer,
              "verifier": signing.load_verifier(list(config.verify_keys))}
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

    def _call(self, op: Callable[[Store], T]) -> T:
        try:
            if self._store is None:
                self._store = open_remote(self._config)
            return op(self._store)
        except (RemoteError, IntegrityError, UserError):
            raise
        except Exception as e:
            text = str(e)
            _, _, password = split_credentials(self._config.url)
            for secret in (self._config.token, self._config.password, password, self._config.signing_key):
                if secret:  # in case the client quoted one
                    text = text.replace(secret, "<redacted>")
            raise RemoteError(f"remote cache {self.name}: {type(e).__name__}: {text[:200]}") from None

    @property
    def name(self) -> str:
        return str(getattr(self._store, "name", None) or redact(self._config.url))

    @property
    def notices(self) -> list[str]:
        return list(getattr(self._store, "notices", []))

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method not in ("get_blob", "put_blob", "get_action", "put_action", "contains"):
            raise AttributeError(method)
        return lambda *args: self._call(lambda store: getattr(store, method)(*args))  # the Store protocol, guarded

    def stats(self) -> dict[str, Any]:
        return self._store.stats() if self._store is not None else {}

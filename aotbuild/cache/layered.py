"""The cache actions use: the local store first, then the remote; remote hits fill the local cache.

Uploads happen only when asked for (--remote-upload), blobs before the action entry that points at them. A
remote that fails (down, slow, answering errors) is dropped for the rest of the build with one warning, and
the build goes on with local work, unless --remote-required. Bad bytes from the remote are never used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import filelock

from aotbuild.cache.local import CacheCounters, LocalStore
from aotbuild.cache.store import IntegrityError, Kind, RemoteError, Store
from aotbuild.errors import UserError
from aotbuild.fsutil import temp_path
from aotbuild.workspace import settings

T = TypeVar("T")


def open_remote(config: settings.RemoteSettings) -> Store:
    """The backend a URL names: http(s):// speaks Bazel's HTTP cache protocol, s3:// uses boto3."""
    scheme = config.url.split("://", 1)[0].lower() if "://" in config.url else ""
    if scheme in ("http", "https"):
        from aotbuild.cache.http import HttpStore

        return HttpStore(config.url, token=config.token, user=config.user, password=config.password,
                         netrc_file=config.netrc)
    if scheme == "s3":
        from aotbuild.cache.s3 import S3Store

        return S3Store(config.url, endpoint=config.s3_endpoint)
    raise UserError(f"remote cache URL must start with http://, https:// or s3://, got scheme {scheme!r}")


def open_layered(env: Mapping[str, str], local: LocalStore) -> LayeredStore:
    """The store an action uses: `local`, then the remote the CLI configured through the environment."""
    config = settings.remote_settings(env)
    if config is None:
        return LayeredStore(local)
    events = settings.events_file(env)
    # Shared by every action of one build: once one finds the remote down, the others skip it at once.
    marker = settings.remote_down_file(events) if events is not None else None
    remote = _LazyRemote(config) if marker is None or not marker.exists() else None
    return LayeredStore(local, remote, upload=config.upload, required=config.required, down_marker=marker)


class _LazyRemote:
    """Opens the backend on first use: an action answered by the local cache never imports boto3 or
    http.client, nor reads ~/.netrc."""

    def __init__(self, config: settings.RemoteSettings) -> None:
        self._config = config
        self._store: Store | None = None

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_remote(self._config)
        return self._store

    @property
    def name(self) -> str:
        return str(getattr(self._open(), "name", "remote"))

    def get_blob(self, digest: str, dest: Path) -> bool:
        return self._open().get_blob(digest, dest)

    def put_blob(self, digest: str, src: Path) -> None:
        self._open().put_blob(digest, src)

    def get_action(self, key: str) -> dict[str, Any] | None:
        return self._open().get_action(key)

    def put_action(self, key: str, value: dict[str, Any]) -> None:
        self._open().put_action(key, value)

    def contains(self, kind: Kind, key: str) -> bool:
        return self._open().contains(kind, key)

    def stats(self) -> dict[str, Any]:
        return self._store.stats() if self._store is not None else {}


class LayeredStore:
    """LocalStore's interface for actions, with a remote behind it."""

    def __init__(self, local: LocalStore, remote: Store | None = None, *, upload: bool = False,
                 required: bool = False, down_marker: Path | None = None) -> None:
        self.local = local
        self.remote = remote
        self.backend = remote  # kept after the remote is dropped, for its traffic counters
        self.upload = upload
        self.required = required
        self.down_marker = down_marker
        self.remote_counts = {"hits": 0, "misses": 0, "uploads": 0}
        self.warnings: list[str] = []  # remote trouble, for the build summary; each names what was skipped

    # -- what stays local

    @property
    def root(self) -> Path:
        return self.local.root

    @property
    def counters(self) -> CacheCounters:
        return self.local.counters

    def lock(self, key: str, timeout: float = -1) -> filelock.FileLock:
        return self.local.lock(key, timeout)

    def put_bytes(self, data: bytes) -> str:
        return self.local.put_bytes(data)  # uploaded with the action entry that points at it

    def put_file(self, path: Path) -> str:
        return self.local.put_file(path)

    def put_written(self, write: Callable[[BinaryIO], Any], what: str = "a new blob", durable: bool = True) -> str:
        return self.local.put_written(write, what, durable)

    def has_blob(self, digest: str) -> bool:
        return self.local.has_blob(digest)

    # -- local first, then remote

    def get_bytes(self, digest: str) -> bytes | None:
        data = self.local.get_bytes(digest)
        if data is None and self.guard(lambda: self._fetch(digest), False):
            data = self.local.get_bytes(digest)
        return data

    def blob_path(self, digest: str) -> Path | None:
        path = self.local.blob_path(digest)
        if path is None and self.guard(lambda: self._fetch(digest), False):
            path = self.local.blob_path(digest)
        return path

    def get_action(self, key: str) -> dict[str, Any] | None:
        value = self.local.get_action(key)
        if value is not None:
            if self.upload:
                # A CI writer with a warm local cache still fills an empty remote.
                self.guard(lambda: self._upload(key, value, only_if_absent=True), None)
            return value
        return self.guard(lambda: self._remote_action(key), None)

    def put_action(self, key: str, value: dict[str, Any]) -> None:
        self.local.put_action(key, value)
        if self.upload:
            self.guard(lambda: self._upload(key, value, only_if_absent=False), None)

    def remote_report(self) -> dict[str, Any]:
        """For the action's event: hits, misses, uploads, traffic and warnings; no credentials."""
        traffic = self.backend.stats() if self.backend is not None else {}
        if not traffic and not self.warnings:
            return {}  # the remote was never asked
        return {**traffic, **self.remote_counts, "warnings": self.warnings}

    # -- the remote side

    def guard(self, op: Callable[[], T], default: T) -> T:
        """Run a remote operation; a failing remote is dropped with one warning (or fails the build if required)."""
        if self.down_marker is not None and self.remote is not None and self.down_marker.exists():
            self.remote = None  # another action of this build found it down: do not wait on it again
        if self.remote is None:
            return default
        try:
            return op()
        except RemoteError as e:
            self.fail(e)
            return default

    def fail(self, e: RemoteError) -> None:
        if self.required:
            raise RemoteError(f"{e}\n  (--remote-required: a cache failure fails the build)") from None
        self.warnings.append(f"{e}; continuing without the remote cache")
        self.remote = None
        if self.down_marker is not None:
            self.down_marker.touch()

    def _remote_action(self, key: str) -> dict[str, Any] | None:
        if self.remote is None:
            return None
        try:
            value = self.remote.get_action(key)
        except IntegrityError as e:
            self.warnings.append(f"{e}; not used")
            value = None
        if value is None:
            self.remote_counts["misses"] += 1
            return None
        for digest in value.get("blobs", []):
            reported = len(self.warnings)
            if not self.local.has_blob(digest) and not self._fetch(digest):
                if len(self.warnings) == reported:  # absent, rather than bad bytes (reported already)
                    self.warnings.append(f"remote cache {self.remote_name()}/ac/{key} points at cas/{digest}, "
                                         "which the remote does not have; not used")
                self.remote_counts["misses"] += 1
                return None
        self.local.put_action(key, value)  # after its blobs, as every writer does
        self.remote_counts["hits"] += 1
        return value

    def _fetch(self, digest: str) -> bool:
        """Download a blob into the local cache; False if the remote lacks it or its bytes are bad."""
        if self.remote is None:
            return False
        # In the local store's temp dir: gc removes what a crash leaves.
        with temp_path(self.local.base / "tmp", "remote") as tmp:
            try:
                if not self.remote.get_blob(digest, tmp):
                    return False
                self.local.put_blob(digest, tmp)
                return True
            except IntegrityError as e:
                self.warnings.append(f"{e}; not used, rebuilt locally")
                return False

    def _upload(self, key: str, value: dict[str, Any], only_if_absent: bool) -> None:
        remote = self.remote
        if remote is None or (only_if_absent and remote.contains("ac", key)):
            return
        for digest in value.get("blobs", []):
            if remote.contains("cas", digest):
                continue
            path = self.local.blob_path(digest)
            if path is None:
                return  # evicted locally: an entry without its blob would only be a remote miss
            remote.put_blob(digest, path)
        remote.put_action(key, value)  # last: the blobs it names are already there
        self.remote_counts["uploads"] += 1

    def remote_name(self) -> str:
        return getattr(self.remote, "name", "remote cache")

"""The cache actions use: the local store first, then the remote; remote hits fill the local cache."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from aotbuild.cache.local import LocalStore
from aotbuild.cache.remote import LazyRemote
from aotbuild.cache.store import IntegrityError, RemoteError, Store, is_hex
from aotbuild.fsutil import temp_path
from aotbuild.workspace import settings

T = TypeVar("T")
BLOB_TRIES = 2  # per blob and build: one the remote failed to deliver twice is not asked for again


def open_layered(env: Mapping[str, str], local: LocalStore) -> LayeredStore:
    """The store an action uses: `local`, then the remote the CLI configured through the environment."""
    config = settings.remote_settings(env)
    if config is None:
        return LayeredStore(local)
    events = settings.events_file(env)
    # Shared by every action of one build: once one finds the remote down, the others skip it at once.
    marker = settings.remote_down_file(events) if events is not None else None
    remote = LazyRemote(config) if marker is None or not marker.exists() else None
    failed = settings.remote_failed_file(events) if events is not None else None
    return LayeredStore(local, remote, upload=config.upload, required=config.required, down_marker=marker,
                        failed_file=failed)


def declared_sizes(payload: dict[str, Any]) -> dict[str, int]:
    """Blob sizes an entry declares (compile entries: {"pt2": {"sha256": ..., "size": ...}}): a download
    longer than that is cut. Blobs without a declared size are bounded by the configured cap."""
    return {value["sha256"]: max(0, value["size"]) for value in payload.values()
            if isinstance(value, dict) and is_hex(value.get("sha256")) and type(value.get("size")) is int}


class LayeredStore:
    """LocalStore's interface for actions, with a remote behind it."""

    def __init__(self, local: LocalStore, remote: Store | None = None, *, upload: bool = False,
                 required: bool = False, down_marker: Path | None = None, failed_file: Path | None = None) -> None:
        self.local = local
        self.remote = remote
        self.backend = remote  # kept after the remote is dropped, for its traffic counters
        self.upload = upload
        self.required = required
        self.down_marker = down_marker
        self.failed_file = failed_file  # one line per blob the remote failed to deliver, shared by the build
        self.failed_here: list[str] = []  # the same, of this process (for a build without an events file)
        self.remote_counts = {"hits": 0, "misses": 0, "uploads": 0}
        self.warnings: list[str] = []  # remote trouble, for the build summary; each names what was skipped

    def __getattr__(self, name: str) -> Any:
        # What stays local: root, counters, locks and writes (a blob goes up with the entry that names it).
        return getattr(self.local, name)

    # -- local first, then remote

    def get_bytes(self, digest: str) -> bytes | None:
        return self._blob(self.local.get_bytes, digest)

    def blob_path(self, digest: str) -> Path | None:
        return self._blob(self.local.blob_path, digest)

    def _blob(self, read: Callable[[str], T | None], digest: str) -> T | None:
        found = read(digest)
        if found is None and self.guard(lambda remote: self._fetch(remote, digest), False):
            found = read(digest)
        return found

    def get_action(self, key: str) -> dict[str, Any] | None:
        value = self.local.get_action(key)
        if value is not None:
            if self.upload:
                # A CI writer with a warm local cache still fills an empty remote.
                self.guard(lambda remote: self._upload(remote, key, value, only_if_absent=True), None)
            return value
        return self.guard(lambda remote: self._remote_action(remote, key), None)

    def put_action(self, key: str, value: dict[str, Any]) -> None:
        self.local.put_action(key, value)
        if self.upload:
            self.guard(lambda remote: self._upload(remote, key, value, only_if_absent=False), None)

    def refresh_action(self, key: str) -> None:
        """Replace the local entry for `key` with the remote's: another machine (a cluster node) just wrote it,
        and a local hit would hide it."""
        self.guard(lambda remote: self._remote_action(remote, key), None)

    def remote_report(self) -> dict[str, Any]:
        """For the action's event: hits, misses, uploads, traffic and warnings; no credentials."""
        traffic = self.backend.stats() if self.backend is not None else {}
        notices = list(getattr(self.backend, "notices", []))
        if not traffic and not self.warnings:
            return {}  # the remote was never asked
        return {**traffic, **self.remote_counts, "warnings": notices + self.warnings}

    # -- the remote side

    def guard(self, op: Callable[[Store], T], default: T) -> T:
        """Run `op` on the remote; a failing remote is dropped with one warning (or fails the build if required)."""
        if self.down_marker is not None and self.remote is not None and self.down_marker.exists():
            self.remote = None  # another action of this build found it down: do not wait on it again
        if self.remote is None:
            return default
        try:
            return op(self.remote)
        except RemoteError as e:
            if self.required:
                raise RemoteError(f"{e}\n  (--remote-required: a cache failure fails the build)") from None
            self.warnings.append(f"{e}; continuing without the remote cache")
            self.remote = None
            if self.down_marker is not None:
                self.down_marker.touch()
            return default

    def _remote_action(self, remote: Store, key: str) -> dict[str, Any] | None:
        try:
            value = remote.get_action(key)
        except IntegrityError as e:
            self.warnings.append(f"{e}; not used")
            value = None
        if value is None:
            self.remote_counts["misses"] += 1
            return None
        sizes = declared_sizes(value)
        for digest in [d for d in value.get("blobs", []) if not self.local.contains("cas", d)]:
            if (got := self._fetch(remote, digest, sizes.get(digest))) is not True:
                if got is False:  # absent, rather than bad bytes (reported once already)
                    name = getattr(remote, "name", "")
                    self.warnings.append(f"remote cache {name}/ac/{key} points at cas/{digest}, which the remote "
                                         "does not have; not used")
                self.remote_counts["misses"] += 1
                return None
        self.local.put_action(key, value)  # after its blobs, as every writer does
        self.remote_counts["hits"] += 1
        return value

    def _fetch(self, remote: Store, digest: str, limit: int | None = None) -> bool | None:
        """Download a blob into the local cache: True when done, False if the remote lacks it, None if its bytes
        are bad (cut short, longer than `limit`, wrong digest: warned about). A blob the remote failed twice in
        this build is not asked for again."""
        problem: IntegrityError | None = None  # None: failed twice earlier in this build, warned about then
        while self._failures(digest) < BLOB_TRIES:
            # In the local store's temp dir: gc removes what a crash leaves, the context manager the rest.
            with temp_path(self.local.base / "tmp", "remote") as tmp:
                try:
                    if not remote.get_blob(digest, tmp, limit):
                        return False
                    self.local.put_blob(digest, tmp)
                    return True
                except IntegrityError as e:
                    self.failed_here.append(digest)
                    if self.failed_file is not None:
                        with open(self.failed_file, "a") as f:  # O_APPEND: concurrent one-line writes stay whole
                            f.write(f"{digest}\n")
                    problem = e
        if problem is not None:
            self.warnings.append(f"{problem}; not used, rebuilt locally")
        return None

    def _failures(self, digest: str) -> int:
        shared = ""
        if self.failed_file is not None:
            with contextlib.suppress(FileNotFoundError):
                shared = self.failed_file.read_text()
        return max(shared.split().count(digest), self.failed_here.count(digest))

    def _upload(self, remote: Store, key: str, value: dict[str, Any], only_if_absent: bool) -> None:
        if only_if_absent and remote.contains("ac", key):
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


"""Local cache: content-addressed blobs plus a verified action cache, with atomic writes, locks and eviction."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from aotbuild.cache import eviction
from aotbuild.cache.store import check_hex, encode_action, is_hex, parse_action
from aotbuild.errors import CacheError
from aotbuild.fsutil import atomic_write, copy_stream, pending_file
from aotbuild.hashing import HashingWriter, sha256_bytes, sha256_file, sha256_stream

if TYPE_CHECKING:
    import filelock

LAYOUT = "v1"
BLOB_MODE = 0o444


@dataclass
class CacheCounters:
    """Per-process statistics that actions report; `corrupt` names entries found bad and removed."""

    hits: int = 0
    misses: int = 0
    corrupt: list[str] = field(default_factory=list)


class LocalStore:
    """A cache directory shared by concurrent processes; holds no state beyond its counters."""

    def __init__(self, root: Path, read_only: bool = False) -> None:
        self.root = Path(root)
        self.counters = CacheCounters()
        self.base = self.root / LAYOUT  # every entry, lock and temp file lives under it
        self.read_only = read_only  # a corrupt entry is then only reported (and missed), never removed
        self.skipped_in_use = 0  # entries the last gc left because a running build may be using them

    def _path(self, kind: str, key: str, suffix: str = "") -> Path:
        k = check_hex("digest" if kind == "cas" else "key", key)
        return self.base / kind / k[:2] / f"{k}{suffix}"

    def put_bytes(self, data: bytes) -> str:
        """Store `data` read-only under its sha256 and return the digest; a sound existing copy is kept."""
        return self.put_written(lambda f: f.write(data))

    def put_file(self, path: Path) -> str:
        with open(path, "rb") as src:  # errors about the source are the caller's, not the cache's
            return self.put_written(lambda dst: copy_stream(src, dst), str(path))

    def put_written(self, write: Callable[[BinaryIO], Any], what: str = "a new blob", durable: bool = True) -> str:
        """Store what `write` writes into the (seekable, real) file it is given and return its digest: a model's
        weights go straight to disk. `durable=False` skips the fsync, for blobs only this store reads (it
        re-verifies every read); artifacts stay durable: aot-out/ hard-links them and trusts them as they are."""
        try:
            # The destination depends on the digest: write into tmp/ (same filesystem), rename after.
            with pending_file(self.base / "tmp", "put") as pending:
                # Hashed as it is written: read back only when the writer went back, or wrote around the wrapper.
                sink = HashingWriter(pending.file)
                write(sink)
                pending.file.flush()
                whole = sink.sequential and os.fstat(pending.file.fileno()).st_size == sink.size
                digest = sink.sha256.hexdigest() if whole else sha256_file(pending.path)
                dest = self._path("cas", digest)
                if not self._verified(dest, digest):
                    pending.commit(dest, BLOB_MODE, durable)
            return digest
        except OSError as e:
            raise CacheError(f"cannot store {what} in cache {self.root}: {e}") from e

    def get_bytes(self, digest: str) -> bytes | None:
        """The blob's bytes, re-verified; None if absent or corrupt (a corrupt blob is removed)."""
        path = self._path("cas", digest)
        if (got := _read(path)) is None:
            return None
        if not self._intact(path, got[1], sha256_bytes(got[0]), digest):
            return None
        _touch(path)
        return got[0]

    def blob_path(self, digest: str) -> Path | None:
        """Path of a verified blob, for linking or copying out; None if absent or corrupt (then removed)."""
        path = self._path("cas", digest)
        if not self._verified(path, digest):
            return None
        _touch(path)
        return path

    # The Store protocol, so that remote backends and this one pass one contract suite.
    def get_blob(self, digest: str, dest: Path, limit: int | None = None) -> bool:
        """Copy the verified blob to `dest` (streamed); False if absent or corrupt. `limit` is for remotes."""
        path = self.blob_path(digest)
        if path is None:
            return False
        try:
            shutil.copyfile(path, dest)
        except FileNotFoundError:
            return False  # evicted between check and copy
        return True

    def put_blob(self, digest: str, src: Path) -> None:
        if self.put_file(src) != digest:
            raise CacheError(f"{src} does not hash to {digest}")

    def contains(self, kind: str, key: str) -> bool:
        """Whether the entry exists; not verified, so cheap enough for every AC lookup."""
        return self._path(kind, key).is_file()

    def _verified(self, path: Path, digest: str) -> bool:
        """Rehash `path`; a mismatch removes it and records it as corrupt."""
        try:
            with open(path, "rb") as f:
                st, got = os.fstat(f.fileno()), sha256_stream(f)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise CacheError(f"cannot read cache blob {path}: {e}") from e
        return self._intact(path, st, got, digest)

    def _intact(self, path: Path, seen: os.stat_result, got: str, digest: str) -> bool:
        if got != digest:
            self._discard(path, seen, f"cas/{digest}")
        return got == digest

    def _discard(self, path: Path, seen: os.stat_result, name: str) -> None:
        # Only unlink the file we judged: a concurrent writer may already have replaced it with a good copy.
        if not self.read_only:
            try:
                now = os.stat(path)
                if (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise CacheError(f"cannot remove corrupt cache entry {path}: {e}") from e
        self.counters.corrupt.append(name)

    def put_action(self, key: str, value: dict[str, Any]) -> None:
        """Record `value` under `key` with its own checksum; the last writer wins."""
        path = self._path("ac", key)
        blobs = value.get("blobs", [])
        if not (isinstance(blobs, list) and all(is_hex(d) for d in blobs)):
            raise CacheError(f"action {key}: 'blobs' must be a list of 64-hex-character digests, got {blobs!r}")
        try:
            atomic_write(path, encode_action(key, value))
        except (TypeError, ValueError) as e:
            raise CacheError(f"action {key}: value is not JSON-serializable: {e}") from e
        except OSError as e:
            raise CacheError(f"cannot write action cache entry {path}: {e}") from e

    def get_action(self, key: str) -> dict[str, Any] | None:
        """The verified value for `key`, or None (a miss) if absent, corrupt, or naming a missing blob."""
        value = self._lookup_action(key)
        if value is None:
            self.counters.misses += 1
        else:
            self.counters.hits += 1
        return value

    def _lookup_action(self, key: str) -> dict[str, Any] | None:
        path = self._path("ac", key)
        value = self._read_action(key, path)
        # An entry whose outputs were evicted is useless; the rebuild overwrites it, so leave it in place.
        if value is None or not self._all_present(value.get("blobs", [])):
            return None
        _touch(path)
        return value

    def _all_present(self, blobs: list[str]) -> bool:
        # Touching as we check keeps a hot entry's blobs young, so gc does not leave it dangling.
        return all(_touch(self._path("cas", d)) for d in blobs)

    def _read_action(self, key: str, path: Path) -> dict[str, Any] | None:
        """Parse and checksum an AC entry; a bad one is removed and recorded as corrupt."""
        if (got := _read(path)) is None:
            return None
        # Never signature-checked: this machine wrote it, or checked it first.
        parsed = parse_action(key, got[0])
        if parsed is None:
            self._discard(path, got[1], f"ac/{key}")
            return None
        return parsed[0]

    def lock(self, key: str, timeout: float = -1) -> filelock.FileLock:
        """An inter-process lock for `key` (not yet acquired); not reentrant across separate calls."""
        path = self._path("locks", key, ".lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot create lock directory {path.parent}: {e}") from e
        import filelock  # here: a no-op build imports this module (for LAYOUT) and takes no lock: 18 ms

        # Not a singleton: gc must see a lock held elsewhere in this process as held, too.
        return filelock.FileLock(path, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        """Entry counts and sizes; temp files are not entries."""
        out: dict[str, Any] = {"cas_entries": 0, "cas_bytes": 0, "ac_entries": 0, "ac_bytes": 0}
        for e in eviction.scan(self.base)[0]:
            kind = e.name.split("/", 1)[0]
            out[f"{kind}_entries"] += 1
            out[f"{kind}_bytes"] += e.size
        return {**out, "root": str(self.root)}

    def verify(self) -> list[str]:
        """Rehash every blob and check every action entry; remove and return the corrupt ones."""
        start = len(self.counters.corrupt)
        entries, _ = eviction.scan(self.base)
        for e in entries:
            if e.name.startswith("cas/"):
                self._verified(e.path, e.key)
            else:
                self._read_action(e.key, e.path)
        return self.counters.corrupt[start:]

    def gc(self, max_bytes: int | None = None, max_age_s: float | None = None, now: float | None = None) -> list[str]:
        return eviction.gc(self, max_bytes, max_age_s, now)



class OverlayStore(LocalStore):
    """A read-only cache (`lower`) seen through a writable overlay (`root`, inside aot-out/): reads try both,
    writes (and locks) go to the overlay."""

    def __init__(self, root: Path, lower: Path) -> None:
        super().__init__(root)
        self.lower = LocalStore(lower, read_only=True)
        self.lower.counters = self.counters  # one set of statistics for the action's report

    def get_bytes(self, digest: str) -> bytes | None:
        data = super().get_bytes(digest)
        return data if data is not None else self.lower.get_bytes(digest)

    def blob_path(self, digest: str) -> Path | None:
        return super().blob_path(digest) or self.lower.blob_path(digest)

    def contains(self, kind: str, key: str) -> bool:
        return super().contains(kind, key) or self.lower.contains(kind, key)

    def _lookup_action(self, key: str) -> dict[str, Any] | None:
        value = super()._lookup_action(key)
        return value if value is not None else self.lower._lookup_action(key)

    def _all_present(self, blobs: list[str]) -> bool:
        # An overlay entry may point at blobs of either layer (a program exported here, an artifact cached there).
        return all(_touch(self._path("cas", d)) or self.lower.contains("cas", d) for d in blobs)


def _read(path: Path) -> tuple[bytes, os.stat_result] | None:
    """Contents and identity of a cache file, or None if it is absent."""
    try:
        with open(path, "rb") as f:
            return f.read(), os.fstat(f.fileno())
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CacheError(f"cannot read cache entry {path}: {e}") from e


def _touch(path: Path) -> bool:
    """Refresh mtime, gc's LRU clock; False if `path` is missing. Other failures only make eviction earlier."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        return path.is_file()
    return True

"""A read-only cache seen through a writable overlay: reads try both, writes (and locks) go to the overlay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aotbuild.cache.local import LocalStore, _touch
from aotbuild.cache.store import is_hex


class OverlayStore(LocalStore):
    """`root` is the writable overlay (inside aot-out/); `lower` is the shared cache that cannot be written."""

    def __init__(self, root: Path, lower: Path) -> None:
        super().__init__(root)
        self.lower = LocalStore(lower, read_only=True)
        self.lower.counters = self.counters  # one set of statistics for the action's report

    def get_bytes(self, digest: str) -> bytes | None:
        data = super().get_bytes(digest)
        return data if data is not None else self.lower.get_bytes(digest)

    def blob_path(self, digest: str) -> Path | None:
        return super().blob_path(digest) or self.lower.blob_path(digest)

    def has_blob(self, digest: str) -> bool:
        return super().has_blob(digest) or self.lower.has_blob(digest)

    def _lookup_action(self, key: str) -> dict[str, Any] | None:
        value = super()._lookup_action(key)
        return value if value is not None else self.lower._lookup_action(key)

    def _all_present(self, blobs: Any) -> bool:
        # An overlay entry may point at blobs of either layer (a program exported here, an artifact cached there).
        return isinstance(blobs, list) and all(
            is_hex(d) and (_touch(self._path("cas", d)) or self.lower.has_blob(d)) for d in blobs)

"""Materialize cached artifacts into aot-out: immutable versioned files, stable aliases, manifest.json. No torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aotbuild.fsutil import atomic_symlink, link_or_copy, write_if_changed
from aotbuild.hashing import pretty_json
from aotbuild.layout import TargetPaths
from aotbuild.rules.compile import ARTIFACTS, MANIFEST


def materialize(blobs: dict[str, Path], target_dir: Path, paths: TargetPaths, entry: dict[str, Any],
                manifest: dict[str, Any], durable: bool = True) -> bool:
    """Place the artifacts of `entry` from their verified cache `blobs` (digest -> path), then the aliases,
    then the manifest (last, so a crash before it leaves the edge dirty). Returns whether manifest.json changed."""
    current = set()
    artifacts = {}
    for kind in ARTIFACTS:
        digest = entry[kind]["sha256"]
        name = paths.versioned(digest, kind)
        current.add(name)
        dst = target_dir / name
        # Re-place unless it is the cache's own verified inode: a stale or damaged copy must not survive.
        if not (dst.exists() and os.path.samefile(dst, blobs[digest])):
            link_or_copy(blobs[digest], dst)  # a hard link from the cache, read-only like the blob
        atomic_symlink(target_dir / paths.alias(kind), name)  # readers see the old or the new artifact, never none
        # Names from the local plan, digest and size from the checked entry: a cached `file` never wins.
        artifacts[kind] = {"file": name, "alias": paths.alias(kind), "sha256": digest, "size": entry[kind]["size"]}
    for old in target_dir.iterdir():  # earlier versions live on in the cache; keep the directory to the current one
        if old.name.startswith(f"{paths.label.name}-") and old.suffix.lstrip(".") in ARTIFACTS and old.name not in current:
            old.unlink()
    return write_if_changed(target_dir / MANIFEST, pretty_json({**manifest, "artifacts": artifacts}), durable)

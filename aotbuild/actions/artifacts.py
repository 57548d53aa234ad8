"""Materialize cached artifacts into aot-out: immutable versioned files, stable aliases, manifest.json. No torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aotbuild.fsutil import write_if_changed
from aotbuild.hashing import pretty_json
from aotbuild.layout import TargetPaths

KINDS = ("so", "pt2")


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard link from the cache (free, and read-only like the blob); copy across filesystems."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        with open(src, "rb") as s, open(tmp, "wb") as d:
            while chunk := s.read(1 << 20):
                d.write(chunk)
            d.flush()
            os.fsync(d.fileno())
        os.chmod(tmp, 0o444)
    os.replace(tmp, dst)


def _point_alias(alias: Path, target_name: str) -> None:
    if alias.is_symlink() and os.readlink(alias) == target_name:
        return
    tmp = alias.with_name(f".{alias.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target_name, tmp)
    os.replace(tmp, alias)  # rename over the old link: readers see the old or the new artifact, never none


def materialize(blobs: dict[str, Path], target_dir: Path, paths: TargetPaths, entry: dict[str, Any],
                manifest: dict[str, Any], durable: bool = True) -> bool:
    """Place the artifacts of `entry` from their verified cache `blobs` (digest -> path), then the aliases,
    then the manifest (last, so a crash before it leaves the edge dirty). Returns whether manifest.json changed."""
    current = set()
    artifacts = {}
    for kind in KINDS:
        digest = entry[kind]["sha256"]
        name = paths.versioned(digest, kind)
        current.add(name)
        dst = target_dir / name
        # Re-place unless it is the cache's own verified inode: a stale or damaged copy must not survive.
        if not (dst.exists() and os.path.samefile(dst, blobs[digest])):
            _link_or_copy(blobs[digest], dst)
        _point_alias(target_dir / paths.alias(kind), name)
        artifacts[kind] = {"file": name, "alias": paths.alias(kind), **entry[kind]}
    for old in target_dir.iterdir():  # earlier versions live on in the cache; keep the directory to the current one
        if old.name.startswith(f"{paths.label.name}-") and old.suffix.lstrip(".") in KINDS and old.name not in current:
            old.unlink()
    return write_if_changed(target_dir / "manifest.json", pretty_json({**manifest, "artifacts": artifacts}), durable)

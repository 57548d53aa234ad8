"""The cache entries a workspace's targets were last built from, read from their output files (gc keeps them)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from aotbuild import layout, rules


def target_dirs(out_dir: Path) -> Iterator[Path]:
    """Every target directory under aot-out/, without following symlinks."""
    for dirpath, dirnames, _ in os.walk(out_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for d in dirnames:
            if d.startswith(layout.TARGET_PREFIX):
                yield Path(dirpath) / d


def referenced_entries(out_dir: Path) -> set[str]:
    """Cache entries ("ac/<key>", "cas/<digest>") that the targets under `out_dir` were last built from."""
    names: set[str] = set()
    refs: dict[str, list[rules.CacheRef]] = {}  # output file -> its fields that name cache entries
    for ref in (ref for kind in rules.kinds() for ref in kind.cache_refs):
        refs.setdefault(ref.file, []).append(ref)
    for target_dir in target_dirs(out_dir):
        for file, fields in refs.items():
            try:
                doc = json.loads((target_dir / file).read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict):
                continue
            for ref in fields:
                if isinstance(doc.get(ref.field), str):
                    names.add(f"{ref.store}/{doc[ref.field]}")
            for art in (doc.get("artifacts") or {}).values() if isinstance(doc.get("artifacts"), dict) else ():
                if isinstance(art, dict) and isinstance(art.get("sha256"), str):
                    names.add(f"cas/{art['sha256']}")
    return names

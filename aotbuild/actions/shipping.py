"""Which workspace files an export reads, to ship to a node: as its recorded lists know them, or all modules."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from aotbuild import layout
from aotbuild.actions import dependencies, trust
from aotbuild.executors import manifest


def known_files(root: Path, lists: list[dict[str, list[str]]], spec: dict[str, Any]) -> list[str]:
    """What the export reads as its recorded dependency lists know it, as the files are now: their files, the
    absent ones that exist now (a module added where an import looked), each `data:` glob's current matches,
    the declared weights and data. A node exporting with only these fails, or records a list whose state this
    checkout does not have (then the client's own action-cache lookup misses and it exports here)."""
    found = {f for deps in lists for f in (*deps["files"], *deps["absent"]) if not f.startswith("/")}
    data, _ = dependencies.expand_data(root, spec.get("data", []))
    found.update(data)
    if spec.get("weights"):
        found.add(spec["weights"])
    return sorted(f for f in found if _shippable(root, f))


def workspace_sources(root: Path, spec: dict[str, Any]) -> list[str]:
    """For an export no list knows yet: every workspace `.py` file an import could find (as input discovery
    counts them: no aot-out/, hidden directories or installed packages), and the declared weights and data."""
    found: set[str] = set()
    for directory, dirs, files in os.walk(root):  # never follows a symlinked directory
        rel_dir = os.path.relpath(directory, root)
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "site-packages")
                   and not (rel_dir == "." and d == layout.OUT_DIR)]
        found.update(os.path.normpath(os.path.join(rel_dir, f)) for f in files if f.endswith(".py"))
    return sorted({*(f for f in found if _shippable(root, f)), *known_files(root, [], spec)})


def _shippable(root: Path, rel: str) -> bool:
    """A regular file, inside the workspace once symlinks are resolved, with a name a manifest may carry."""
    if trust.unsafe_file(root, rel) is not None or not manifest.plain_path(rel):
        return False
    try:
        return stat.S_ISREG(os.stat(root / rel).st_mode)
    except OSError:
        return False

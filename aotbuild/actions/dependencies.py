"""What an export depended on: the workspace .py files and installed distributions it imported.

They become the depfile (ninja re-runs the export when one changes) and part of the action-cache key
(a fresh checkout finds the export's result only when every one of them is unchanged).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Any

from aotbuild import layout
from aotbuild.errors import ActionError
from aotbuild.hashing import sha256_file
from aotbuild.planning import dist_stamps


def workspace_files(root: Path, extra: list[str]) -> list[str]:
    """Every workspace .py the process imported (the model's discovered dependencies), plus `extra`."""
    found = set(extra)
    out_dir = root / layout.OUT_DIR
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        if not path.is_relative_to(root) or path.is_relative_to(out_dir):
            continue
        rel = path.relative_to(root)
        # Virtual environments inside the workspace are installed packages, tracked by version below.
        if any(p.startswith(".") or p == "site-packages" for p in rel.parts):
            continue
        found.add(rel.as_posix())
    return sorted(found)


def distributions() -> list[str]:
    """Installed distributions the process imported from (torch, its dependencies, the model's libraries)."""
    by_module = importlib.metadata.packages_distributions()
    tops = {name.partition(".")[0] for name in list(sys.modules)}
    names = {dist for top in tops - set(sys.stdlib_module_names) for dist in by_module.get(top, [])}
    return sorted(names, key=str.lower)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def state(root: Path, deps: dict[str, list[str]]) -> dict[str, Any]:
    """The current content of a dependency list: file digests and distribution versions (None if gone)."""
    files: dict[str, str | None] = {}
    for rel in deps["files"]:
        try:
            files[rel] = sha256_file(root / rel)
        except FileNotFoundError:
            files[rel] = None  # a deleted dependency is a different source state, never an error here
    return {"files": files, "packages": {name: _version(name) for name in deps["packages"]}}


def depfile_paths(root: Path, out_dir: Path, deps: dict[str, list[str]],
                  installed: dict[str, str] | None = None) -> list[str]:
    """Absolute paths for the depfile: the files, and a version stamp per distribution (see dist_stamps;
    not its METADATA, which a reinstall of the same version rewrites)."""
    stamps = dist_stamps.write_stamps(out_dir, deps["packages"], installed)
    return [str(root / f) for f in deps["files"]] + [str(out_dir / s) for s in stamps]


def check_unchanged_since(root: Path, files: list[str], started_ns: int, label: str) -> None:
    """Refuse to cache an export whose sources were edited while it ran (ccache's "file too new" rule):
    the digests taken now might not be of the code that was imported."""
    for rel in files:
        try:
            if os.stat(root / rel).st_mtime_ns >= started_ns:
                raise ActionError(label, "export", f"{rel} changed while the model was being exported; build again")
        except FileNotFoundError:
            raise ActionError(label, "export", f"{rel} was removed while the model was being exported") from None

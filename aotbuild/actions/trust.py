"""What a cache hit is checked for beyond its schema: what it names is safe to hash, import and load. No torch."""

from __future__ import annotations

import importlib.metadata
import os
import stat
from pathlib import Path
from typing import Any

from aotbuild.cache import archives


def unsafe_file(root: Path, rel: str) -> str | None:
    """Why dependency file `rel` must not be hashed (it leads out of the workspace through a symlink, or is
    a device, pipe or directory: a content oracle or a read that never ends), or None."""
    real = os.path.realpath(root / rel)
    if not Path(real).is_relative_to(os.path.realpath(root)):
        return f"dependency file {rel!r} leads out of the workspace"
    return _not_regular(real, rel)


def _not_regular(path: str, shown: str) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None  # a different source state, hashed as absent
    return None if stat.S_ISREG(mode) else f"dependency file {shown!r} is not a regular file"


def unsafe_deps(root: Path, lists: list[dict[str, list[str]]], declared_env: list[str]) -> str | None:
    """Why these dependency lists must not be hashed here, or None. Variables are read only where the target
    declares them (`env:`) or for PYTHONPATH: an entry naming others would fold secrets into the keys asked."""
    allowed_env = {*declared_env, "PYTHONPATH"}
    for deps in lists:
        for rel in [*deps["files"], *deps["absent"], *deps["external"]]:
            # An absolute path is a module outside the workspace (payloads.outside_module_path).
            why = _not_regular(rel, rel) if rel.startswith("/") else unsafe_file(root, rel)
            if why is not None:
                return why
        if extra := sorted(set(deps["env"]) - allowed_env):
            return f"dependency list names environment variables the target does not declare: {extra}"
    return None


def workspace_modules(files: list[str]) -> set[str]:
    """The modules the export imported from the workspace: `a/b.py` is `a.b`, `a/__init__.py` is `a`."""
    return {rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for rel in files if rel.endswith(".py")}


def unsafe_imports(root: Path, modules: list[str], files: list[str]) -> str | None:
    """Why importing `modules` (the program's requires_imports) is not allowed, or None: each must be a
    workspace module the export recorded, or come from an installed distribution (looked up, never imported)."""
    recorded = workspace_modules(files)
    provided: dict[str, list[str]] | None = None
    for module in modules:
        if module in recorded:
            continue
        top = module.partition(".")[0]
        if (root / top).exists() or (root / f"{top}.py").exists():
            return f"requires_imports names workspace module {module!r}, which the export did not import"
        if provided is None:  # tens of milliseconds: only for programs needing a library's module
            provided = importlib.metadata.packages_distributions()
        if not provided.get(top):
            return f"requires_imports names module {module!r}, which no installed distribution provides"
    return None


def unsafe_program(store: Any, digest: str) -> str | None:
    """Why the exported program `digest` must not reach torch.export.load, or None (also when it is absent)."""
    path = store.blob_path(digest)
    if path is None:
        return None
    why = archives.program_problem(path)
    return None if why is None else f"program cas/{digest}: {why}"


def unsafe_export(store: Any, root: Path, result: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """Why a schema-valid export entry must not be used here, or None."""
    return (unsafe_deps(root, [result["deps"]], spec.get("env", []))
            or unsafe_imports(root, result["interface"]["requires_imports"], result["deps"]["files"])
            or (unsafe_program(store, result["program"]) if result["program"] is not None else None))

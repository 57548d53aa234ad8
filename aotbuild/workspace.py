"""The workspace on disk: finding its root, the current package, and every package. Cheap: runs on every build."""

from __future__ import annotations

import os
from pathlib import Path

from . import layout
from .errors import UserError

WORKSPACE_FILE = "WORKSPACE.aot.yaml"
BUILD_FILE = "BUILD.aot.yaml"


def find_root(start: Path) -> Path:
    """The nearest ancestor of `start` (itself included) that holds WORKSPACE.aot.yaml."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / WORKSPACE_FILE).is_file():
            return directory
    raise UserError(f"no {WORKSPACE_FILE} in {start} or any parent directory\n"
                    f"  fix: create an (even empty) {WORKSPACE_FILE} at the root of your workspace")


def current_package(root: Path, cwd: Path) -> str | None:
    """cwd as a workspace-relative package path, for relative labels; None when cwd is outside the workspace."""
    try:
        rel = cwd.resolve().relative_to(root)
    except ValueError:
        return None
    return "" if rel == Path(".") else rel.as_posix()


def discover_packages(root: Path, ignore: tuple[str, ...] = ()) -> list[str]:
    """Every directory under root holding BUILD.aot.yaml, skipping outputs, hidden dirs and nested workspaces."""
    found = []
    ignored = set(ignore) | {layout.OUT_DIR}
    for dirpath, dirnames, filenames in os.walk(root):  # does not follow symlinks: nothing outside can sneak in
        rel = Path(dirpath).relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        if rel and WORKSPACE_FILE in filenames:
            dirnames[:] = []  # a nested workspace is its own world, as in Bazel
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__"
                             and (f"{rel}/{d}" if rel else d) not in ignored)
        if BUILD_FILE in filenames:
            found.append(rel)
    return found



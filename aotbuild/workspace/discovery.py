"""The workspace on disk: finding its root, the current package, and every package. Cheap: runs on every build."""

from __future__ import annotations

import os
from pathlib import Path

from aotbuild import layout
from aotbuild.errors import UserError

WORKSPACE_FILE = "WORKSPACE.aot.yaml"
BUILD_FILE = "BUILD.aot.yaml"
# A BUILD file describes targets; megabytes of YAML are a mistake or an attack, and would stall planning.
MAX_SOURCE_BYTES = 1 << 20


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
    # Listed as a walk over sorted subdirectories visits them. Plain strings and os.scandir: this runs on every
    # command, and pathlib cost more than the walk itself.
    found: list[str] = []
    ignored = set(ignore) | {layout.OUT_DIR}

    def walk(directory: str, rel: str) -> None:
        subdirs, files = [], set()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    # follow_symlinks=False: nothing outside the workspace can sneak in through a link.
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.name)
                    elif entry.name in (WORKSPACE_FILE, BUILD_FILE):
                        files.add(entry.name)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        if rel and WORKSPACE_FILE in files:
            return  # a nested workspace is its own world, as in Bazel
        if BUILD_FILE in files:
            found.append(rel)
        for name in sorted(subdirs):
            child = f"{rel}/{name}" if rel else name
            if not name.startswith(".") and name != "__pycache__" and child not in ignored:
                walk(f"{directory}/{name}", child)

    walk(str(root), "")
    return found

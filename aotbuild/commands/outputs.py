"""`aotbuild clean` and `aotbuild plan`: remove aot-out/, or regenerate its build.ninja."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from aotbuild import layout
from aotbuild.workspace.discovery import find_root

LOCK_FILE = f"{layout.STATE_DIR}/build.lock"  # engine/build.py's


def cmd_clean() -> int:
    out = find_root(Path.cwd()) / layout.OUT_DIR
    if out.is_symlink():  # remove the link only: its target is not aotbuild's to delete
        target = os.readlink(out)
        out.unlink()
        print(f"aotbuild: removed the symlink {out} (its target {target} was left alone)")
        return 0
    if out.exists():
        from aotbuild.engine.workspace_lock import exclusive

        # A running build holds the lock (its actions too, if its CLI was killed): wait for it to finish.
        with exclusive(out / LOCK_FILE):
            shutil.rmtree(out)  # rmtree never follows symlinks inside the tree; it unlinks them
    print(f"aotbuild: removed {out}")
    return 0


def cmd_plan() -> int:
    from aotbuild.engine import build as engine

    root = find_root(Path.cwd())
    engine.replan(root, root / layout.OUT_DIR)
    return 0

"""`aotbuild clean`, `plan` and `stamp`: remove aot-out/, regenerate its build.ninja, explain the no-op stamp."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from aotbuild import layout
from aotbuild.workspace.discovery import find_root


def cmd_clean(args: argparse.Namespace) -> int:
    out = find_root(Path.cwd()) / layout.OUT_DIR
    if out.is_symlink():  # remove the link only: its target is not aotbuild's to delete
        target = os.readlink(out)
        out.unlink()
        print(f"aotbuild: removed the symlink {out} (its target {target} was left alone)")
        return 0
    if out.exists():
        from aotbuild.engine.context import exclusive

        # A running build holds the lock (its actions too, if its CLI was killed): wait for it to finish.
        with exclusive(out / layout.STATE_DIR / "build.lock"):
            shutil.rmtree(out)  # rmtree never follows symlinks inside the tree; it unlinks them
    print(f"aotbuild: removed {out}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from aotbuild.engine.context import replan

    root = find_root(Path.cwd())
    replan(root, root / layout.OUT_DIR)
    return 0


def cmd_stamp(args: argparse.Namespace) -> int:
    from aotbuild.engine import noop_stamp

    out = find_root(Path.cwd()) / layout.OUT_DIR
    snap = noop_stamp.read(out)
    if snap is None:
        print(f"aotbuild: no no-op stamp in {out / noop_stamp.STAMP_FILE}: the next build runs ninja "
              "(a build that finds nothing to do writes one)")
        return 0
    paths = snap.paths
    print(f"aotbuild: the no-op stamp records {len(paths.goals)} goals: {len(paths.files)} files by signature "
          f"(mtime, ctime, size, inode), {len(paths.nodes)} by mtime, {len(paths.dirs)} directories by ctime")
    for path in paths.files:
        print(f"  file {path}")
    moved = noop_stamp.moved(out, snap)
    for path, recorded, now in moved[:20]:
        print(f"moved: {path}: recorded {_shown(recorded)}, now {_shown(now)}")
    if len(moved) > 20:
        print(f"moved: ... and {len(moved) - 20} more")
    if not moved:
        print("aotbuild: every entry is as recorded: a build of these goals (or fewer) will not start ninja")
    return 0


def _shown(value: object) -> str:
    return "missing" if value is None or value == -1 else str(value)

"""`aotbuild query`, `clean`, `plan` and `stamp`: list targets, remove or re-plan aot-out/, explain the no-op stamp."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from aotbuild import layout
from aotbuild.engine.context import exclusive, open_workspace, replan
from aotbuild.planning import input_stamps
from aotbuild.rules.compile import ARTIFACTS, MANIFEST
from aotbuild.rules.export import DISCOVERED
from aotbuild.workspace.discovery import find_root
from aotbuild.workspace.labels import select


def cmd_query(args: argparse.Namespace) -> int:
    ctx = open_workspace(Path.cwd(), args.cache_dir)
    plan = ctx.plan
    selection = select(plan, args.patterns, ctx.current_package)
    for error in selection.errors:
        print(f"error: {error}", file=sys.stderr)
    if args.output == "label":  # labels only: at 10,000 targets the output paths below cost more than planning
        if selection.labels:
            print("\n".join(map(str, selection.labels)))
        return 2 if selection.errors else 0
    rows = []
    for label in selection.labels:
        paths = layout.TargetPaths(label)
        outputs = {ext: str(ctx.out_dir / paths.dir / paths.alias(ext)) for ext in ARTIFACTS}
        entry = plan.targets[str(label)]
        rows.append({"label": str(label), "device": entry.get("device", "cpu"), "tags": entry["tags"], "outputs": {
            **outputs, "manifest": str(ctx.out_dir / paths.file(MANIFEST))},
            # What the last export imported (workspace files, distribution stamps); empty before a build.
            "deps": _deps(ctx.out_dir, ctx.out_dir / paths.file(DISCOVERED), ctx.root)})
    print(json.dumps(rows, indent=2))
    return 2 if selection.errors else 0


def _deps(out_dir: Path, sidecar: Path, root: Path) -> list[str]:
    """The depfile's entries as a user names them: the input behind a content stamp (planning/input_stamps.py),
    a workspace-relative path, or an absolute one."""
    found = []
    for listed in sidecar.read_text().splitlines() if sidecar.exists() else []:
        path = Path(os.path.normpath(out_dir / listed))
        what = input_stamps.input_of(path) if listed.startswith(f"{input_stamps.STAMP_DIR}/") else None
        found.append(what or (path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)))
    return found


def cmd_clean(args: argparse.Namespace) -> int:
    out = find_root(Path.cwd()) / layout.OUT_DIR
    if out.is_symlink():  # remove the link only: its target is not aotbuild's to delete
        target = os.readlink(out)
        out.unlink()
        print(f"aotbuild: removed the symlink {out} (its target {target} was left alone)")
        return 0
    if out.exists():
        # A running build holds the lock (its actions too, if its CLI was killed): wait for it to finish.
        with exclusive(out / layout.STATE_DIR / "build.lock"):
            shutil.rmtree(out)  # rmtree never follows symlinks inside the tree; it unlinks them
    print(f"aotbuild: removed {out}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
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

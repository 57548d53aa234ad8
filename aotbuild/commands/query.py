"""`aotbuild query`: list the targets that patterns select, with their outputs and discovered deps."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from aotbuild.engine.context import open_workspace
from aotbuild.layout import TargetPaths
from aotbuild.planning import input_stamps
from aotbuild.rules.compile import ARTIFACTS, MANIFEST
from aotbuild.rules.export import DISCOVERED
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
        paths = TargetPaths(label)
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

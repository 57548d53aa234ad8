"""The plan index (aot-out/.aotbuild/plan.json): what build.ninja holds, read on every run without YAML or torch."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import __version__, layout


@dataclass(frozen=True)
class Plan:
    version: str
    build_files: list[str]  # workspace-relative: WORKSPACE.aot.yaml, then every BUILD.aot.yaml
    targets: dict[str, dict[str, Any]]  # label -> {"package", "tags", "goals": {rule kind: output path}}
    broken: dict[str, str]  # package -> error text: the BUILD file itself is unusable
    broken_targets: dict[str, str]  # label -> error text: that target only
    cache_dir: str | None  # WORKSPACE.aot.yaml's cache.dir, so a no-op run needs no YAML parser
    ignore: list[str]  # WORKSPACE.aot.yaml's ignore
    ninja: str  # the ninja binary of the `ninja` package, so a no-op run need not import it
    python: str  # the interpreter build.ninja runs actions with: another one means another torch
    watched: list[str]  # other files the plan checked (weights): one appearing or changing means re-plan
    remote_cache: str | None = None  # WORKSPACE.aot.yaml's cache.remote

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_plan(out_dir: Path) -> Plan | None:
    try:
        return Plan(**json.loads((out_dir / layout.PLAN_FILE).read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None  # absent, or written by another aotbuild version: plan again


def _mtime(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


def is_current(plan: Plan | None, root: Path, out_dir: Path, build_files: list[str] | None) -> bool:
    """Whether build.ninja still reflects the workspace: same aotbuild, same packages, no newer BUILD file.

    `build_files` is the freshly discovered list, or None to check only what can be checked without it."""
    if plan is None or plan.version != __version__ or plan.python != sys.executable or not os.path.exists(plan.ninja):
        return False
    planned_at = _mtime(out_dir / layout.NINJA_FILE)
    if planned_at is None:
        return False
    if build_files is not None and build_files != plan.build_files:
        return False
    for f in plan.build_files + plan.watched:
        mtime = _mtime(root / f)
        if mtime is None or mtime > planned_at:
            return False
    return True

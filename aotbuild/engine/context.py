"""The workspace a command works on: its root, aot-out/, the cache and a current plan."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from aotbuild import layout
from aotbuild.errors import UserError
from aotbuild.fsutil import write_if_changed
from aotbuild.hashing import pretty_json
from aotbuild.planning import toolchain
from aotbuild.planning.file_state import signature
from aotbuild.planning.plan_index import Plan, Staleness, read_plan, staleness
from aotbuild.workspace import settings
from aotbuild.workspace.discovery import current_package, find_root


@dataclass(frozen=True)
class Context:
    root: Path
    out_dir: Path
    cache_dir: Path
    current_package: str | None
    plan: Plan
    replanned: bool = False  # this command re-planned (a BUILD file changed): ninja's files are new


def open_workspace(cwd: Path, cache_flag: str | None) -> Context:
    """Find the workspace and make sure its plan is current; a no-op run reads plan.json and stats files only."""
    root = find_root(cwd)
    out_dir = root / layout.OUT_DIR
    if out_dir.is_symlink():
        raise UserError(f"{out_dir} is a symlink (to {os.readlink(out_dir)}); aotbuild writes only into an "
                        "output directory of its own, never through a link\n"
                        "  fix: `aotbuild clean` removes the link (and leaves its target alone)")
    from aotbuild.engine.foreign_links import unlink_foreign_symlinks

    for warning in unlink_foreign_symlinks(out_dir, [layout.STATE_DIR]):  # before anything is written there
        print(f"warning: {warning}", file=sys.stderr)
    seen = signature(str(out_dir / layout.PLAN_FILE))
    plan = ensure_plan(root, out_dir)
    cache = settings.cache_dir(settings.environ(), cache_flag, plan.cache_dir, root)
    replanned = seen != signature(str(out_dir / layout.PLAN_FILE))
    return Context(root, out_dir, cache, current_package(root, cwd), plan, replanned)


def ensure_plan(root: Path, out_dir: Path) -> Plan:
    """The current plan. A no-op run reads plan.json and stats the BUILD files; it writes nothing unless a
    BUILD file's stat moved without its content changing (then only the index learns the new stat)."""
    seen = signature(str(out_dir / layout.PLAN_FILE))
    plan = read_plan(out_dir)
    stale = staleness(plan, root, out_dir)
    if stale.current and not stale.moved:
        assert plan is not None
        return plan
    return replan(root, out_dir, (seen, plan, stale))


def replan(root: Path, out_dir: Path, known: tuple[list[int] | None, Plan | None, Staleness] | None = None) -> Plan:
    """Re-plan what changed, under a lock: two commands planning at once would interleave their writes.
    `known`: plan.json's signature, the plan and its staleness as the caller found them before taking the lock;
    reused when plan.json has not changed since (reading a 10,000-target index again costs 40 ms)."""
    # Imported here: YAML parsing and the ninja writer cost more than a whole no-op build.
    from aotbuild.planning.planner import plan_lock, update_plan

    (out_dir / layout.STATE_DIR).mkdir(parents=True, exist_ok=True)
    with plan_lock(out_dir / layout.STATE_DIR / "plan.lock"):
        write_toolchain(out_dir)
        if known is not None and known[0] == signature(str(out_dir / layout.PLAN_FILE)):
            _, plan, stale = known
        else:  # another command may have planned while we waited
            plan = read_plan(out_dir)
            stale = staleness(plan, root, out_dir)
        if stale.current and not stale.moved:
            assert plan is not None
            return plan
        return update_plan(root, out_dir, plan, stale)


def write_toolchain(out_dir: Path) -> None:
    """Rewritten only when it changes: a new torch or compiler makes every export/compile edge dirty."""
    stamp = out_dir / layout.STATE_DIR / "toolchain-stamp.json"
    fingerprint = toolchain.cached_fingerprint(stamp, settings.environ())
    write_if_changed(out_dir / layout.TOOLCHAIN_FILE, pretty_json(fingerprint))

"""The workspace a command works on: its root, aot-out/ (safe to write, locked), the cache and a current plan."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterable, Iterator
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
    for warning in unlink_foreign_symlinks(out_dir, [layout.STATE_DIR]):  # before anything is written there
        print(f"warning: {warning}", file=sys.stderr)
    seen = signature(str(out_dir / layout.PLAN_FILE))
    plan = ensure_plan(root, out_dir)
    cache = settings.cache_dir(settings.environ(), cache_flag, plan.cache_dir, root)
    replanned = seen != signature(str(out_dir / layout.PLAN_FILE))
    return Context(root, out_dir, cache, current_package(root, cwd), plan, replanned)


def ensure_plan(root: Path, out_dir: Path) -> Plan:
    """The current plan; written only when a BUILD file's stat moved (a re-plan, or just the index's stat)."""
    seen = signature(str(out_dir / layout.PLAN_FILE))
    plan = read_plan(out_dir)
    stale = staleness(plan, root, out_dir)
    if stale.current and not stale.moved:
        assert plan is not None
        return plan
    return replan(root, out_dir, (seen, plan, stale))


def replan(root: Path, out_dir: Path, known: tuple[list[int] | None, Plan | None, Staleness] | None = None) -> Plan:
    """Re-plan what changed, under a lock: two commands planning at once would interleave their writes.
    `known`: plan.json's signature, the plan and its staleness as found before the lock, reused if still so."""
    # Imported here: YAML parsing and the ninja writer cost more than a whole no-op build.
    from aotbuild.planning.planner import update_plan

    with exclusive(out_dir / layout.STATE_DIR / "plan.lock", "plan"):
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


def unlink_foreign_symlinks(out_dir: Path, relative_dirs: Iterable[str]) -> list[str]:
    """Remove (never follow) symlinks where aotbuild keeps its own directories: they would lead outside aot-out/."""
    # Each parent directory is listed once (os.scandir says which entries are links without a stat each):
    # 1,100 listings instead of 11,000 lstats for 10,000 targets.
    wanted: dict[str, set[str]] = {}  # parent directory -> names under it that must not be links
    for rel in relative_dirs:
        parent = str(out_dir)
        for part in rel.split("/"):
            wanted.setdefault(parent, set()).add(part)
            parent = f"{parent}/{part}"
    warnings = []
    for parent in sorted(wanted, key=lambda p: p.count("/")):  # parents first: a removed link hides its subtree
        try:
            with os.scandir(parent) as entries:
                links = [e.path for e in entries if e.name in wanted[parent] and e.is_symlink()]
        except (FileNotFoundError, NotADirectoryError):
            continue  # not made yet, or under a link removed above
        for path in links:
            target = os.readlink(path)
            os.unlink(path)
            warnings.append(f"{path} was a symlink to {target}; removed it (aotbuild never writes through "
                            "links in aot-out/; the link's target was left untouched)")
    return warnings


@contextlib.contextmanager
def exclusive(path: Path, what: str = "build") -> Iterator[int]:
    """An flock on `path`: `filelock`'s lock on Unix, without importing it on the CLI's path. ninja and every
    action inherit a build's descriptor (yielded), so a SIGKILLed CLI's lock stays held until the last of them
    exits; closing it (never LOCK_UN, which would release it for them too) is how the CLI lets go."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"aotbuild: waiting for another {what} in this workspace to finish", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)

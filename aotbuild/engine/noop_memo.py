"""What a no-op build needs of plan.json, kept for the next one: the plan less its targets, and the targets and
goals the same command selected.

A no-op build at 10,000 targets spent about 45 ms of its 0.25 s reading plan.json (2 MB of JSON), selecting
10,000 labels and mapping them to goals, only to find, with the no-op stamp, that nothing had to be done.
The memo holds those answers for one plan.json (its signature: mtime, ctime, size, inode; any re-plan writes
a new file) and for each command that asked (its patterns, package, shard and goal), so the next such build
checks the BUILD files against the plan's head and the stamp, and reads nothing else. It is written by a
no-op build that had to work them out, and is only ever a cache: anything that does not match is ignored.
"""

from __future__ import annotations

import marshal
import zlib
from dataclasses import dataclass
from pathlib import Path

from aotbuild import __version__, layout
from aotbuild.planning.plan_index import PackageEntry, Plan

MEMO_FILE = f"{layout.STATE_DIR}/noop-memo"
FORMAT = 1
KEEP = 8  # commands remembered per plan
Key = tuple[tuple[str, ...], str | None, tuple[int, int] | None, str]  # patterns, current package, shard, goal


@dataclass(frozen=True)
class Memo:
    head: Plan  # the plan without its targets: what the staleness check, the settings and the summary read
    labels: tuple[str, ...]  # the selected targets, in order
    goals: tuple[str, ...]  # the goal of each
    cuda: frozenset[str]  # those of them whose device is a GPU


def key_of(patterns: list[str], current_package: str | None, shard: tuple[int, int] | None, goal: str) -> Key:
    return tuple(patterns), current_package, tuple(shard) if shard else None, goal


def head_of(plan: Plan) -> Plan:
    return Plan(plan.version, plan.python, plan.ninja, plan.cache_dir, plan.ignore, plan.workspace,
                {p: PackageEntry(e.file, {}, e.broken, {}, e.watched) for p, e in plan.packages.items()},
                plan.remote_cache, remote_verify_keys=plan.remote_verify_keys)


def _load(out_dir: Path) -> dict | None:
    try:
        data = (out_dir / MEMO_FILE).read_bytes()
        payload = data[:-4]
        if len(data) < 4 or zlib.crc32(payload).to_bytes(4, "little") != data[-4:]:
            return None
        fmt, version, memo = marshal.loads(payload)
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return memo if (fmt, version) == (FORMAT, __version__) and isinstance(memo, dict) else None


def read(out_dir: Path, plan_sig: list[int] | None, key: Key) -> Memo | None:
    """The memo of this command for the plan.json of signature `plan_sig`; None if there is none."""
    memo = _load(out_dir)
    if memo is None or plan_sig is None or memo.get("plan") != plan_sig or key not in memo.get("requests", {}):
        return None
    try:
        labels, goals, cuda = memo["requests"][key]
        return Memo(Plan.from_json(memo["head"]), labels, goals, frozenset(cuda))
    except (KeyError, TypeError, ValueError):
        return None


def remember(out_dir: Path, plan_sig: list[int] | None, plan: Plan, key: Key, labels: list[str],
             goals: list[str], cuda: list[str]) -> None:
    """Keep what this command selected from the plan.json of signature `plan_sig`, beside what other commands
    did from the same one."""
    from aotbuild.fsutil import replace_unsynced

    if plan_sig is None:
        return
    memo = _load(out_dir)
    requests = memo["requests"] if memo is not None and memo.get("plan") == plan_sig else {}
    requests = {k: v for k, v in list(requests.items())[-(KEEP - 1):] if k != key}
    requests[key] = (tuple(labels), tuple(goals), tuple(cuda))
    payload = marshal.dumps((FORMAT, __version__, {"plan": plan_sig, "head": head_of(plan).to_json(),
                                                   "requests": requests}))
    try:
        replace_unsynced(out_dir / MEMO_FILE, payload + zlib.crc32(payload).to_bytes(4, "little"))
    except OSError:
        pass  # a cache: the next no-op works it out again

"""The cache pass: selected targets resolved from the cache in-process before ninja, their edges logged as done."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aotbuild import layout, rules
from aotbuild.actions import compile as compile_action
from aotbuild.actions import dependencies
from aotbuild.actions import export as export_action
from aotbuild.actions.runtime import ActionContext, open_store
from aotbuild.fsutil import replace_if_changed_unsynced
from aotbuild.ninja import logs, runner, spec_edges
from aotbuild.ninja.graph import Edge
from aotbuild.planning import dist_stamps
from aotbuild.planning import ninja_files as files
from aotbuild.rules import compile as compile_rule
from aotbuild.rules import export as export_rule
from aotbuild.workspace import settings
from aotbuild.workspace.labels import Label
from aotbuild.workspace.target import Target

THREADS = 8  # mostly waiting: fsync (5 a target, as the actions do), small file operations, remote round trips
_DEPFILE_UNSAFE = frozenset("\\$#:\t\r")
ACTIONS = {export_rule.KIND.rule_name: "export", compile_rule.KIND.rule_name: "compile"}


class _NotDone(Exception):
    """This edge is left to ninja (a miss, or something this pass cannot prove)."""


@dataclass(frozen=True)
class _Setup:
    out_dir: Path
    env: Mapping[str, str]
    state: export_action.StateOf
    installed: dict[str, str]  # dist_stamps.installed_versions(), listed once for the whole pass
    verdicts: dict[tuple, str | None]  # actions/trust.py's checks of each program, once for the whole pass


def resolve(root: Path, out_dir: Path, ninja: str, labels: list[Label], env: Mapping[str, str]) -> None:
    """Resolve `labels` from the cache (`env`: the actions'); an edge not proven done is left to `ninja`."""
    builddir = out_dir / layout.NINJA_BUILDDIR
    if logs.refusal(ninja, builddir) is not None:
        return  # a ninja outside the tested range: no pass at all
    try:  # before any work: a log we could not extend means no pass at all
        logs.check_logs(builddir)
    except logs.FormatError:
        return
    # As the actions see it: ninja -C makes it their working directory, which resolves symlinks.
    setup = _Setup(Path(os.path.realpath(out_dir)), env, _memo_state(), dist_stamps.installed_versions(), {})
    pool = ThreadPoolExecutor(THREADS)
    try:
        finished = [f for edges in pool.map(lambda t: _resolve(setup, t), _load_targets(root, labels)) for f in edges]
    finally:  # interrupted: drop the targets not started (nothing is logged, so ninja redoes the rest)
        pool.shutdown(wait=True, cancel_futures=True)
    if not finished:
        return
    # Each edge's command as ninja evaluates it: its log keeps the command's hash. No answer: nothing is
    # recorded, and ninja reruns those edges (their actions find the same hits).
    found = runner.commands(ninja, out_dir, [f.outputs[0] for f in finished])
    if found is None:
        return
    # One sync for every output written above (the actions fsync each file: five per target), and before the
    # logs claim them done, so a crash cannot leave ninja trusting an output that never reached disk.
    os.sync()
    logs.append(ninja, builddir, [replace(f, command=command) for f, command in zip(finished, found)])


def _load_targets(root: Path, labels: list[Label]) -> list[Target]:
    """The selected targets as planning parsed them (only their packages are read again)."""
    from aotbuild.workspace.schema import load_config, load_package

    config = load_config(root)
    wanted = set(labels)
    packages = dict.fromkeys(label.package for label in labels)  # each read once
    return [t for package in packages for t in load_package(root, package, config).targets if t.label in wanted]


def _memo_state() -> export_action.StateOf:
    """dependencies.state, computed once per dependency list for this pass (1,000 targets share a few)."""
    memo: dict[tuple, dict[str, Any]] = {}

    def state(root: Path, deps: dict[str, list[str]]) -> dict[str, Any]:
        key = tuple((name, tuple(value)) for name, value in sorted(deps.items()))  # all of it: state() reads every list
        if key not in memo:
            memo[key] = dependencies.state(root, deps)
        return memo[key]

    return state


def goal_chain(target: Target) -> list[Edge]:
    """The edges the build goal needs, each after the edges making its inputs."""
    edges = files.target_edges(target)
    producer = {o: e for e in edges for o in (*e.outputs, *e.implicit_outputs)}
    order: list[Edge] = []

    def visit(path: str) -> None:
        edge = producer.get(path)
        if edge is None or edge in order:
            return
        for p in (*edge.inputs, *edge.implicit):
            visit(p)
        order.append(edge)

    visit(rules.kind(rules.BUILD_GOAL).goal_path(target.label))
    return order


def _resolve(setup: _Setup, target: Target) -> list[logs.Finished]:
    """Run the target's chain in-process, edge by edge, until one cannot be done here; the edges done."""
    specs = {p: spec_edges.file_bytes(c) for p, c in rules.spec_files(target).items()}
    finished: list[logs.Finished] = []
    for edge in goal_chain(target):
        try:
            if edge.rule == spec_edges.NAME:  # its command: write each file unless it holds exactly these bytes
                for path in edge.outputs:
                    replace_if_changed_unsynced(setup.out_dir / path, specs[path])
                deps, report = None, None
            else:
                deps, report = _from_cache(setup, edge, ACTIONS[edge.rule])
            finished.append(_record(setup, edge, deps))
            if report is not None:
                report()  # once the edge is recorded
        except Exception:  # noqa: BLE001 - not swallowed: ninja runs this edge's action, which reports it
            break
    return finished


def _record(setup: _Setup, edge: Edge, deps: tuple[str, ...] | None) -> logs.Finished:
    """The edge as ninja logs a run: its outputs' mtimes, and a log mtime no older than any input's (the command,
    asked of ninja later, is filled in by resolve)."""
    outputs = tuple(logs.check_path(p) for p in (*edge.outputs, *edge.implicit_outputs))
    output_mtimes = tuple(_mtime(setup.out_dir / p) for p in outputs)
    inputs = [_mtime(setup.out_dir / p) for p in (*edge.inputs, *edge.implicit)]
    # aotbuild's own stamps (content and distribution stamps) may be created by another target's thread of
    # this pass after these outputs, with the content this result was found for (input_stamps.ensure checks
    # it): they count as inputs. Anything else newer was edited while the pass read it.
    own = f"{setup.out_dir}/{layout.STATE_DIR}/"
    stamps = [_mtime(Path(d)) for d in deps or () if d.startswith(own)]
    newest = max([*output_mtimes, *inputs, *stamps])
    if any(_mtime(Path(d)) > newest for d in deps or () if not d.startswith(own)):
        raise _NotDone("a dependency changed while the pass read it")
    return logs.Finished(outputs, "", newest, deps, output_mtimes if deps is not None else ())


def _mtime(path: Path) -> int:
    try:
        mtime = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        raise _NotDone(f"{path} is missing") from None
    return mtime or 1  # ninja's Stat: 0 means missing, so a real 0 reads as 1


def _from_cache(setup: _Setup, edge: Edge, action: str) -> tuple[tuple[str, ...] | None, Callable[[], None]]:
    """The action's hit path as its process would run it; its discovered dependencies and its event to report."""
    spec_file = setup.out_dir / dict(edge.variables)["spec"]
    ctx = ActionContext(action=action, out_dir=setup.out_dir, root=setup.out_dir.parent,
                        target_dir=spec_file.parent, spec=json.loads(spec_file.read_text()),
                        store=open_store(setup.env, setup.out_dir), events=settings.events_file(setup.env),
                        started=time.monotonic(), durable=False)
    try:
        if action == "export":
            hit = export_action.from_cache(ctx, setup.state, setup.installed, setup.verdicts)
        else:
            hit = compile_action.from_cache(ctx)
    finally:
        # Remote warnings and entries failing their digest must reach the summary even when ninja's action takes
        # over, which would not say why; "up to date" ranks below any real outcome, so the action's outcome wins.
        if ctx.store.warnings or ctx.store.counters.corrupt:
            replace(ctx, action="cache-pass").report("up to date")
            ctx.store.warnings.clear()
    if not hit:
        raise _NotDone(f"{action}: not in the cache")
    deps = _read_depfile(setup.out_dir, edge.outputs[0]) if action == "export" else None
    # The action's log from an earlier run (a failure, say) would describe a result this pass replaced.
    (ctx.target_dir / f"{action}.log").unlink(missing_ok=True)
    return deps, lambda: ctx.report("action-cache hit" if action == "export" else "artifact-cache hit")


def _read_depfile(out_dir: Path, output: str) -> tuple[str, ...]:
    """The export depfile's paths as ninja reads them (deps = gcc), which then removes it; plain paths only."""
    depfile = out_dir / f"{output}.d"
    text = depfile.read_text()
    head, sep, rest = text.partition(": ")
    if head != output or not sep or not rest.endswith("\n") or _DEPFILE_UNSAFE & set(rest[:-1]) or "\n" in rest[:-1]:
        raise _NotDone(f"{depfile}: not a depfile this pass reads")
    deps = tuple(logs.check_path(p) for p in rest[:-1].split(" ") if p)
    depfile.unlink()
    return deps

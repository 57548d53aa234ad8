"""`aotbuild build` and `test` (and the build `bench` starts with): run the engine, print and write reports."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from aotbuild.engine import build as engine
from aotbuild.errors import UserError
from aotbuild.fsutil import atomic_write, check_writable
from aotbuild.goals import BUILD_GOAL, TEST_GOAL
from aotbuild.hashing import pretty_json
from aotbuild.reports.outcomes import NEEDS_GPU, BuildResult, remote_lines, summarize, summary_line


def cmd_build(args: argparse.Namespace) -> int:
    return build_and_report(args, BUILD_GOAL).exit_code


def cmd_test(args: argparse.Namespace) -> int:
    return build_and_report(args, TEST_GOAL).exit_code


def _check_report_path(text: str | None, flag: str) -> None:
    """Fail before a long build, not after it, when a report could not be written."""
    if text is None:
        return
    path = Path(text)
    if path.is_dir():
        raise UserError(f"{flag} {text}: is a directory\n  fix: name a file, e.g. {path / 'report'}")
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {text}: directory {parent} does not exist\n  fix: create it, or name another path")
    try:
        check_writable(parent)
    except OSError as e:
        raise UserError(f"{flag} {text}: cannot write in {parent}: {e.strerror}\n  fix: name a writable path") from None


def as_test_summary(result: BuildResult) -> BuildResult:
    """The result as a test's summary counts it: by its verify outcome, not by how its artifact came."""
    from aotbuild.rules.verify import KIND as VERIFY

    outcomes = dict(result.outcomes)
    for event in result.events:
        if event["action"] == VERIFY.name and event["outcome"] in (VERIFY.ran, VERIFY.hit) \
                and event["label"] not in result.failures:
            outcomes[event["label"]] = event["outcome"]
    return dataclasses.replace(result, outcomes=outcomes)


def build_and_report(args: argparse.Namespace, goal: str) -> BuildResult:
    _check_report_path(args.report, "--report")
    _check_report_path(getattr(args, "junit_xml", None), "--junit-xml")
    _check_report_path(getattr(args, "json_report", None), "--json")
    request = engine.BuildRequest(args.patterns, goal, args.jobs, args.keep_going, args.explain, args.cache_dir,
                                  args.remote_cache, args.remote_upload, args.remote_required, args.shard,
                                  args.workers, args.verbose, args.executor, args.executor_required)
    result = engine.build(request, Path.cwd())
    for error in result.config_errors:
        print(f"error: {error}", file=sys.stderr)
    if goal == TEST_GOAL:
        from aotbuild.reports import test_report

        tests = test_report.outcomes(result)
        print("\n".join(test_report.lines(tests)))
        if args.junit_xml:
            atomic_write(Path(args.junit_xml), test_report.junit_xml(tests))
        if args.json_report:
            atomic_write(Path(args.json_report), pretty_json([t.__dict__ for t in tests]))
    else:
        for label, message in sorted(result.failures.items()):
            print(f"FAILED {label}: {message}", file=sys.stderr)
    skipped = sorted(label for label, outcome in result.outcomes.items() if outcome == NEEDS_GPU)
    if skipped:
        print(f"note: {len(skipped)} CUDA target{'s' if len(skipped) != 1 else ''} skipped, no GPU here and not in "
              f"the cache: {', '.join(skipped)} (a GPU runner sharing the cache builds them; name one to make "
              "its absence an error)", file=sys.stderr)
    for name in result.corrupt:
        print(f"warning: cache entry {name} failed its digest check; removed and rebuilt", file=sys.stderr)
    remote = summarize(result.events)
    for line in remote_lines(remote) if remote else []:
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
    print(summary_line(as_test_summary(result) if goal == TEST_GOAL else result))
    if args.report:
        report = {"targets": result.outcomes, "failures": result.failures, "errors": result.config_errors,
                  "corrupt": result.corrupt, "remote": remote,
                  "actions": [{k: e[k] for k in ("label", "action", "outcome", "seconds", "phases", "worker", "executor")
                               if k in e}
                              for e in result.events],
                  "seconds": round(result.seconds, 3), "exit_code": result.exit_code,
                  "noop_stamp": result.noop_stamp}
        atomic_write(Path(args.report), pretty_json(report))
    return result

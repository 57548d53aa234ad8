"""The command line: parse arguments, call the engine, print results. Thin, and imports no torch."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from aotbuild import __version__, layout

from aotbuild.engine import build as engine

from aotbuild.reports import remote_summary
from aotbuild.errors import AotbuildError, UserError
from aotbuild.fsutil import atomic_write
from aotbuild.hashing import pretty_json
from aotbuild.layout import TargetPaths
from aotbuild.ninja.runner import discovered_deps
from aotbuild.workspace.selection import select
from aotbuild.workspace.discovery import find_root


def _add_cache_flag(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's --cache-dir only overrides the global one when given.
    p.add_argument("--cache-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _add_build_flags(p: argparse.ArgumentParser) -> None:
    _add_cache_flag(p)
    p.add_argument("patterns", nargs="+", metavar="PATTERN", help="target patterns: //pkg:name, //pkg:all, //..., -//x")
    p.add_argument("-j", "--jobs", type=int, help="parallel jobs (ninja's default: cores + 2)")
    p.add_argument("-k", "--keep-going", action="store_true", help="build every target that can be built")
    p.add_argument("--explain", action="store_true", help="show why ninja considers each step out of date")
    p.add_argument("--report", metavar="PATH", help="write a JSON report: each target's outcome, failures, time")
    p.add_argument("--remote-cache", metavar="URL", help="http(s)://host/prefix (Bazel HTTP cache protocol) or "
                   "s3://bucket/prefix; default $AOTBUILD_REMOTE_CACHE, then WORKSPACE cache.remote; '' turns it off")
    p.add_argument("--remote-upload", action="store_true", help="write results to the remote cache (CI); "
                   "without it the remote is only read")
    p.add_argument("--remote-required", action="store_true", help="fail the build when the remote cache fails, "
                   "instead of warning and building locally")
    p.add_argument("--no-workers", dest="workers", action="store_false", help="run each action in a process of its "
                   "own instead of forking it from a warm worker that imported torch once (also: AOTBUILD_WORKERS=0)")
    p.add_argument("--shard", metavar="K/N", type=_shard, help="build only the K-th of N deterministic shares "
                   "of the selected targets (a CI matrix)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aotbuild", description=__doc__)
    p.add_argument("--version", action="version", version=f"aotbuild {__version__}")
    p.add_argument("--cache-dir", help="cache root (default: $AOTBUILD_CACHE_DIR, WORKSPACE cache.dir, "
                                       "$XDG_CACHE_HOME/aotbuild)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_build_flags(sub.add_parser("build", help="export and compile stale targets"))
    t = sub.add_parser("test", help="build, then verify each artifact against eager PyTorch")
    _add_build_flags(t)
    t.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report")
    t.add_argument("--json", metavar="PATH", dest="json_report", help="write a JSON report")
    b = sub.add_parser("bench", help="build, then time each artifact against eager PyTorch")
    _add_build_flags(b)
    b.add_argument("--warmup", type=int, default=10, help="untimed calls first (default 10)")
    b.add_argument("--repeats", type=int, default=100, help="timed calls (default 100)")
    b.add_argument("--json", metavar="PATH", dest="json_report", help="write the results as JSON")
    q = sub.add_parser("query", help="list targets matching patterns")
    q.add_argument("patterns", nargs="+", metavar="PATTERN")
    q.add_argument("--output", choices=("label", "json"), default="label")
    _add_cache_flag(q)
    sub.add_parser("clean", help="remove aot-out/ (the cache is kept)")
    sub.add_parser("plan", help="regenerate aot-out/.aotbuild/build.ninja (ninja runs this itself)")
    c = sub.add_parser("cache", help="inspect and maintain the cache")
    _add_cache_flag(c)
    csub = c.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    csub.add_parser("stats", help="entries and bytes in the cache")
    csub.add_parser("path", help="print the cache root")
    csub.add_parser("verify", help="rehash every entry; remove and report corrupt ones")
    gc = csub.add_parser("gc", help="evict least recently used entries")
    gc.add_argument("--max-size", help="size budget, e.g. 500M, 10G")
    gc.add_argument("--max-age", help="evict entries unused for longer, e.g. 7d, 12h")
    return p


def _shard(text: str) -> tuple[int, int]:
    from aotbuild.planning.sharding import parse_shard

    try:
        return parse_shard(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _size(text: str) -> int:
    """'500M', '10G', '1024' -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B")
    try:
        return int(float(value[:-1]) * units[value[-1]]) if value and value[-1] in units else int(value)
    except ValueError:
        raise UserError(f"--max-size {text!r}: expected a size such as 500M, 10G or 1073741824") from None


def _age(text: str) -> float:
    """'30d', '12h', '90m', '3600' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = text.strip().lower()
    try:
        return float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
    except ValueError:
        raise UserError(f"--max-age {text!r}: expected an age such as 30d, 12h or 3600") from None


def cmd_build(args: argparse.Namespace, goal: str) -> int:
    return _build(args, goal).exit_code


def _check_report_path(text: str | None, flag: str) -> None:
    """Fail before a long build, not after it, when a report could not be written."""
    if text is None:
        return
    path = Path(text)
    if path.is_dir():
        raise UserError(f"{flag} {text}: is a directory\n  fix: name a file, e.g. {path / 'report'}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{flag} {text}: directory {parent} does not exist\n  fix: create it, or name another path")
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{flag} {text}: cannot write in {parent}: {e.strerror}\n  fix: name a writable path") from None


def _build(args: argparse.Namespace, goal: str) -> engine.BuildResult:
    _check_report_path(args.report, "--report")
    _check_report_path(getattr(args, "junit_xml", None), "--junit-xml")
    _check_report_path(getattr(args, "json_report", None), "--json")
    request = engine.BuildRequest(args.patterns, goal, args.jobs, args.keep_going, args.explain, args.cache_dir,
                                  args.remote_cache, args.remote_upload, args.remote_required, args.shard,
                                  args.workers)
    result = engine.build(request, Path.cwd())
    for error in result.config_errors:
        print(f"error: {error}", file=sys.stderr)
    if goal == "verify":
        from aotbuild.reports import test_report

        ctx = result.context
        tests = test_report.outcomes(result, ctx.plan, ctx.out_dir)
        print("\n".join(test_report.lines(tests)))
        test_report.write_reports(tests, args.junit_xml, args.json_report)
    else:
        for label, message in sorted(result.failures.items()):
            print(f"FAILED {label}: {message}", file=sys.stderr)
    skipped = sorted(label for label, outcome in result.outcomes.items() if outcome == engine.NEEDS_GPU)
    if skipped:
        print(f"note: {len(skipped)} CUDA target{'s' if len(skipped) != 1 else ''} skipped, no GPU here and not in "
              f"the cache: {', '.join(skipped)} (a GPU runner sharing the cache builds them; name one to make "
              "its absence an error)", file=sys.stderr)
    for name in result.corrupt:
        print(f"warning: cache entry {name} failed its digest check; removed and rebuilt", file=sys.stderr)
    remote = remote_summary.summarize(result.events)
    for line in remote_summary.lines(remote) if remote else []:
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
    print(engine.summary_line(result))
    if args.report:
        report = {"targets": result.outcomes, "failures": result.failures, "errors": result.config_errors,
                  "corrupt": result.corrupt, "remote": remote,
                  "actions": [{k: e[k] for k in ("label", "action", "outcome", "seconds", "phases", "worker") if k in e}
                              for e in result.events],
                  "seconds": round(result.seconds, 3), "exit_code": result.exit_code}
        atomic_write(Path(args.report), pretty_json(report))
    return result


def cmd_bench(args: argparse.Namespace) -> int:
    result = _build(args, "compile")
    if result.exit_code:
        return result.exit_code
    ctx = result.context
    rows = []
    for label in result.labels:  # one at a time: timings need the machine to themselves
        target_dir = ctx.out_dir / TargetPaths(label).dir
        proc = subprocess.run([sys.executable, "-m", "aotbuild.actions.bench", str(target_dir), str(ctx.root),
                               str(args.warmup), str(args.repeats)], capture_output=True, text=True)
        if proc.returncode:
            print(f"FAILED {label}: bench failed:\n{proc.stderr.strip()}", file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{'target':36} {'eager ms':>9} {'.pt2 ms':>9} {'.so ms':>9} {'p90 .so':>9} {'speed-up':>8} threads")
    for r in rows:
        speedup = r["eager"]["median_ms"] / r["so"]["median_ms"]
        print(f"{r['label']:36} {r['eager']['median_ms']:9.3f} {r['pt2']['median_ms']:9.3f} "
              f"{r['so']['median_ms']:9.3f} {r['so']['p90_ms']:9.3f} {speedup:7.2f}x {r['threads']:>7}")
    if args.json_report:
        atomic_write(Path(args.json_report), pretty_json(rows))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    ctx = engine.open_workspace(Path.cwd(), args.cache_dir)
    plan = ctx.plan
    selection = select(plan, args.patterns, ctx.current_package)
    for error in selection.errors:
        print(f"error: {error}", file=sys.stderr)
    if args.output == "label":  # labels only: at 10,000 targets the output paths below cost more than planning
        if selection.labels:
            print("\n".join(map(str, selection.labels)))
        return 2 if selection.errors else 0
    rows = []
    exports = [plan.targets[str(label)]["goals"]["export"] for label in selection.labels]
    deps = discovered_deps(plan.ninja, ctx.out_dir, exports) if exports else {}
    for label, export_goal in zip(selection.labels, exports):
        paths = TargetPaths(label)
        rows.append({"label": str(label), "tags": plan.targets[str(label)]["tags"], "outputs": {
            "so": str(ctx.out_dir / paths.dir / paths.alias("so")),
            "pt2": str(ctx.out_dir / paths.dir / paths.alias("pt2")),
            "manifest": str(ctx.out_dir / paths.manifest)},
            # What the last export imported (workspace files, distribution stamps); empty before a build.
            "deps": [_workspace_relative(d, ctx.root) for d in deps.get(export_goal, [])]})
    print(json.dumps(rows, indent=2))
    return 2 if selection.errors else 0


def _workspace_relative(path: str, root: Path) -> str:
    p = Path(path)
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else path


def cmd_cache(args: argparse.Namespace) -> int:
    from aotbuild.cache.local import LocalStore

    ctx = engine.open_workspace(Path.cwd(), args.cache_dir)
    store = LocalStore(ctx.cache_dir)
    if args.cache_command == "path":
        print(ctx.cache_dir)
    elif args.cache_command == "stats":
        for key, value in store.stats().items():
            print(f"{key}: {value}")
        # Inductor's precompiled headers: not cache entries (gc leaves them), but they take disk space.
        headers = ctx.cache_dir / "tmp"
        size = sum(f.stat().st_size for f in headers.rglob("*") if f.is_file()) if headers.exists() else 0
        print(f"compiler_tmp_bytes: {size}")
        last = ctx.cache_dir / engine.LAST_BUILD_FILE
        if last.exists():
            usage = json.loads(last.read_text())
            print(f"last build: {usage['hits']} hits, {usage['misses']} misses, {usage['actions']} actions, "
                  f"{len(usage['corrupt'])} corrupt entries; outcomes {usage['outcomes']}")
            for line in remote_summary.lines(usage["remote"]) if usage.get("remote") else []:
                print(line.replace("aotbuild: remote cache", "last build: remote cache", 1))
    elif args.cache_command == "verify":
        from aotbuild.engine.output_checks import repair_mismatched, target_dirs

        corrupt = store.verify()
        for name in corrupt:
            print(f"corrupt (removed): {name}")
        # What aot-out/ links to may be a copy, or changed after the cache entry was replaced: check it too.
        bad = [path for d in target_dirs(ctx.out_dir) for path in repair_mismatched(d)]
        for path in bad:
            print(f"corrupt (removed; the next build restores it): {path} differs from its manifest.json")
        print(f"aotbuild: cache verified, {len(corrupt)} corrupt entries removed; "
              f"{len(bad)} artifacts in {ctx.out_dir} differ from their manifests")
        return 1 if corrupt or bad else 0
    elif args.cache_command == "gc":
        if not args.max_size and not args.max_age:
            raise UserError("cache gc needs --max-size and/or --max-age")
        removed = store.gc(_size(args.max_size) if args.max_size else None,
                           _age(args.max_age) if args.max_age else None)
        kept = f"; kept {store.skipped_in_use} in use by a running build" if store.skipped_in_use else ""
        print(f"aotbuild: evicted {len(removed)} entries{kept}")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Like parse_args, but `-//pkg:x` and `-:x` are subtractive patterns, not unknown options (as in Bazel)."""
    p = parser()
    args, unknown = p.parse_known_args(argv)
    patterns = [a for a in unknown if a.startswith(("-//", "-:"))]
    rest = [a for a in unknown if a not in patterns]
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    if patterns:
        if not hasattr(args, "patterns"):
            p.error(f"unrecognized arguments: {' '.join(patterns)}")
        args.patterns = [a for a in argv if a in patterns or a in args.patterns]
    return args


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.command == "build":
        return cmd_build(args, "compile")
    if args.command == "test":
        return cmd_build(args, "verify")
    if args.command == "bench":
        return cmd_bench(args)
    if args.command == "query":
        return cmd_query(args)
    if args.command == "clean":
        out = find_root(Path.cwd()) / layout.OUT_DIR
        if out.is_symlink():  # remove the link only: its target is not aotbuild's to delete
            target = os.readlink(out)
            out.unlink()
            print(f"aotbuild: removed the symlink {out} (its target {target} was left alone)")
            return 0
        if out.exists():
            shutil.rmtree(out)  # rmtree never follows symlinks inside the tree; it unlinks them
        print(f"aotbuild: removed {out}")
        return 0
    if args.command == "plan":
        root = find_root(Path.cwd())
        engine.replan(root, root / layout.OUT_DIR)
        return 0
    return cmd_cache(args)


def main(argv: list[str] | None = None) -> int:
    try:
        code = run(sys.argv[1:] if argv is None else argv)
    except AotbuildError as e:
        print(f"error: {e}", file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())

"""The command line: parse arguments, call the engine, print results. Thin, and imports no torch."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from aotbuild import __version__
from aotbuild.errors import AotbuildError, UserError

# What `aotbuild --help` opens with: what the tool does for its user (the module docstring is for developers).
DESCRIPTION = """\
Build PyTorch models ahead of time, incrementally, from a shared cache.

Declare models in BUILD.aot.yaml files; aotbuild exports and compiles each one with AOTInductor into a
self-contained .so and .pt2 under aot-out/, rebuilds only what changed, reuses what any build already
compiled, and `aotbuild test` checks every artifact against eager PyTorch."""
EXAMPLES = """\
examples:
  aotbuild build //...                every target of the workspace
  aotbuild build //models:all -k      one package, building all that can be built
  aotbuild test //models:mlp          build, then verify against eager PyTorch
  aotbuild query //... --output json  targets, their outputs and dependencies
  aotbuild cache stats                what the cache holds

A COMMAND's own options: aotbuild COMMAND --help. Documentation: README.md."""
COMMAND_MODULES = {"build": "build", "test": "build", "bench": "bench", "query": "outputs", "clean": "outputs",
                   "plan": "outputs", "stamp": "outputs", "cache": "cache", "executor": "executor"}


def _add_cache_flag(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's --cache-dir only overrides the global one when given.
    p.add_argument("--cache-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _add_build_flags(p: argparse.ArgumentParser) -> None:
    _add_cache_flag(p)
    p.add_argument("patterns", nargs="+", metavar="PATTERN", help="target patterns: //pkg:name, //pkg:all, //..., -//x")
    p.add_argument("-j", "--jobs", type=int, help="parallel jobs (ninja's default: cores + 2)")
    p.add_argument("-k", "--keep-going", action="store_true", help="build every target that can be built")
    p.add_argument("--explain", action="store_true", help="show why ninja considers each step out of date "
                   "(always runs ninja)")
    p.add_argument("-v", "--verbose", action="store_true", help="say how the build was decided: the no-op stamp, "
                   "or why it is off")
    p.add_argument("--report", metavar="PATH", help="write a JSON report: each target's outcome, failures, time")
    p.add_argument("--remote-cache", metavar="URL", help="http(s)://host/prefix (Bazel HTTP cache protocol) or "
                   "s3://bucket/prefix; default $AOTBUILD_REMOTE_CACHE, then WORKSPACE cache.remote; '' turns it off")
    p.add_argument("--remote-upload", action="store_true", help="write results to the remote cache (CI); "
                   "without it the remote is only read")
    p.add_argument("--remote-required", action="store_true", help="fail the build when the remote cache fails, "
                   "instead of warning and building locally")
    p.add_argument("--no-workers", dest="workers", action="store_false", help="run each action in a process of its "
                   "own instead of forking it from a warm worker that imported torch once (also: AOTBUILD_WORKERS=0)")
    p.add_argument("--executor", metavar="URL", help="run compile misses on a Ray cluster, ray://HOST:PORT (needs "
                   "the remote cache, which it uploads to); default $AOTBUILD_EXECUTOR, then WORKSPACE executor; "
                   "'' turns it off")
    p.add_argument("--executor-required", action="store_true", help="fail an action the cluster could not run "
                   "(after one retry elsewhere) instead of running it here with a warning")
    p.add_argument("--shard", metavar="K/N", type=_shard, help="build only the K-th of N deterministic shares "
                   "of the selected targets (a CI matrix)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aotbuild", description=DESCRIPTION, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"aotbuild {__version__}")
    p.add_argument("--cache-dir", help="cache root (default: $AOTBUILD_CACHE_DIR, WORKSPACE cache.dir, "
                                       "$XDG_CACHE_HOME/aotbuild)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
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
    sub.add_parser("stamp", help="what the no-op stamp recorded, and which entry moved since")
    c = sub.add_parser("cache", help="inspect and maintain the cache")
    _add_cache_flag(c)
    csub = c.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    csub.add_parser("stats", help="entries and bytes in the cache")
    csub.add_parser("path", help="print the cache root")
    csub.add_parser("verify", help="rehash every entry; remove and report corrupt ones")
    evict = csub.add_parser("gc", help="evict least recently used entries")
    evict.add_argument("--max-size", help="size budget, e.g. 500M, 10G")
    evict.add_argument("--max-age", help="evict entries unused for longer, e.g. 7d, 12h")
    keygen = csub.add_parser("keygen", help="make an ed25519 key pair for signed remote-cache entries")
    keygen.add_argument("--private-key", required=True, metavar="FILE",
                        help="where to write the private key (CI's secret; mode 0600, never overwritten)")
    e = sub.add_parser("executor", help="set up cluster nodes for --executor")
    esub = e.add_subparsers(dest="executor_command", required=True, metavar="ACTION")
    esub.add_parser("resources", help="this node's routing labels, for `ray start --resources=...`")
    return p


def _shard(text: str) -> tuple[int, int]:
    from aotbuild.engine.build import parse_shard

    try:
        return parse_shard(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Like parse_args, but `-//pkg:x` and `-:x` are subtractive patterns, not unknown options (as in Bazel)."""
    p = parser()
    args, unknown = p.parse_known_args(argv)
    patterns = [a for a in unknown if a.startswith(("-//", "-:")) and hasattr(args, "patterns")]
    if len(patterns) < len(unknown):
        p.error(f"unrecognized arguments: {' '.join(a for a in unknown if a not in patterns)}")
    if patterns:
        args.patterns = [a for a in argv if a in patterns or a in args.patterns]
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        # Imported on use: the CLI starts fast, and only `build`, `test` and `bench` need the engine.
        module = importlib.import_module(f"aotbuild.commands.{COMMAND_MODULES[args.command]}")
        code = getattr(module, f"cmd_{args.command}")(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (`aotbuild query //... | head -1`): stop quietly with the status of a process
        # killed by SIGPIPE (Python ignores it, so the write raised), and let what is still buffered go nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE
    except AotbuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130

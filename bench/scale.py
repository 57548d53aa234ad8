"""Planning at monorepo scale: first plan, no-op, touch and edit of one BUILD file, on a synthetic workspace.

    .venv/bin/python bench/scale.py [--packages 1000] [--small-packages 100] [--per-package 10] [--repeats 5]

It prints each scenario (wall seconds: the median of --repeats runs) and a table against issue 22's goals.
An edit whose build needs work (a shape) is set against that work alone: ninja, on a manifest of the edited
package's file alone (with logs of its own), rerunning the same edges; the goal is on what the build takes
beyond it.

Every command is the real `aotbuild` CLI running the real ninja. Only the actions are stand-ins: a build of
10,000 targets runs 20,000 export/compile processes, hours of torch on a 2-core machine, and none of that is
what this measures. The stand-in is the interpreter path the ninja files name: a bash script that, when
AOTBUILD_BENCH_STANDIN is set and it is asked to run `-m aotbuild.actions.*`, writes what the action would
(graph.json, reference.json, reference_io.pt, a depfile naming the same 11 files a real export of these models names and its
sidecar list, the artifacts, their
aliases, manifest.json, an event line) in about a millisecond; otherwise it execs the real Python under the
same name, so the commands and ninja's log are exactly those of a real build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.synthetic import generate  # noqa: E402

STANDIN = r'''#!/bin/bash
# aotbuild bench stand-in: see bench/scale.py.
if [ -n "$AOTBUILD_BENCH_STANDIN" ] && [ "$1" = -S ] && [ "${3#aotbuild.actions.}" != "$3" ]; then
  shift 2; set -- -m "$@"  # the action client's command: answered here, without starting its Python
fi
if [ -n "$AOTBUILD_BENCH_STANDIN" ] && [ "$1" = -m ] && [ "${2#aotbuild.actions.}" != "$2" ]; then
  spec=$3; dir=${spec%/*}; name=${dir##*/}; name=${name#@}; action=${2#aotbuild.actions.}; label="//${dir%/*}:$name"
  case $action in
    export)
      printf '{"graph_hash": "%s-%s"}\n' "$name" "$RANDOM" > "$dir/graph.json"
      printf '{}\n' > "$dir/reference.json"; printf 'pt' > "$dir/reference_io.pt"
      printf '%s\n' $AOTBUILD_BENCH_DEPS > "$dir/graph.deps"
      printf '%s: %s\n' "$dir/graph.json" "$AOTBUILD_BENCH_DEPS" > "$dir/graph.json.d"
      outcome=exported;;
    compile)
      printf 'so' > "$dir/$name-0123456789abcdef.so"; printf 'pt2' > "$dir/$name-0123456789abcdef.pt2"
      ln -sfn "$name-0123456789abcdef.so" "$dir/$name.so"; ln -sfn "$name-0123456789abcdef.pt2" "$dir/$name.pt2"
      printf '{"label": "%s"}\n' "$label" > "$dir/manifest.json"
      outcome=compiled;;
  esac
  if [ -n "$AOTBUILD_EVENTS" ]; then
    printf '{"label": "%s", "action": "%s", "outcome": "%s", "seconds": 0, "hits": 0, "misses": 0, "corrupt": []}\n' \
      "$label" "$action" "$outcome" >> "$AOTBUILD_EVENTS"
  fi
  exit 0
fi
exec -a "$0" @REAL@ "$@"
'''


def make_interpreter(where: Path) -> Path:
    """A venv whose `python` is the stand-in script in front of this interpreter, seeing this venv's packages."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(where)], check=True)
    site = Path(sysconfig.get_paths(vars={"base": str(where), "platbase": str(where)})["purelib"])
    (site / "_aotbuild_bench.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    python = where / "bin" / "python"
    python.unlink()
    python.write_text(STANDIN.replace("@REAL@", os.path.realpath(sys._base_executable)))
    python.chmod(0o755)
    # The `ninja` package finds its binary beside the running interpreter's scripts.
    (where / "bin" / "ninja").symlink_to(Path(__import__("ninja").BIN_DIR) / "ninja")
    return python


def export_deps(ws: Path) -> str:
    """The files a real export of the synthetic models lists in its depfile: the content stamps of the model's
    two workspace files (planning/input_stamps.py; make_stamps writes them, as the first export would) and the
    METADATA of every distribution it imported (as seen in a real build of this workspace)."""
    from aotbuild.planning import input_stamps

    site = Path(sysconfig.get_paths()["purelib"])
    names = ["aotbuild", "filelock", "mpmath", "networkx", "numpy", "setuptools", "sympy", "torch", "typing_extensions"]
    files = [ws / "aot-out" / input_stamps.stamp_path(input_stamps.file_key(f))
             for f in ("lib/__init__.py", "lib/tiny.py")]
    files += [m for name in names for m in sorted(site.glob(f"{name}-*.dist-info/METADATA"))[:1]]
    return " ".join(str(f) for f in files)


def make_stamps(ws: Path) -> None:
    from aotbuild.planning import input_stamps

    keys = [input_stamps.file_key(f) for f in ("lib/__init__.py", "lib/tiny.py")]
    input_stamps.ensure(ws / "aot-out", {k: input_stamps.observe(ws, k, {}) for k in keys})


class Timing(NamedTuple):
    seconds: float  # wall
    cpu: float  # user + system seconds of the whole process tree: what the work costs on a machine of its own
    rss: int  # peak resident MiB of the largest process in the tree
    stdout: str


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> Timing:
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "d = time.perf_counter() - t; u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "sys.stderr.write(r.stderr); print(d, u.ru_utime + u.ru_stime, u.ru_maxrss, r.returncode); "
             "print(r.stdout)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=cwd, env={**os.environ, **env},
                         capture_output=True, text=True, check=True)
    first, _, rest = out.stdout.partition("\n")
    seconds, cpu, rss, code = first.split()
    if code != "0":
        raise SystemExit(f"benchmark command failed ({code}): {' '.join(cmd)}\n{rest}\n{out.stderr}")
    return Timing(float(seconds), float(cpu), int(rss) // 1024, rest)


GOALS = {  # issue 22's acceptance: scenario -> goal in seconds (memory in MiB)
    "first plan, 10k": 4.0, "no-op build, 10k": 0.5, "edit one BUILD file (a tag), build, 10k": 0.8,
    "edit (a shape), build, 10k: beyond the work": 1.0, "peak memory, 10k": 300,
}


def work_manifest(ws: Path, package_id: str) -> str:
    """build.ninja's rules with one package's file alone and ninja logs of their own, so that running it
    never touches the workspace's logs; relative to aot-out/."""
    text = (ws / "aot-out" / ".aotbuild" / "build.ninja").read_text().replace("$\n", "")  # no continuations
    lines = [line for line in text.splitlines() if not line.startswith(("subninja ", "build all:", "default "))]
    lines = [line.replace("builddir = .aotbuild", "builddir = .aotbuild/bench-work") for line in lines]
    name = ".aotbuild/bench-work.ninja"
    (ws / "aot-out" / name).write_text("\n".join(lines) + f"\nsubninja .aotbuild/pkgs/{package_id}.ninja\n")
    return name


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--packages", type=int, default=1000)
    p.add_argument("--small-packages", type=int, default=100, help="the second workspace: first plan only")
    p.add_argument("--per-package", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default="scale-results.json")
    args = p.parse_args()
    rows: list[dict] = []
    peak = 0

    def row(name: str, runs: list[Timing], note: str = "") -> Timing:
        nonlocal peak
        t = Timing(statistics.median(r.seconds for r in runs), statistics.median(r.cpu for r in runs),
                   max(r.rss for r in runs), runs[-1].stdout)
        peak = max(peak, t.rss)
        spread = f"{min(r.seconds for r in runs):.3f}-{max(r.seconds for r in runs):.3f}"
        rows.append({"scenario": name, "seconds": round(t.seconds, 3), "cpu_seconds": round(t.cpu, 3),
                     "runs": len(runs), "spread": spread, "peak_rss_mib": t.rss, "note": note,
                     "load": round(os.getloadavg()[0], 1)})
        print(f"  {name}: {t.seconds:.3f}s wall (median of {len(runs)}, {spread}), {t.cpu:.3f}s cpu, {t.rss} MiB"
              f"  {note}", flush=True)
        return t

    def last_line(t: Timing) -> str:
        return t.stdout.strip().splitlines()[-1]

    # Bytecode as an installed package has it: a checkout run with PYTHONDONTWRITEBYTECODE would otherwise
    # compile every module on every command (90 ms here).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "aotbuild"), str(REPO / "rules")],
                   check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="aotbuild-scale-") as tmp_name:
        tmp = Path(tmp_name)
        python = make_interpreter(tmp / "venv")
        cli = [str(python), "-m", "aotbuild"]
        ninja_bin = str(Path(__import__("ninja").BIN_DIR) / "ninja")

        def first_plans(ws: Path, env: dict[str, str]) -> list[Timing]:
            runs = []
            for _ in range(args.repeats):
                shutil.rmtree(ws / "aot-out", ignore_errors=True)
                runs.append(timed(cli + ["plan"], ws, env))
            return runs

        small = tmp / "small"
        n_small = len(generate(small, args.small_packages, args.per_package))
        env = {"AOTBUILD_CACHE_DIR": str(tmp / "cache"), "AOTBUILD_BENCH_DEPS": export_deps(small)}
        row(f"first plan, {n_small} targets", first_plans(small, env), "`aotbuild plan`, nothing planned before")

        ws = tmp / "ws"
        n = len(generate(ws, args.packages, args.per_package))
        env = {"AOTBUILD_CACHE_DIR": str(tmp / "cache"), "AOTBUILD_BENCH_DEPS": export_deps(ws)}
        # No warm workers: a worker runs the real action in its own forked process, past the stand-in.
        standin = {**env, "AOTBUILD_BENCH_STANDIN": "1", "AOTBUILD_WORKERS": "0"}
        row(f"first plan, {n} targets", first_plans(ws, env), "`aotbuild plan`, nothing planned before")
        make_stamps(ws)
        t = row(f"first build, {n} targets, stand-in actions", [timed(cli + ["build", "//..."], ws, standin)],
                f"{3 * n} edges, {2 * n} action processes")
        print(f"    {last_line(t)}")
        row(f"no-op query, {n} targets", [timed(cli + ["query", "//..."], ws, env) for _ in range(args.repeats)])
        # The first no-op runs ninja and writes the no-op stamp; the ones after it skip ninja.
        row(f"no-op build, {n} targets", [timed(cli + ["build", "//..."], ws, env) for _ in range(args.repeats)])
        no_stamp = {**env, "AOTBUILD_NOOP_STAMP": "0"}
        row(f"no-op build without the stamp, {n} targets",
            [timed(cli + ["build", "//..."], ws, no_stamp) for _ in range(args.repeats)],
            "AOTBUILD_NOOP_STAMP=0: runs ninja, as before the stamp")
        timed(cli + ["build", "//..."], ws, env)  # the stamp again (runs without it remove it)
        plain = [ninja_bin, "-C", "aot-out", "-f", ".aotbuild/build.ninja"]
        row(f"plain ninja no-op, {n} targets", [timed(plain + ["all"], ws, env) for _ in range(args.repeats)],
            "`ninja all` on the same files: the floor under a no-op build")
        stats = subprocess.run(plain + ["-d", "stats", "all"], cwd=ws, capture_output=True, text=True).stdout
        print("    ninja -d stats:\n" + "\n".join("      " + line for line in stats.splitlines()[1:6]))

        build_file = ws / "group0" / "pkg0" / "BUILD.aot.yaml"
        original = build_file.read_text()
        runs = []
        for i in range(args.repeats):
            os.utime(build_file)
            runs.append(timed(cli + ["build", "//..."], ws, env))
        row("touch one BUILD file, build", runs, last_line(runs[-1]))
        runs = []
        for i in range(args.repeats):
            # The last target's tags: no line of another target moves, so no spec changes (`where` has lines).
            build_file.write_text(original + f"    tags: [t{i}]\n")
            runs.append(timed(cli + ["build", "//..."], ws, env))
        row("edit one BUILD file (a tag), build", runs, "re-plans 1 package, no action; " + last_line(runs[-1]))
        runs = []
        for i in range(args.repeats):
            build_file.write_text(original.replace("shape: [2,", f"shape: [{3 + i % 2},", 1))
            runs.append(timed(cli + ["build", "//..."], ws, standin))
        row("edit one BUILD file (a shape), build", runs,
            "re-plans 1 package, 1 export + 1 compile (stand-ins); " + last_line(runs[-1]))
        # The work that edit needs, alone: ninja on that package's file only (the manifest the builds above ran
        # on), made to rerun the same edges: its 10 spec edges (the package's specs file is newer) and one
        # export and compile (graph.json gone).
        package = "group0/pkg0"
        goals = [f"{package}/@m{t}/manifest.json" for t in range(args.per_package)]  # bench/synthetic.py's names
        alone = [ninja_bin, "-C", "aot-out", "-f", work_manifest(ws, "group0~pkg0"), *goals]
        timed(alone, ws, standin)  # its own logs learn every edge of the package once
        runs = []
        for i in range(args.repeats):
            os.utime(ws / "aot-out" / ".aotbuild" / "pkgs" / "group0~pkg0.specs")
            (ws / "aot-out" / package / "@m0" / "graph.json").unlink()  # m0: the target whose shape changed
            runs.append(timed(alone, ws, standin))
        row("the work of that edit alone: ninja on its package's file", runs,
            "10 spec edges, 1 export + 1 compile (stand-ins)")
        build_file.write_text(original)
        timed(cli + ["build", "//..."], ws, standin)
        time.sleep(1)  # planning settles the BUILD file's stat a second after an edit
        row("the first no-op after edits (ninja runs, stamps)", [timed(cli + ["build", "//..."], ws, env)],
            "runs once after a series of edits")
        row("the build after that", [timed(cli + ["build", "//..."], ws, env) for _ in range(args.repeats)],
            "a no-op again")
        (ws / "newpkg").mkdir()
        (ws / "newpkg" / "BUILD.aot.yaml").write_text(
            "targets:\n  t: {model: lib.tiny:Tiny, inputs: {x: {shape: [2, 4], dtype: float32}}}\n")
        row("add a package, query", [timed(cli + ["query", "//..."], ws, env)], "re-plans 1 package")

    by_name = {r["scenario"]: r for r in rows}
    rows_for = {"first plan, 10k": f"first plan, {n} targets", "no-op build, 10k": f"no-op build, {n} targets",
                "edit one BUILD file (a tag), build, 10k": "edit one BUILD file (a tag), build"}
    measured = {name: by_name[scenario]["seconds"] for name, scenario in rows_for.items()}
    measured["peak memory, 10k"] = peak
    # "edit one BUILD file then build <= 0.5 s plus the work that the edit really needs": what the build took
    # beyond ninja running that work alone.
    measured["edit (a shape), build, 10k: beyond the work"] = round(
        by_name["edit one BUILD file (a shape), build"]["seconds"]
        - by_name["the work of that edit alone: ninja on its package's file"]["seconds"], 3)
    floor = by_name[f"plain ninja no-op, {n} targets"]
    print(f"\n{'goal (issue 22)':44} {'goal':>7} {'wall':>8} {'cpu':>7}")
    for name, goal in GOALS.items():
        value = measured[name]
        cpu = f"{by_name[rows_for[name]]['cpu_seconds']}s" if name in rows_for else ""
        unit = "M" if "memory" in name else "s"
        print(f"{name:44} {goal:>6}{unit} {value:>7}{unit} {cpu:>7}  {'met' if value <= goal else 'MISSED'}")
    print(f"(plain ninja's own no-op on the same files: {floor['seconds']}s wall, {floor['cpu_seconds']}s cpu; "
          f"wall and cpu are medians of {args.repeats} runs; load average now {os.getloadavg()[0]:.1f})")
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "load": os.getloadavg()},
              "when": time.strftime("%Y-%m-%d %H:%M"), "rows": rows, "goals": GOALS, "measured": measured}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nmachine: {result['machine']}")


if __name__ == "__main__":
    main()

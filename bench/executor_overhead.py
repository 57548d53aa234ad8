"""The executor's overhead per action: the same compiles and exports through a one-node Ray cluster and with
local warm workers.

    .venv/bin/python bench/executor_overhead.py [--models N] [--json executor-results.json]

Starts nginx (the remote cache) and a one-node Ray cluster on loopback (1 CPU), and writes a workspace of N+1
distinct tiny models. Two builds, each from an empty local cache with -j 1 so no action waits on another: one
local (warm workers), one with --executor (and an empty remote prefix). Then a comment is added to the models'
module in both workspaces and both build again: every model exports again (here, or on the node, since its
first export recorded what it reads) and every compile hits. The first model of each build warms up (a cold
warm worker, precompiled headers) and is left out. Per action it reports the client's action time, and for the
cluster the node's own action time, so that overhead = client action - node action (broker, Ray, scratch
layout, toolchain check, shipping inputs, upload by the node, download and checks here). Both run on this
machine, so the action itself costs the same in both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.conftest import TINY_MODEL  # noqa: E402 - the tests' tiny model
from tests.ray_cluster import RayCluster, without_token_auth  # noqa: E402 - the tests' cluster
from tests.remote_servers import Nginx, free_port  # noqa: E402

PY = sys.executable


def workspace(dest: Path, models: int) -> Path:
    (dest / "m").mkdir(parents=True)
    (dest / "WORKSPACE.aot.yaml").write_text("")
    (dest / "m" / "__init__.py").write_text("")
    (dest / "m" / "tiny.py").write_text(TINY_MODEL)
    targets = "".join(f"  t{n:02d}: {{model: m.tiny:Tiny, kwargs: {{n: {n}}}, "
                      f"inputs: {{x: {{shape: [2, {n}], dtype: float32}}}}}}\n" for n in range(3, 4 + models))
    (dest / "m" / "BUILD.aot.yaml").write_text("targets:\n" + targets)
    return dest


def build(ws: Path, cache: Path, *extra: str) -> tuple[float, dict]:
    report = ws / ".bench-report.json"
    started = time.perf_counter()
    proc = subprocess.run([PY, "-m", "aotbuild", "build", "//...", "-j", "1", "--report", str(report), *extra],
                          cwd=ws, env={**os.environ, "AOTBUILD_CACHE_DIR": str(cache)}, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"build failed in {ws}:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - started, json.loads(report.read_text())


def events(report: dict, action: str) -> list[dict]:
    """The action's events in label order, the warm-up (t03) left out."""
    found = sorted((a for a in report["actions"] if a["action"] == action), key=lambda a: a["label"])
    return found[1:]


def compared(local: dict, remote: dict, action: str) -> list[dict]:
    rows = []
    for mine, theirs in zip(events(local, action), events(remote, action)):
        ex = theirs.get("executor") or {}
        if ex.get("node") is None:
            raise SystemExit(f"{theirs['label']}: the {action} ran on the client: {ex.get('local_because')}")
        rows.append({"label": mine["label"], "local_s": mine["seconds"], "cluster_s": theirs["seconds"],
                     "node_action_s": ex["action_seconds"], "queue_s": ex["queue_s"],
                     "overhead_s": round(theirs["seconds"] - ex["action_seconds"], 3)})
    return rows


def print_table(action: str, rows: list[dict]) -> None:
    from aotbuild.text import table

    def median(field: str) -> float:
        return statistics.median(r[field] for r in rows)

    cells = [[r["label"], f"{r['local_s']:.2f} s", f"{r['cluster_s']:.2f} s", f"{r['node_action_s']:.2f} s",
              f"{r['queue_s']:.3f} s", f"{r['overhead_s']:.2f} s"] for r in rows]
    cells.append(["median", f"{median('local_s'):.2f} s", f"{median('cluster_s'):.2f} s",
                  f"{median('node_action_s'):.2f} s", "", f"{median('overhead_s'):.2f} s"])
    print()
    print("\n".join(table([action, "local warm worker", "through the cluster", "the node's action", "queue",
                            "overhead"], cells)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with without_token_auth():
        measure(args.models, args.json)


def measure(models: int, json_path: Path | None) -> None:
    base = Path(tempfile.mkdtemp(prefix="aotray-bench-"))
    nginx = Nginx(base / "nginx", free_port())
    (base / "nginx").mkdir()
    os.chmod(base, 0o755)
    nginx.start()
    cluster = RayCluster(base, free_port(), free_port())
    try:
        cluster.start_node("head", True, cluster.node_env("head"))
        cluster.wait_nodes(1)
        load = os.getloadavg()
        here, there = workspace(base / "local", models), workspace(base / "cluster", models)
        on_cluster = ("--executor", cluster.url, "--remote-cache", nginx.url(nginx.new_prefix()))
        local_s, local = build(here, base / "local-cache", "--remote-cache", "")
        cluster_s, remote = build(there, base / "cluster-cache", *on_cluster)
        for ws in (here, there):
            with open(ws / "m" / "tiny.py", "a") as f:
                f.write("# a comment: every model exports again, to the same graph\n")
        _, local_edit = build(here, base / "local-cache", "--remote-cache", "")
        _, remote_edit = build(there, base / "cluster-cache", *on_cluster)
        rows = {"compile": compared(local, remote, "compile"), "export": compared(local_edit, remote_edit, "export")}
        result = {"models": models, "load_before": [round(x, 2) for x in load],
                  "load_after": [round(x, 2) for x in os.getloadavg()], "rows": rows,
                  "median_overhead_s": {k: statistics.median(r["overhead_s"] for r in v) for k, v in rows.items()},
                  "build_local_s": round(local_s, 2), "build_cluster_s": round(cluster_s, 2)}
        for action, found in rows.items():
            print_table(action, found)
        print(f"\nwhole cold builds: {local_s:.1f} s local, {cluster_s:.1f} s through the cluster; "
              f"load average {result['load_before']} before, {result['load_after']} after")
        if json_path:
            json_path.write_text(json.dumps(result, indent=1))
    finally:
        for name in list(cluster.nodes):
            cluster.stop_node(name)
        nginx.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""`aotbuild bench`: build, then time what was built, one process per device, and print the table."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aotbuild import layout
from aotbuild.commands.build import build_and_report
from aotbuild.engine import build as engine
from aotbuild.fsutil import atomic_write
from aotbuild.goals import BUILD_GOAL
from aotbuild.hashing import pretty_json
from aotbuild.rules.compile import MANIFEST
from aotbuild.text import table
from aotbuild.workspace.labels import parse_label

COLUMNS = (("eager", "eager ms"), ("pt2", ".pt2 ms"), ("so", ".so ms"))
# A column whose middle 80% of calls spans more than its median: something else had the machine meanwhile.
BUSY_SPREAD = 1.0


@dataclass
class BenchResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # label -> why it was not timed
    failed: dict[str, str] = field(default_factory=dict)  # label -> what went wrong while timing it


def cmd_bench(args: argparse.Namespace) -> int:
    built = build_and_report(args, BUILD_GOAL)
    ctx = built.context
    host_gpu = json.loads((ctx.out_dir / layout.TOOLCHAIN_FILE).read_text())["host"]["gpu_arch"] is not None
    result = BenchResult()
    by_device: dict[str, list[str]] = {}
    for label, outcome in sorted(built.outcomes.items()):
        if outcome == engine.NEEDS_GPU:
            result.skipped[label] = "needs a GPU: none here, and not in the cache"
        elif outcome != "failed" and label not in built.failures:
            manifest = json.loads((ctx.out_dir / layout.TargetPaths(parse_label(label)).file(MANIFEST)).read_text())
            if manifest["device"].startswith("cuda") and not host_gpu:
                result.skipped[label] = "built from the cache, but there is no GPU here to run it"
            else:
                by_device.setdefault(manifest["device"], []).append(label)
    for device, labels in sorted(by_device.items()):  # one after the other: timings need the machine alone
        _time_on(device, labels, ctx.root, args, result)
    print("\n".join(report_lines(result)))
    if args.json_report:
        atomic_write(Path(args.json_report), pretty_json(result.rows))
    return built.exit_code or (1 if result.failed else 0)


def _time_on(device: str, labels: list[str], root: Path, args: argparse.Namespace, result: BenchResult) -> None:
    """Time `labels` (all on `device`) in one process; a target it could not time is a failure, not the end."""
    proc = subprocess.run([sys.executable, "-m", "aotbuild.deploy.bench", str(root), str(args.warmup),
                           str(args.repeats), *labels], capture_output=True, text=True)
    seen = set()
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue  # a model's own print
        row = json.loads(line)
        seen.add(row["label"])
        if "error" in row:
            result.failed[row["label"]] = row["error"]
        else:
            result.rows.append(row)
    for label in labels:
        if label not in seen:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            result.failed[label] = f"the {device} bench process exited with code {proc.returncode}:\n{tail}"


def _cell(stats: dict[str, float]) -> tuple[str, str]:
    return f"{stats['median_ms']:.3f}", f"±{stats['spread'] * 50:.0f}%"


def report_lines(result: BenchResult) -> list[str]:
    """The table (median and spread of each column), then skipped and failed targets and busy warnings."""
    out = []
    if result.rows:
        header = ["target", "device", *(h for _, name in COLUMNS for h in (name, "±")), "speed-up", "threads"]
        cells = []
        for r in result.rows:
            speedup = r["eager"]["median_ms"] / r["so"]["median_ms"]
            cells.append([r["label"], r["device"], *(c for key, _ in COLUMNS for c in _cell(r[key])),
                          f"{speedup:.2f}x", str(r["threads"])])
        out += table(header, cells)
        out.append("median of the timed calls; ±: half the range of the middle 80% of calls, relative to the median")
    out += [f"skipped {label}: {why}" for label, why in sorted(result.skipped.items())]
    out += [f"FAILED {label}: bench: {why}" for label, why in sorted(result.failed.items())]
    busy = [(r["label"], name, r[key]["spread"]) for r in result.rows for key, name in COLUMNS
            if r[key]["spread"] > BUSY_SPREAD]
    if busy:
        worst = max(busy, key=lambda b: b[2])
        out.append(f"warning: timings spread widely ({len(busy)} of {len(result.rows) * len(COLUMNS)} columns; "
                   f"worst {worst[0]} {worst[1]} ±{worst[2] * 50:.0f}%): the machine was busy while they ran; "
                   "compare only numbers taken on an idle machine")
    return out

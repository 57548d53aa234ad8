"""Sub-model incremental builds of a 28.8M-parameter Llama (fp32, 116 MB of weights), in one run.

    python bench/refit.py --json refit.json     # about 2 minutes on 2 cores

One fresh workspace and an empty aotbuild cache; targets a and b are the same model (bench/refit_study/llama_ws)
with different weights files. In this order:
  cold               build //m:a: export and full compile (the machine's compiler caches as they are)
  identical rebuild  a's compile entry and refit record removed, build //m:a again: the warm full compile that
                     the others are measured against (its export is a cache hit)
  new weights        new a.pt (same architecture), build //m:a: exported, then re-packaged
  same architecture  build //m:b (other weights, never built): exported, then re-packaged from a's structure
  one layer edited   the model's third layer scaled in code, build //m:a: another structure, so a full compile
Then `aotbuild test //m:a //m:b` verifies both against eager PyTorch. Seconds come from each build's --report;
the ratio column is the compile action against the identical rebuild's. The load average is printed per row.
For the one-layer edit it also prints how many lines of each C++ translation unit in the .pt2 changed: a unit
that did not change is what a per-unit compile cache could have kept.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODEL_WS = REPO / "bench" / "refit_study" / "llama_ws"
PY = sys.executable
LOOP = "        for layer in self.layers:\n            x = layer(x, cos, sin)\n"
EDITED = ("        for i, layer in enumerate(self.layers):\n            x = layer(x, cos, sin)\n"
          "            if i == 2:\n                x = x * 0.5  # one layer edited\n")
INNER = ("load_weights", "repackage", "store", "codegen", "cxx_compile_link", "trace_and_package",
         "refit_record", "load_program", "lower", "precompiled_header")


def aotbuild(ws: Path, env: dict[str, str], *args: str) -> tuple[float, dict[str, Any]]:
    report = ws / "report.json"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    done = subprocess.run([PY, "-m", "aotbuild", *args, "--report", str(report)], cwd=ws, env=env,
                          capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"aotbuild {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return wall, json.loads(report.read_text())


def weights(ws: Path, env: dict[str, str], *name_seed: str) -> None:
    subprocess.run([PY, "weights.py", *name_seed], cwd=ws, env=env, check=True)


def forget_compile(ws: Path, cache: Path, name: str) -> None:
    """Remove target `name`'s compile entry and its structure's refit record, and its manifest: its next build
    compiles in full with every other cache (export, compiler headers) warm."""
    manifest = ws / "aot-out" / "m" / f"@{name}" / "manifest.json"
    keys = json.loads(manifest.read_text())
    for key in (keys["compile_key"], keys["structure_key"]):
        (cache / "v1" / "ac" / key[:2] / key).unlink()
    manifest.unlink()


def sources(pt2: Path) -> dict[str, list[str]]:
    """The C++ translation units packaged in a .pt2 (`wrapper`, `kernel`), as lines."""
    with zipfile.ZipFile(pt2) as package:
        return {name.rsplit(".", 2)[-2]: package.read(name).decode().splitlines()
                for name in package.namelist() if name.endswith(".cpp")}


def row(scenario: str, wall: float, report: dict[str, Any], label: str) -> dict[str, Any]:
    compile_ = next(a for a in report["actions"] if a["label"] == label and a["action"] == "compile")
    export = next((a for a in report["actions"] if a["label"] == label and a["action"] == "export"), None)
    return {"scenario": scenario, "build_s": round(wall, 2), "compile_s": compile_["seconds"],
            "outcome": compile_["outcome"], "export_s": export["seconds"] if export else 0.0,
            "phases": {k: v for k, v in compile_["phases"].items() if k in INNER and v >= 0.05},
            "load": os.getloadavg()[0]}


def run(tmp: Path) -> list[dict[str, Any]]:
    ws, cache = tmp / "ws", tmp / "cache"
    shutil.copytree(MODEL_WS, ws)
    env = {**os.environ, "AOTBUILD_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    weights(ws, env, "a", "1", "b", "2")
    rows = [row("cold", *aotbuild(ws, env, "build", "//m:a"), "//m:a")]
    forget_compile(ws, cache, "a")
    rows.append(row("identical rebuild", *aotbuild(ws, env, "build", "//m:a"), "//m:a"))
    weights(ws, env, "a", "3")
    rows.append(row("new weights", *aotbuild(ws, env, "build", "//m:a"), "//m:a"))
    rows.append(row("same architecture, other weights", *aotbuild(ws, env, "build", "//m:b"), "//m:b"))
    before = sources(ws / "aot-out" / "m" / "@a" / "a.pt2")
    source = ws / "m" / "llama.py"
    source.write_text(source.read_text().replace(LOOP, EDITED))
    rows.append(row("one layer edited", *aotbuild(ws, env, "build", "//m:a"), "//m:a"))
    after = sources(ws / "aot-out" / "m" / "@a" / "a.pt2")
    for unit in sorted(before):
        changed = [line for line in difflib.unified_diff(before[unit], after.get(unit, []), n=0, lineterm="")
                   if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        print(f"one layer edited: {unit}.cpp {len(before[unit])} -> {len(after.get(unit, []))} lines, "
              f"{len(changed)} changed")
    _, tested = aotbuild(ws, env, "test", "//m:a", "//m:b")
    print("aotbuild test:", tested["targets"])
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    base = next(r for r in rows if r["scenario"] == "identical rebuild")
    out = ["| scenario | build s | export s | compile action s | vs identical rebuild | outcome | load |",
           "|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        out.append(f"| {r['scenario']} | {r['build_s']:.2f} | {r['export_s']:.2f} | {r['compile_s']:.2f} | "
                   f"{100 * r['compile_s'] / base['compile_s']:.0f} % | {r['outcome']} | {r['load']:.1f} |")
    out.append("")
    out += [f"- {r['scenario']}: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["phases"].items()))
            for r in rows]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="aotbuild-refit-bench-") as tmp:
        rows = run(Path(tmp))
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

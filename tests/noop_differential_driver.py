"""Run by tests/test_noop_differential.py with the stand-in interpreter: random edits applied alike to two
copies of a workspace, each followed by a build of both, in this one process (cheap: no start-up per build).
Copy A builds with the no-op stamp, copy B with AOTBUILD_NOOP_STAMP=0. Prints one JSON line of findings.

usage: python noop_differential_driver.py WS_A WS_B STEPS SEED
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from aotbuild import cli, layout

SOURCES = ["m/tiny.py", "m/BUILD.aot.yaml", "n/BUILD.aot.yaml", "WORKSPACE.aot.yaml"]
OUTPUTS = ["graph.json", "manifest.json", "reference.json", "reference_io.pt", "export.json", "compile.json",
           "verify.json", "graph.deps", "{name}.so", "{name}-0123456789abcdef.pt2"]
TARGETS = ["m/@a", "m/@b", "n/@a", "n/@b"]
SOURCE_TEXT = ["class Tiny: pass\n", "class Tiny: pass  # edited\n", "class Tiny:\n    x = 1\n"]
VARIANTS = [("[2, 5]", ""), ("[3, 5]", ""), ("[2, 5]", ", tags: [t]"), ("[4, 5]", ", tags: [u]")]
PATTERNS = ["//...", "//...", "//...", "//...", "//...", "//m:all", "//n:a"]
RACY_S = 0.06


def edit(rng: random.Random) -> tuple[str, object]:
    """One random edit, as data, so that both copies get exactly the same."""
    kind = rng.choice(["source", "build", "delete", "checkout", "mtime_back", "touch", "nothing", "nothing"])
    if kind == "source":
        return kind, rng.randrange(len(SOURCE_TEXT))
    if kind == "build":
        return kind, (rng.choice(["m", "n"]), rng.randrange(len(VARIANTS)))
    if kind == "delete":
        return kind, (rng.choice(TARGETS), rng.choice(OUTPUTS))
    if kind in ("mtime_back", "touch"):
        files = SOURCES + [f"aot-out/{t}/{o}" for t in TARGETS for o in OUTPUTS[:7]]
        return kind, rng.choice(files)
    return kind, None


def apply(ws: Path, change: tuple[str, object], branch: list[str]) -> None:
    kind, arg = change
    if kind == "source":
        (ws / "m" / "tiny.py").write_text(SOURCE_TEXT[arg])  # type: ignore[index]
    elif kind == "build":
        package, variant = arg  # type: ignore[misc]
        shape, tags = VARIANTS[variant]
        path = ws / package / "BUILD.aot.yaml"
        lines = path.read_text().splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if line.startswith("  b: {"))
        lines[at] = f"  b: {{model: m.tiny:Tiny, inputs: {{x: {{shape: {shape}, dtype: float32}}}}{tags}}}\n"
        path.write_text("".join(lines))
    elif kind == "delete":
        target, name = arg  # type: ignore[misc]
        path = ws / layout.OUT_DIR / target / name.format(name=target.rsplit("@", 1)[1])
        if path.is_symlink() or path.exists():
            path.unlink()
    elif kind == "checkout":
        branch[0] = "other" if branch[0] == "main" else "main"
        subprocess.run(["git", "checkout", "-q", "-f", branch[0]], cwd=ws, check=True)
    elif kind in ("mtime_back", "touch"):
        path = ws / str(arg)
        if path.exists():
            when = time.time_ns() - 3600 * 10**9 if kind == "mtime_back" else time.time_ns()
            os.utime(path, ns=(when, when), follow_symlinks=False)


def build(ws: Path, pattern: str, stamp: bool) -> dict:
    """One `aotbuild build` in this process; what it ran, what it said, and whether ninja's log grew."""
    os.chdir(ws)
    actions_log = ws.parent / "actions"
    actions_log.unlink(missing_ok=True)
    os.environ["NOOP_TEST_ACTIONS"] = str(actions_log)
    if stamp:
        os.environ.pop("AOTBUILD_NOOP_STAMP", None)
    else:
        os.environ["AOTBUILD_NOOP_STAMP"] = "0"
    log = ws / layout.OUT_DIR / layout.NINJA_BUILDDIR / ".ninja_log"
    before = log.stat().st_size if log.exists() else -1
    report = ws.parent / "report.json"
    report.unlink(missing_ok=True)
    rc = cli.main(["build", pattern, "-k", "--report", str(report)])
    data = json.loads(report.read_text()) if report.exists() else {}
    actions = sorted(actions_log.read_text().splitlines()) if actions_log.exists() else []
    return {"rc": rc, "actions": actions, "stamp": data.get("noop_stamp", False),
            "ninja_log_grew": (log.stat().st_size if log.exists() else -1) != before,
            "outcomes": data.get("targets", {})}


def compare(findings: dict, step: int, change: tuple[str, object], pattern: str, ws_a: Path, ws_b: Path) -> None:
    """A build of both copies; a difference, or the stamp answering where ninja ran something, is recorded."""
    time.sleep(RACY_S)  # a directory changed within a clock tick of a snapshot is never stamped
    a, b = build(ws_a, pattern, True), build(ws_b, pattern, False)
    findings["answered_by_stamp"] += a["stamp"]
    findings["ninja_ran"] += not a["stamp"]
    findings["last_ran_ninja"] = not a["stamp"]
    wrong = (a["rc"], a["actions"], a["outcomes"]) != (b["rc"], b["actions"], b["outcomes"])
    if a["stamp"] and (b["ninja_log_grew"] or b["actions"]):
        wrong = True  # the stamp said up to date where ninja had something to run
    if wrong:
        findings["differences"].append({"step": step, "change": change, "pattern": pattern, "a": a, "b": b})


def main() -> None:
    ws_a, ws_b, steps, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    branch = [["main"], ["main"]]
    findings = {"steps": 0, "answered_by_stamp": 0, "ninja_ran": 0, "differences": [], "last_ran_ninja": False,
                "edits_on_a_stamp": 0}
    for step in range(steps):
        change = edit(rng)
        pattern = rng.choice(PATTERNS)
        if change[0] != "nothing" and (ws_a / layout.OUT_DIR / layout.STATE_DIR / "noop-stamp").exists():
            findings["edits_on_a_stamp"] += 1
        apply(ws_a, change, branch[0])
        apply(ws_b, change, branch[1])
        findings["steps"] += 1
        compare(findings, step, change, pattern, ws_a, ws_b)
        # A quiet build after one that ran ninja lets the copy with the stamp write one: so that most edits
        # meet a stamp, which is where it could be wrong.
        if findings["last_ran_ninja"]:
            compare(findings, step, ("nothing", None), "//...", ws_a, ws_b)
    print(json.dumps(findings))


if __name__ == "__main__":
    main()

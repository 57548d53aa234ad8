"""`aotbuild test` and `aotbuild bench` on real artifacts."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import TARGETS, aotbuild, copy_example, torch_tripwire

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def tested(cold, tmp_path_factory: pytest.TempPathFactory):
    _, env = cold
    base = tmp_path_factory.mktemp("verify")
    ws = copy_example(base / "ws")
    junit = base / "junit.xml"
    run = aotbuild(["test", "//...", "--junit-xml", str(junit), "--json", str(base / "tests.json")], ws, env)
    return ws, env, run, junit, base


def test_every_example_target_passes(tested) -> None:
    _, _, run, _, _ = tested
    assert run.code == 0, run.output
    for label in TARGETS:
        assert f"PASSED {label}" in run.stdout


def test_dynamic_target_is_checked_at_min_mid_max_and_refuses_out_of_range(tested) -> None:
    ws, _, _, _, _ = tested
    verified = json.loads((ws / "aot-out/models/@mlp_dynamic/verified.json").read_text())
    cases = {c["case"] for c in verified["cases"]}
    assert cases == {"example", "batch=1 (min)", "batch=32 (mid)", "batch=64 (max)"}
    assert {c["artifact"] for c in verified["cases"]} == {"so", "pt2"}
    (rejected,) = verified["rejected"]
    assert {k: rejected[k] for k in ("dim", "size", "refused")} == {"dim": "batch", "size": 65, "refused": True}
    # The artifact's own input check, naming the declared max: not any error that happened to be raised.
    assert "dim value is too large" in rejected["message"] and "64" in rejected["message"]


def test_junit_and_json_reports_list_every_target(tested) -> None:
    _, _, _, junit, base = tested
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert sorted(c.get("name") for c in suite.iter("testcase")) == TARGETS
    data = json.loads((base / "tests.json").read_text())
    assert sorted(r["label"] for r in data) == TARGETS and all(r["passed"] for r in data)


def test_second_test_run_verifies_nothing_and_imports_no_torch(tested, tmp_path: Path) -> None:
    ws, env, _, _, _ = tested
    tripwire, marker = torch_tripwire(tmp_path)
    run = aotbuild(["test", "//..."], ws, {**env, **tripwire})
    assert run.code == 0, run.output
    assert run.report["actions"] == []
    assert "(cached)" in run.stdout
    assert not marker.exists()


def test_a_wrong_artifact_fails_with_its_error_and_exit_3(cold, tmp_path: Path) -> None:
    _, env = cold
    ws = copy_example(tmp_path / "ws")
    build_file = ws / "vision" / "BUILD.aot.yaml"
    # A second classifier whose checkpoint differs: same shapes, other numbers.
    import torch

    state = torch.load(ws / "vision" / "classifier_weights.pt", weights_only=True)
    torch.save({k: v + 0.05 if v.is_floating_point() else v for k, v in state.items()}, ws / "vision" / "other.pt")
    build_file.write_text(build_file.read_text() + """
  other:
    model: vision.classifier:TinyClassifier
    kwargs: {num_classes: 10}
    weights: other.pt
    inputs:
      image: {shape: [4, 1, 28, 28], dtype: float32}
""")
    assert aotbuild(["build", "//vision:classifier", "//vision:other"], ws, env).code == 0
    # Put the classifier's artifacts where //vision:other's belong, as a bad deploy or a stale copy would.
    good = json.loads((ws / "aot-out/vision/@classifier/manifest.json").read_text())
    manifest_path = ws / "aot-out/vision/@other/manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for kind in ("so", "pt2"):
        dst = ws / "aot-out/vision/@other" / manifest["artifacts"][kind]["file"]
        dst.unlink()
        shutil.copy(ws / "aot-out/vision/@classifier" / good["artifacts"][kind]["file"], dst)
        manifest["artifacts"][kind]["sha256"] = hashlib.sha256(dst.read_bytes()).hexdigest()
    os.chmod(manifest_path, 0o644)
    manifest_path.write_text(json.dumps(manifest))
    run = aotbuild(["test", "//vision:other"], ws, env)
    assert run.code == 3, run.output
    assert "FAILED //vision:other" in run.stdout
    assert "max abs error" in run.stdout and "case 'example'" in run.stdout


def test_bench_prints_a_table_and_writes_json(cold, tmp_path: Path) -> None:
    _, env = cold
    ws = copy_example(tmp_path / "ws")
    run = aotbuild(["bench", "//models:mlp", "--repeats", "5", "--warmup", "1", "--json", str(tmp_path / "b.json")],
                   ws, env, report=False)
    assert run.code == 0, run.output
    assert "//models:mlp" in run.stdout and "speed-up" in run.stdout
    (row,) = json.loads((tmp_path / "b.json").read_text())
    assert (row["label"], row["repeats"], row["warmup"], row["inputs"]) == ("//models:mlp", 5, 1, [[8, 64]])
    assert row["threads"] >= 1 and all(row[k]["median_ms"] > 0 for k in ("eager", "pt2", "so"))
    # The table shows the numbers the JSON holds, each median with its spread (statistics themselves:
    # tests/test_bench_stats.py).
    line = next(t for t in run.stdout.splitlines() if t.startswith("//models:mlp"))
    assert line.split()[1:8] == ["cpu", *(cell for k in ("eager", "pt2", "so") for cell in (
        f"{row[k]['median_ms']:.3f}", f"±{row[k]['spread'] * 50:.0f}%"))]


def test_the_summary_of_a_test_counts_verified_targets(tested) -> None:
    _, _, run, _, _ = tested
    summary = run.stdout.splitlines()[-1]
    # Not how the artifacts came (here all from the cache): what the command did to them.
    assert summary.startswith(f"aotbuild: {len(TARGETS)} targets: {len(TARGETS)} verified in "), summary

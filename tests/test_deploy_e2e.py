"""Deploying the example project's artifacts: the C++ consumer in examples/cpp and aotbuild.load in Python."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aotbuild
from aotbuild.deploy import loader

from .conftest import REPO

pytestmark = pytest.mark.torch


@pytest.fixture(scope="session")
def aot_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/cpp built once per session against the installed torch wheel's libtorch (CI installs cmake)."""
    build = tmp_path_factory.mktemp("cpp-build")
    prefix = subprocess.run([sys.executable, "-c", "import torch.utils; print(torch.utils.cmake_prefix_path)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    for cmd in (["cmake", "-S", str(REPO / "examples" / "cpp"), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}",
                 "-DCMAKE_BUILD_TYPE=Release"], ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return build / "aot_run"


def run_cpp(binary: Path, files: loader.TargetFiles, *extra: str, reference: Path | None = None,
            so: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(binary), "--pt2", str(files.pt2), "--reference", str(reference or files.reference_io), *extra]
    if so:
        cmd += ["--so", str(files.so)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("label", ["//models:mlp", "//models:fusion", "//vision:classifier"])
def test_cpp_example_reproduces_the_recorded_outputs(cold, aot_run: Path, label: str) -> None:
    import torch

    ws, _ = cold
    files = loader.locate(label, workspace=ws)
    proc = run_cpp(aot_run, files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recorded = torch.load(files.reference_io, weights_only=True)
    outputs = sum(len(c["outputs"]) for c in recorded["cases"])
    # Every output of every case, through both the .pt2 loader and the bare .so runner, within tolerance.
    assert len(re.findall(r"^ok   pt2 ", proc.stdout, re.M)) == outputs
    assert len(re.findall(r"^ok   so ", proc.stdout, re.M)) == outputs
    assert "FAIL" not in proc.stdout and proc.stdout.rstrip().endswith("pt2 and so")


def test_cpp_example_runs_a_dynamic_batch_artifact_at_two_batch_sizes(cold, aot_run: Path) -> None:
    ws, _ = cold
    files = loader.locate("//models:mlp_dynamic", workspace=ws)
    proc = run_cpp(aot_run, files, "--case", "batch=1 (min)", "--case", "batch=64 (max)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "case 'batch=1 (min)': Float[1, 64]" in proc.stdout
    assert "case 'batch=64 (max)': Float[64, 64]" in proc.stdout
    assert re.search(r"^ok   pt2 case 'batch=1 \(min\)' output output \[1, 10\]", proc.stdout, re.M)
    assert re.search(r"^ok   so case 'batch=64 \(max\)' output output \[64, 10\]", proc.stdout, re.M)
    assert "PASS: 2 case(s)" in proc.stdout


def test_cpp_example_fails_when_outputs_drift_from_the_reference(cold, aot_run: Path, tmp_path: Path) -> None:
    import torch

    ws, _ = cold
    files = loader.locate("//models:mlp", workspace=ws)
    recorded = torch.load(files.reference_io, weights_only=True)
    recorded["cases"][0]["outputs"][0][0, 0] += 1e-2  # one element, 100x the float32 tolerance
    drifted = tmp_path / "drifted.pt"
    torch.save(recorded, drifted)
    proc = run_cpp(aot_run, files, reference=drifted)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = re.search(r"^FAIL pt2 case 'example' output output \[8, 10\] max_abs=(\S+)", proc.stdout, re.M)
    assert found and abs(float(found[1]) - 1e-2) < 1e-4, proc.stdout
    assert re.search(r"^FAIL so case 'example'", proc.stdout, re.M)
    assert "MISMATCH" in proc.stdout


def test_cpp_example_fails_on_another_targets_artifact(cold, aot_run: Path) -> None:
    ws, _ = cold
    mlp, dynamic = (loader.locate(label, workspace=ws) for label in ("//models:mlp", "//models:mlp_dynamic"))
    # Same input shape [8, 64] on the example case, different weights: the outputs drift.
    proc = run_cpp(aot_run, dynamic, reference=mlp.reference_io, so=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"^FAIL pt2 case 'example' output output \[8, 10\] max_abs=", proc.stdout, re.M)


def test_load_by_label_runs_the_current_artifact(cold) -> None:
    import torch

    ws, _ = cold
    for label in ("//models:mlp", "//models:mlp_dynamic"):
        model = aotbuild.load(label, workspace=ws)
        assert model.path == loader.locate(label, workspace=ws).pt2
        for case in torch.load(loader.locate(label, workspace=ws).reference_io, weights_only=True)["cases"]:
            torch.testing.assert_close(model(*case["inputs"]), case["outputs"][0], atol=1e-4, rtol=1e-4)


def test_load_refuses_an_artifact_that_differs_from_its_manifest(cold, tmp_path: Path) -> None:
    ws, _ = cold
    files = loader.locate("//models:mlp", workspace=ws)
    copy = tmp_path / "ws"
    (copy / "WORKSPACE.aot.yaml").parent.mkdir()
    (copy / "WORKSPACE.aot.yaml").write_text("")
    target = copy / files.dir.relative_to(ws)
    shutil.copytree(files.dir, target)
    pt2 = target / files.pt2.name
    os.chmod(pt2, 0o644)  # artifacts are read-only hard links into the cache; this is a copy
    data = bytearray(pt2.read_bytes())
    data[len(data) // 2] ^= 1
    pt2.write_bytes(bytes(data))
    with pytest.raises(aotbuild.errors.VerificationError, match="does not match the sha256 in manifest.json"):
        aotbuild.load("//models:mlp", workspace=copy)


def test_load_calls_with_keywords_returns_the_output_tree_and_skips_torch_inductor(cold) -> None:
    """//models:fusion: three positional inputs, a keyword-only one, and a dict of outputs, in a fresh process."""
    ws, _ = cold
    script = (
        "import sys, torch, aotbuild\n"
        f"model = aotbuild.load('//models:fusion', workspace={str(ws)!r})\n"
        "for case in torch.load(model.path.parent / 'reference_io.pt', weights_only=True)['cases']:\n"
        "    ids, mask, dense, scale = case['inputs']\n"
        "    out = model(ids, mask, dense, scale=scale)\n"
        "    assert sorted(out) == ['embedding', 'logits'], out.keys()\n"
        "    for path, want in zip(case['output_paths'], case['outputs']):\n"
        "        torch.testing.assert_close(out[path[2:-2]], want, atol=1e-4, rtol=1e-4)\n"
        "print('inductor imported:', 'torch._inductor' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # aoti_load_package would import torch._inductor and probe the CPU's ISAs in subprocesses (seconds).
    assert proc.stdout.strip() == "inductor imported: False"

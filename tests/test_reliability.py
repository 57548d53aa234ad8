"""Issue 13, the faults that need no torch: names, layout, recovery of spec files, symlinks, leases, reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ninja
import pytest

from aotbuild import layout
from aotbuild.cache.access import CacheAccess, live_leases
from aotbuild.cache.local import LocalStore
from aotbuild.workspace.labels import Label
from aotbuild.layout import TargetPaths

from .conftest import aotbuild, write

TARGET = "{model: m.f:g, inputs: {x: {shape: [2], dtype: float32}}}"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write(root / "WORKSPACE.aot.yaml", "")
    write(root / "good" / "BUILD.aot.yaml", f"targets:\n  a: {TARGET}\n")
    return root


def plain_ninja(ws: Path, *outputs: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(ninja.BIN_DIR) / "ninja"), "-C", str(ws / "aot-out"), "-f", layout.NINJA_FILE,
                           *outputs], capture_output=True, text=True)


def spec_outputs(ws: Path, label: Label) -> list[str]:
    paths = TargetPaths(label)
    return [paths.file("export.json"), paths.file("compile.json")]


# Fault 1: a trailing newline in a target name.

def test_target_name_with_newline_hides_no_sibling(ws: Path) -> None:
    write(ws / "other" / "BUILD.aot.yaml", f'targets:\n  "x\\n": {TARGET}\n  fine: {TARGET}\n')
    run = aotbuild(["query", "//good:a", "//other:fine"], ws)
    assert run.code == 0, run.output
    assert run.stdout.split() == ["//good:a", "//other:fine"]
    run = aotbuild(["query", "//..."], ws)
    assert run.code == 2
    assert "other/BUILD.aot.yaml:2" in run.stderr and "invalid target name 'x\\n'" in run.stderr
    assert run.stdout.split() == ["//good:a", "//other:fine"]
    assert "\nx\n" not in (ws / "aot-out" / layout.NINJA_FILE).read_text()


# Fault 2: aotbuild's files and target directories live in namespaces that cannot collide.

@pytest.mark.parametrize("a, b", [
    (Label("models", "mlp"), Label("models/mlp", "manifest.json")),
    (Label("models", "mlp"), Label("models/mlp", "mlp.so")),
    (Label("", "build.ninja"), Label("build.ninja", "x")),
    (Label("", "x"), Label("x", "export.json")),
])
def test_target_paths_never_overlap(a: Label, b: Label) -> None:
    files_a = {TargetPaths(a).file(n) for n in ("manifest.json", "export.json", "mlp.so", "x")}
    files_b = {TargetPaths(b).file(n) for n in ("manifest.json", "export.json", "mlp.so", "x")}
    for f in files_a | files_b:
        parents = {"/".join(f.split("/")[:i]) for i in range(1, f.count("/") + 1)}
        assert not parents & (files_a | files_b)  # no file of one target is a directory of the other
        assert not f.startswith(layout.STATE_DIR + "/")
    assert TargetPaths(a).dir != TargetPaths(b).dir


def test_colliding_names_plan_and_build_spec_files(ws: Path) -> None:
    write(ws / "BUILD.aot.yaml", f"targets:\n  build.ninja: {TARGET}\n  plan.json: {TARGET}\n")
    write(ws / "models" / "BUILD.aot.yaml", f"targets:\n  mlp: {TARGET}\n")
    write(ws / "models" / "mlp" / "BUILD.aot.yaml", f"targets:\n  manifest.json: {TARGET}\n  mlp.so: {TARGET}\n")
    run = aotbuild(["query", "//..."], ws)
    assert run.code == 0, run.output
    labels = [Label("", "build.ninja"), Label("", "plan.json"), Label("models", "mlp"),
              Label("models/mlp", "manifest.json"), Label("models/mlp", "mlp.so")]
    proc = plain_ninja(ws, *[o for label in labels for o in spec_outputs(ws, label)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for label in labels:
        spec = json.loads((ws / "aot-out" / TargetPaths(label).file("export.json")).read_text())
        assert spec["label"] == str(label)
    assert aotbuild(["query", "//..."], ws).code == 0  # the plan still reads back


# Fault 3: a deleted output directory or spec file recovers by itself, plain ninja included.

@pytest.mark.parametrize("delete", ["dir", "export.json", "compile.json"])
def test_deleted_spec_files_are_rebuilt(ws: Path, delete: str) -> None:
    assert aotbuild(["query", "//..."], ws).code == 0
    outputs = spec_outputs(ws, Label("good", "a"))
    assert plain_ninja(ws, *outputs).returncode == 0
    target_dir = ws / "aot-out" / TargetPaths(Label("good", "a")).dir
    if delete == "dir":
        subprocess.run(["rm", "-rf", str(target_dir)], check=True)
    else:
        (target_dir / delete).unlink()
    proc = plain_ninja(ws, *outputs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((target_dir / "export.json").read_text())["label"] == "//good:a"
    assert json.loads((target_dir / "compile.json").read_text())["label"] == "//good:a"


# Fault 6: gc never evicts what a running build is using.

def test_gc_keeps_entries_used_during_a_running_build(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    old = store.put_bytes(b"old entry")
    old_path = tmp_path / "cache" / "v1" / "cas" / old[:2] / old
    os.utime(old_path, (time.time() - 3600, time.time() - 3600))
    access = CacheAccess.open(tmp_path / "cache", tmp_path / "aot-out")
    with access.lease():
        used = store.put_bytes(b"stored by the running build")
        assert store.gc(max_bytes=0) == [f"cas/{old}"]
        assert store.get_bytes(used) == b"stored by the running build"
        assert store.skipped_in_use == 1
    assert store.gc(max_bytes=0) == [f"cas/{used}"]  # the build is over: nothing holds it any more


def test_a_lease_whose_build_is_gone_protects_nothing(tmp_path: Path) -> None:
    leases = tmp_path / "cache" / "v1" / "leases"
    leases.mkdir(parents=True)
    (leases / "build-dead.lease").write_text(f"1 {time.time()}\n")  # nobody holds its lock
    assert live_leases(tmp_path / "cache" / "v1").since is None
    assert not (leases / "build-dead.lease").exists()


def test_a_lease_outlives_a_killed_cli_while_its_actions_run(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    pid_file = tmp_path / "child.pid"
    # A stand-in CLI: takes the lease, starts an "action" that inherits it, then dies by SIGKILL.
    script = ("import os, signal, subprocess, sys\n"
              "from pathlib import Path\n"
              "from aotbuild.cache.access import CacheAccess\n"
              f"access = CacheAccess.open(Path({str(cache)!r}), Path({str(tmp_path / 'aot-out')!r}))\n"
              "with access.lease() as fds:\n"
              "    child = subprocess.Popen(['sleep', '60'], pass_fds=fds, start_new_session=True)\n"
              f"    Path({str(pid_file)!r}).write_text(str(child.pid))\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", script])
    child = int(pid_file.read_text())
    try:
        assert live_leases(cache / "v1").since is not None
    finally:
        os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while live_leases(cache / "v1").since is not None and time.monotonic() < deadline:
        time.sleep(0.1)  # the orphan is reaped by init, after which its lock is gone
    assert live_leases(cache / "v1").since is None


# Fault 7: symlinks in the output tree.

def test_clean_removes_a_symlinked_aot_out_but_not_its_target(ws: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "precious.txt", "keep me")
    (ws / "aot-out").symlink_to(elsewhere)
    run = aotbuild(["build", "//good:a"], ws)
    assert run.code == 2 and "symlink" in run.stderr and "Traceback" not in run.stderr
    run = aotbuild(["clean"], ws)
    assert run.code == 0, run.output
    assert not (ws / "aot-out").exists() and (elsewhere / "precious.txt").read_text() == "keep me"


# Also: reports, empty packages.

@pytest.mark.parametrize("command, flag", [("build", "--report"), ("test", "--junit-xml"), ("test", "--json")])
@pytest.mark.parametrize("where", ["missing-dir/r.out", "."])
def test_unwritable_report_path_fails_before_building(ws: Path, command: str, flag: str, where: str) -> None:
    run = aotbuild([command, "//good:a", flag, str(ws / where)], ws, report=False)
    assert run.code == 2, run.output
    assert flag in run.stderr and "Traceback" not in run.stderr
    assert not (ws / "aot-out" / "good").exists()  # nothing was built


def test_all_of_a_package_without_targets_says_so(ws: Path) -> None:
    write(ws / "empty" / "BUILD.aot.yaml", "targets: {}\n")
    run = aotbuild(["query", "//empty:all"], ws)
    assert run.code == 2 and "has no targets" in run.stderr and "no package" not in run.stderr
    run = aotbuild(["query", "//empty:x"], ws)
    assert run.code == 2 and "has no targets" in run.stderr


def test_example_inputs_over_the_size_limit_are_refused_when_planning(ws: Path) -> None:
    write(ws / "big" / "BUILD.aot.yaml",
          "targets:\n"
          "  huge: {model: m.f:g, inputs: {x: {shape: [100000, 100000], dtype: float32}}}\n"
          "  huge_dim: {model: m.f:g, inputs: {x: {shape: [n, 100000], dtype: float32}}, dims: {n: {min: 1, max: 10000}}}\n"
          "  allowed: {model: m.f:g, max_input_bytes: 64G, inputs: {x: {shape: [100000, 100000], dtype: float32}}}\n"
          "  small: {model: m.f:g, inputs: {x: {shape: [1000, 1000], dtype: float32}}}\n")
    run = aotbuild(["query", "//big:all"], ws)
    assert run.code == 2
    assert "big/BUILD.aot.yaml:2, target 'huge'" in run.stderr and "37.3 GiB" in run.stderr
    assert "target 'huge_dim'" in run.stderr and "over the limit of 1.0 GiB" in run.stderr
    assert run.stdout.split() == ["//big:allowed", "//big:small"]
    write(ws / "WORKSPACE.aot.yaml", "defaults: {max_input_bytes: 1M}\n")
    run = aotbuild(["query", "//big:small"], ws)
    assert run.code == 2 and "over the limit of 1.0 MiB" in run.stderr


def test_a_symlinked_state_dir_is_never_written_through(ws: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ws / "aot-out").mkdir()
    (ws / "aot-out" / layout.STATE_DIR).symlink_to(elsewhere)
    run = aotbuild(["query", "//..."], ws)
    assert run.code == 0, run.output
    assert "was a symlink" in run.stderr
    assert list(elsewhere.iterdir()) == []
    assert (ws / "aot-out" / layout.PLAN_FILE).is_file()


def test_gc_keeps_what_a_running_builds_targets_were_built_from(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    blob = store.put_bytes(b"an artifact")
    key = "ab" * 32
    store.put_action(key, {"so": blob, "blobs": [blob]})
    other = store.put_bytes(b"nobody uses this")
    hour_ago = time.time() - 3600
    for path in (tmp_path / "cache" / "v1").rglob("*"):
        if path.is_file():
            os.utime(path, (hour_ago, hour_ago))
    out = tmp_path / "ws" / "aot-out"
    target = out / TargetPaths(Label("m", "a")).dir
    write(target / "manifest.json", json.dumps({"compile_key": key, "artifacts": {"so": {"sha256": blob}}}))
    with CacheAccess.open(tmp_path / "cache", out).lease():
        assert store.gc(max_bytes=0) == [f"cas/{other}"]
    assert sorted(store.gc(max_bytes=0)) == sorted([f"cas/{blob}", f"ac/{key}"])

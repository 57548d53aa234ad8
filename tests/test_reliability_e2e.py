"""Issue 13, the faults that need real builds: tiny models sharing one session cache (see conftest.tiny_cache)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aotbuild.workspace.labels import Label
from aotbuild.layout import TargetPaths

from .conftest import aotbuild, make_tiny

pytestmark = pytest.mark.torch

A = TargetPaths(Label("m", "a"))
B = TargetPaths(Label("m", "b"))


def files_match_manifests(ws: Path, *targets: TargetPaths) -> None:
    for paths in targets:
        target_dir = ws / "aot-out" / paths.dir
        manifest = json.loads((target_dir / "manifest.json").read_text())
        for kind, art in manifest["artifacts"].items():
            alias = target_dir / paths.alias(kind)
            assert alias.resolve().name == art["file"]
            assert hashlib.sha256(alias.read_bytes()).hexdigest() == art["sha256"]


def flip_byte(path: Path) -> None:
    """Corrupt a file in place (same inode, so every hard link to it sees the change)."""
    mode = path.stat().st_mode
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.chmod(path, mode)


@pytest.fixture
def ws(tmp_path: Path, tiny_cache: dict[str, str]) -> Path:
    root = make_tiny(tmp_path / "ws")
    run = aotbuild(["build", "//..."], root, tiny_cache)
    assert run.code == 0, run.output
    return root


# Fault 3

def test_deleted_target_dir_recovers(ws: Path, tiny_cache: dict[str, str]) -> None:
    shutil.rmtree(ws / "aot-out" / A.dir)
    (ws / "aot-out" / B.file("compile.json")).unlink()
    run = aotbuild(["build", "//..."], ws, tiny_cache)
    assert run.code == 0, run.output
    files_match_manifests(ws, A, B)


# Fault 4

def _read_only_build(cache: Path, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run aotbuild with `cache` mounted read-only in a private mount namespace (works as root, too)."""
    inner = [sys.executable, "-m", "aotbuild", *args]
    cmd = ["unshare", "-rm", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(cache), *inner]
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        if os.geteuid() == 0:
            pytest.skip("needs user namespaces (unshare -rm) to make a read-only cache as root")
        subprocess.run(["chmod", "-R", "a-w", str(cache)], check=True)
        cmd = inner
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env})


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_read_only_cache_is_used_and_never_written(tmp_path: Path, tiny_cache: dict[str, str]) -> None:
    cache = tmp_path / "ro-cache"
    shutil.copytree(tiny_cache["AOTBUILD_CACHE_DIR"], cache, ignore=shutil.ignore_patterns("tmp", "locks", "leases"))
    before = _listing(cache)
    ws = make_tiny(tmp_path / "ws")
    env = {"AOTBUILD_CACHE_DIR": str(cache)}
    proc = _read_only_build(cache, ["build", "//..."], ws, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.count("read-only") == 1 and "Traceback" not in proc.stderr
    assert "2 artifact-cache hit" in proc.stdout
    files_match_manifests(ws, A, B)
    # A miss: an edit that re-exports (torch runs) while the compiled artifact is still a hit.
    (ws / "m" / "tiny.py").write_text((ws / "m" / "tiny.py").read_text() + "# a comment\n")
    proc = _read_only_build(cache, ["build", "//..."], ws, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exported" in proc.stdout and "Traceback" not in proc.stderr
    assert any((ws / "aot-out" / ".aotbuild" / "cache" / "v1" / "ac").rglob("*"))  # the miss went to aot-out/
    assert _listing(cache) == before


# Fault 5

def test_artifact_changed_in_place_is_caught_by_test_and_by_cache_verify(ws: Path, tiny_cache: dict[str, str]
                                                                         ) -> None:
    run = aotbuild(["test", "//m:a"], ws, tiny_cache)
    assert run.code == 0, run.output
    flip_byte((ws / "aot-out" / A.dir / A.alias("so")).resolve())  # also the cache's blob: a hard link
    run = aotbuild(["test", "//m:a"], ws, tiny_cache)
    assert run.code == 0, run.output
    assert run.report["targets"]["//m:a"] == "compiled"  # not "verify-cache hit": the artifact was rebuilt
    assert "does not match the sha256" in run.stderr
    files_match_manifests(ws, A)

    flip_byte((ws / "aot-out" / B.dir / B.alias("pt2")).resolve())
    run = aotbuild(["cache", "verify"], ws, tiny_cache, report=False)
    assert run.code == 1
    assert str(ws / "aot-out" / B.dir) in run.stdout and "differs from its manifest" in run.stdout
    assert not (ws / "aot-out" / B.file("manifest.json")).exists()  # so the next build restores it


# Fault 7

def test_a_symlinked_target_dir_is_replaced_not_written_through(ws: Path, tmp_path: Path,
                                                               tiny_cache: dict[str, str]) -> None:
    user = tmp_path / "user-dir"
    user.mkdir()
    (user / "a-0123456789abcdef.so").write_text("a user's file that looks like an old artifact")
    (user / "notes.txt").write_text("mine")
    shutil.rmtree(ws / "aot-out" / A.dir)
    (ws / "aot-out" / A.dir).symlink_to(user)
    run = aotbuild(["build", "//m:a"], ws, tiny_cache)
    assert run.code == 0, run.output
    assert "was a symlink" in run.stderr
    assert sorted(p.name for p in user.iterdir()) == ["a-0123456789abcdef.so", "notes.txt"]
    assert not (ws / "aot-out" / A.dir).is_symlink()
    files_match_manifests(ws, A)


# Fault 8

SLOW_MODEL = '''import os
import signal
import time


def make():
    if os.environ.get("SLOW_IGNORES_SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(os.environ["SLOW_PID_FILE"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)
'''


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _start_slow_build(ws: Path, tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    (ws / "m" / "slow.py").write_text(SLOW_MODEL)
    (ws / "m" / "BUILD.aot.yaml").write_text("targets:\n  slow: {model: m.slow:make, inputs: {x: {shape: [2], dtype: float32}}}\n")
    pid_file = tmp_path / "slow.pid"
    env = {**os.environ, **env, "SLOW_PID_FILE": str(pid_file)}
    cli = subprocess.Popen([sys.executable, "-m", "aotbuild", "build", "//m:slow"], cwd=ws, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 180
    while not pid_file.exists() or not pid_file.read_text():
        assert cli.poll() is None, cli.communicate()
        assert time.monotonic() < deadline, "the export never started"
        time.sleep(0.2)
    return cli, int(pid_file.read_text())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_cli_stops_every_action(tmp_path: Path, tiny_cache: dict[str, str], signum: int) -> None:
    ws = make_tiny(tmp_path / "ws")
    cli, action = _start_slow_build(ws, tmp_path, tiny_cache)
    cli.send_signal(signum)  # to the CLI alone, as `kill` does: its actions are in other process groups
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == 128 + signum, err
    assert not _alive(action), "the export kept running after the build was interrupted"
    assert "interrupted" in err and "Traceback" not in err


def test_a_second_interrupt_kills_what_ignores_the_first(tmp_path: Path, tiny_cache: dict[str, str]) -> None:
    ws = make_tiny(tmp_path / "ws")
    cli, action = _start_slow_build(ws, tmp_path, {**tiny_cache, "SLOW_IGNORES_SIGINT": "1"})
    cli.send_signal(signal.SIGINT)
    time.sleep(3)
    assert cli.poll() is None and _alive(action)  # waiting for the action to stop
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == 130, err
    assert not _alive(action)


# Also: a weights file that torch.load(weights_only=True) refuses.

def test_refused_weights_never_suggest_weights_only_false(tmp_path: Path, tiny_cache: dict[str, str]) -> None:
    import datetime

    import torch

    ws = make_tiny(tmp_path / "ws")
    torch.save({"lin.weight": torch.zeros(4, 4), "when": datetime.date(2020, 1, 1)}, ws / "m" / "w.pt")
    (ws / "m" / "BUILD.aot.yaml").write_text(
        "targets:\n  w: {model: m.tiny:Tiny, weights: w.pt, inputs: {x: {shape: [2, 4], dtype: float32}}}\n")
    run = aotbuild(["build", "//m:w"], ws, tiny_cache)
    assert run.code != 0, run.output
    assert "was refused" in run.stderr and "datetime.date" in run.stderr
    log = (ws / "aot-out" / TargetPaths(Label("m", "w")).file("export.log")).read_text()
    for text in (run.output, log):
        assert "weights_only=False" not in text and "weights_only` argument" not in text
        assert "allowlist" not in text


# The chaos test: builds interleaved with `cache gc --max-size 0`, SIGINT and SIGKILL, then everything is sound.

CHAOS_SECONDS = 45.0  # new rounds start only this long: the test stays bounded even when gc forces compiles


def _copy_cache(src: Path, dest: Path) -> None:
    """Hard-link copy (blobs are read-only and replaced, never edited): cheap, and gc here leaves src alone."""
    shutil.copytree(src, dest, copy_function=os.link, ignore=shutil.ignore_patterns("locks", "leases", "last-build.json"))


def _start(args: list[str], ws: Path, env: dict[str, str], output: Path) -> subprocess.Popen:
    # Output to a file, not a pipe: the actions of a SIGKILLed build keep the pipe open while they finish.
    with open(output, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "aotbuild", *args], cwd=ws, env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _finish(build: subprocess.Popen, output: Path) -> str:
    build.wait(timeout=400)  # generous: a build that gc forced to recompile takes minutes on a busy 2-core box
    return output.read_text()


def test_chaos_builds_gc_and_signals_end_sound(tmp_path: Path, tiny_cache: dict[str, str]) -> None:
    import random

    seed = int(os.environ.get("AOTBUILD_CHAOS_SEED", time.time_ns() % 100000))
    rng = random.Random(seed)
    cache = tmp_path / "cache"
    _copy_cache(Path(tiny_cache["AOTBUILD_CACHE_DIR"]), cache)
    env = {"AOTBUILD_CACHE_DIR": str(cache)}
    ws = make_tiny(tmp_path / "ws")
    model = ws / "m" / "tiny.py"
    log = [f"seed {seed}"]

    # gc racing a build that is not interrupted: the build must still succeed.
    output = tmp_path / "build.out"
    build = _start(["build", "//..."], ws, env, output)
    deadline = time.monotonic() + 60
    while not any((cache / "v1" / "leases").glob("*.lease")) and build.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    gc = aotbuild(["cache", "gc", "--max-size", "0"], ws, env)
    out = _finish(build, output)
    assert gc.code == 0 and build.returncode == 0, f"{log}\n{gc.output}\n{out}"

    started = time.monotonic()
    while time.monotonic() - started < CHAOS_SECONDS:
        if rng.random() < 0.3:  # a source edit makes the export run for real (torch) next time
            model.write_text(model.read_text() + f"# edit {rng.random()}\n")
        build = _start(["build", "//..."], ws, env, output)
        time.sleep(rng.uniform(1.0, 6.0))  # after start-up: a Ctrl-C then is a clean exit
        move = rng.choice(["sigint", "sigkill", "gc"])
        log.append(move)
        if move == "gc":
            assert aotbuild(["cache", "gc", "--max-size", "0"], ws, env).code == 0
            build.send_signal(signal.SIGINT)
        elif move == "sigint":
            build.send_signal(signal.SIGINT)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(build.pid, signal.SIGKILL)  # the CLI and ninja; actions live on in their own groups
        out = _finish(build, output)
        assert "Traceback" not in out, f"{log}\n{out}"
        # A SIGINT landing after main() returned ends the interpreter by the signal itself (Python re-raises an
        # uncaught one at exit): -SIGINT, which a shell reports as 130 like the CLI's own exit code.
        assert build.returncode in (0, 130, -signal.SIGINT, -signal.SIGKILL), f"{log}\n{out}"

    # Orphaned actions of a SIGKILLed build still hold the workspace lock: this build waits for them.
    run = aotbuild(["build", "//..."], ws, env)
    assert run.code == 0, f"{log}\n{run.output}"
    run = aotbuild(["cache", "verify"], ws, env, report=False)
    assert run.code == 0, f"{log}\n{run.output}"
    files_match_manifests(ws, A, B)
    assert aotbuild(["build", "//..."], ws, env).report["targets"] == {"//m:a": "up to date", "//m:b": "up to date"}

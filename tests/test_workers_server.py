"""The warm worker end to end through its real client: output, status, isolation, crashes, signals, idle exit.

The actions here are tiny Python modules, not exports: what is tested is the fork server (which does import
torch once, so these carry the torch mark), in seconds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from aotbuild.rules import CLIENT
from aotbuild.workers import client

from .conftest import wait_for

pytestmark = pytest.mark.torch

ACTION = '''import os, sys, time
from pathlib import Path
import same
here = Path.cwd()
with open(here / "attempts", "a") as f:
    f.write(f"{os.getppid()}\\n")
if "want-torch" in sys.argv:
    import torch
print("value", same.VALUE, "pid", os.getpid(), "ppid", os.getppid(), "torch", "torch" in sys.modules, flush=True)
print("to stderr", file=sys.stderr, flush=True)
if len(sys.argv) > 2 and sys.argv[2] == "sleep-once":
    if not (here / "marker").exists():
        (here / "marker").write_text("")
        (here / "pid").write_text(str(os.getpid()))
        time.sleep(120)
elif len(sys.argv) > 2 and sys.argv[2] == "sleep":
    (here / "pid").write_text(str(os.getpid()))
    time.sleep(float(sys.argv[3]))
sys.exit(int(sys.argv[1]))
'''


@pytest.fixture(scope="module")
def worker_env() -> dict[str, str]:
    """An environment no other test shares, so these tests get a server of their own (the key covers it)."""
    return {**os.environ, "W11_SERVER_KEY": uuid.uuid4().hex,
            "AOTBUILD_WORKER_IDLE_S": "4"}


def action_dir(base: Path, value: int) -> Path:
    base.mkdir(parents=True)
    (base / "act.py").write_text(ACTION)
    (base / "same.py").write_text(f"VALUE = {value}\n")
    return base


def run(cwd: Path, env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-S", str(CLIENT), "act", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def fields(stdout: str) -> dict[str, str]:
    words = stdout.split("\n", 1)[0].split()
    return dict(zip(words[::2], words[1::2]))


def server_pids(env: dict[str, str]) -> list[int]:
    """Every server process (bare, warm, or a warm one starting) of this environment's socket."""
    path = client.socket_path(env).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"aotbuild.workers.server" in cmdline and path in cmdline:
                found.append(int(entry.name))
    return found


def server_pid(env: dict[str, str]) -> int | None:
    pids = server_pids(env)
    return pids[0] if pids else None


def test_output_status_and_fresh_modules_per_action(worker_env, tmp_path: Path) -> None:
    one, two = action_dir(tmp_path / "one", 1), action_dir(tmp_path / "two", 2)
    bare = run(one, worker_env, "0", "want-torch")  # a bare server's action imports torch: a warm one starts
    assert bare.returncode == 0, bare.stderr
    assert wait_for(lambda: fields(run(one, worker_env, "0").stdout)["torch"] == "True", 120)
    first = run(one, worker_env, "7")
    assert first.returncode == 7, first.stderr
    second = run(two, worker_env, "0")
    assert second.returncode == 0, second.stderr
    a, b = fields(first.stdout), fields(second.stdout)
    # Same module name, different files: each action imported its own, in a process forked from one server
    # that had torch already imported.
    assert (a["value"], b["value"]) == ("1", "2")
    assert a["ppid"] == b["ppid"]
    assert a["pid"] != b["pid"] and a["torch"] == b["torch"] == "True"
    assert "to stderr" in first.stderr and "to stderr" not in first.stdout


def test_prewarm_makes_the_first_action_find_torch_imported(tmp_path: Path) -> None:
    env = {**os.environ, "W11_SERVER_KEY": uuid.uuid4().hex, "AOTBUILD_WORKER_IDLE_S": "4"}
    where = action_dir(tmp_path / "p", 5)
    # What the CLI sees differs from what ninja's shell gives the client in these: the same server still.
    assert client.prewarm({**env, "PWD": "/somewhere/else", "SHLVL": "7"})
    log = Path(client.socket_path(env) + ".log")
    assert wait_for(lambda: log.exists() and " warm" in log.read_text(), 120)  # warm, before any action
    first = run(where, env, "0")  # asks for no torch, never signalled the bare server
    assert first.returncode == 0, first.stderr
    assert fields(first.stdout)["torch"] == "True"
    assert "preload:" not in log.read_text()  # its probe and header child started without an error


def test_an_action_needing_torch_moves_to_the_warm_server_while_it_starts(tmp_path: Path) -> None:
    env = {**os.environ, "W11_SERVER_KEY": uuid.uuid4().hex, "AOTBUILD_WORKER_IDLE_S": "4"}
    where = action_dir(tmp_path / "h", 6)
    assert client.prewarm(env)  # the bare server starts its warm successor, which imports torch for seconds
    moved = run(where, env, "3", "want-torch")
    assert moved.returncode == 3, moved.stderr
    log = Path(client.socket_path(env) + ".log").read_text()
    print(log)
    bare, warm = (int(re.search(rf"pid (\d+) {kind}", log)[1]) for kind in ("bare", "warm"))
    # It started at the bare server, stopped at its `import torch`, and ran again, once, at the warm one.
    assert (where / "attempts").read_text().split() == [str(bare), str(warm)]
    assert fields(moved.stdout)["ppid"] == str(warm) and moved.stdout.count("value") == 1
    hit = run(where, env, "0")  # no torch needed: runs wherever it lands, never moved
    assert hit.returncode == 0 and (where / "attempts").read_text().split()[2:] == [fields(hit.stdout)["ppid"]]


def test_a_warm_server_that_fails_to_start_sends_handed_off_actions_back(tmp_path: Path) -> None:
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    # Found as a torch build (version.py) and slow to fail, so the action arrives while the warm server is
    # still starting.
    (fake / "version.py").write_text(f"__version__ = 'fake-{uuid.uuid4().hex}'\n")
    (fake / "__init__.py").write_text("import time\ntime.sleep(3)\nraise RuntimeError('this torch never imports')\n")
    env = {**os.environ, "W11_SERVER_KEY": uuid.uuid4().hex, "AOTBUILD_WORKER_IDLE_S": "4",
           "PYTHONPATH": str(fake.parent)}
    where = action_dir(tmp_path / "f", 9)
    assert client.prewarm(env)  # its warm successor dies importing this torch
    started = time.monotonic()
    failed = run(where, env, "0", "want-torch")
    waited = time.monotonic() - started
    assert failed.returncode == 1 and "this torch never imports" in failed.stderr
    bare = re.search(r"pid (\d+) bare", Path(client.socket_path(env) + ".log").read_text())[1]
    # Handed off, then run again at the bare server, without waiting out the hand-off's limit for a
    # successor that will never come.
    assert (where / "attempts").read_text().split() == [bare, bare]
    assert waited < client.HAND_OFF_WAIT_S / 2


def test_prewarm_is_off_without_workers() -> None:
    env = {**os.environ, "W11_SERVER_KEY": uuid.uuid4().hex, "AOTBUILD_WORKERS": "0"}
    assert not client.prewarm(env)
    assert server_pid(env) is None


def test_action_killed_mid_run_is_run_again(worker_env, tmp_path: Path) -> None:
    where = action_dir(tmp_path / "k", 3)
    proc = subprocess.Popen([sys.executable, "-S", str(CLIENT), "act", "0", "sleep-once"], cwd=where,
                            env=worker_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: (where / "pid").exists() and (where / "pid").read_text(), 60)
    os.kill(int((where / "pid").read_text()), signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "was killed by signal 9; running it again" in err
    assert out.count("value 3") == 2  # the killed attempt and the one that finished


def test_server_killed_mid_action_still_reports_the_action(worker_env, tmp_path: Path) -> None:
    where = action_dir(tmp_path / "s", 4)
    proc = subprocess.Popen([sys.executable, "-S", str(CLIENT), "act", "5", "sleep", "3"], cwd=where,
                            env=worker_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: (where / "pid").exists() and (where / "pid").read_text(), 60)
    old = int(Path(f"/proc/{(where / 'pid').read_text()}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(old, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err  # the action itself told its client how it ended
    assert "running it again" not in err
    again = run(where, worker_env, "0")  # a new server replaces the dead one
    assert again.returncode == 0, again.stderr
    assert fields(again.stdout)["ppid"] != str(old)


def test_signal_to_the_client_reaches_the_action(worker_env, tmp_path: Path) -> None:
    where = action_dir(tmp_path / "t", 5)
    proc = subprocess.Popen([sys.executable, "-S", str(CLIENT), "act", "0", "sleep", "120"], cwd=where,
                            env=worker_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: (where / "pid").exists() and (where / "pid").read_text(), 60)
    action = int((where / "pid").read_text())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert wait_for(lambda: not Path(f"/proc/{action}").exists() or
                    Path(f"/proc/{action}/stat").read_text().split()[2] == "Z", 10)


def test_client_killed_stops_its_action(worker_env, tmp_path: Path) -> None:
    where = action_dir(tmp_path / "c", 6)
    proc = subprocess.Popen([sys.executable, "-S", str(CLIENT), "act", "0", "sleep", "120"], cwd=where,
                            env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: (where / "pid").exists() and (where / "pid").read_text(), 60)
    action = int((where / "pid").read_text())
    proc.kill()  # as ninja's SIGKILL after a second interrupt: the action must not outlive it
    proc.wait()
    assert wait_for(lambda: not Path(f"/proc/{action}").exists() or
                    Path(f"/proc/{action}/stat").read_text().split()[2] == "Z", 10)


def test_idle_server_exits_and_removes_its_socket(worker_env, tmp_path: Path) -> None:
    where = action_dir(tmp_path / "i", 7)
    assert run(where, worker_env, "0").returncode == 0
    assert server_pid(worker_env) is not None and Path(client.socket_path(worker_env)).exists()
    assert wait_for(lambda: server_pid(worker_env) is None, 4 + 10)  # AOTBUILD_WORKER_IDLE_S=4
    assert not Path(client.socket_path(worker_env)).exists()


def test_a_warm_server_whose_bare_parent_died_still_goes_idle(tmp_path: Path) -> None:
    env = {**os.environ, "W11_SERVER_KEY": uuid.uuid4().hex, "AOTBUILD_WORKER_IDLE_S": "4"}
    assert client.prewarm(env)
    log = Path(client.socket_path(env) + ".log")
    assert wait_for(lambda: len(server_pids(env)) == 2, 60)  # the bare server forked its warm successor
    bare = int(re.search(r"pid (\d+) bare", log.read_text())[1])
    os.kill(bare, signal.SIGKILL)  # gone before its successor takes over: the successor is an orphan
    assert wait_for(lambda: " warm" in log.read_text(), 120)
    # Orphaned, it must not take pid 1 for a bare server still running actions: idle, it exits.
    assert wait_for(lambda: not server_pids(env), 4 + 15)


def test_no_workers_runs_the_action_in_the_clients_place(worker_env, tmp_path: Path) -> None:
    where = action_dir(tmp_path / "n", 8)
    env = {**worker_env, "AOTBUILD_WORKERS": "0", "W11_SERVER_KEY": uuid.uuid4().hex}
    proc = subprocess.Popen([sys.executable, "-S", str(CLIENT), "act", "3"], cwd=where, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert fields(out)["pid"] == str(proc.pid)  # exec'd: no server, no fork
    assert fields(out)["torch"] == "False"
    assert server_pid(env) is None

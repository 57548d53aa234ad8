"""Faults through a real Ray cluster: a node's worker killed mid-compile, Ctrl-C, the connection to the cluster lost."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .conftest import artifact_digests, make_tiny, write
from .test_executor_e2e import _reference, pytestmark  # noqa: F401 - the same marks: torch, ray installed


def _task_running_an_action(timeout: float = 120.0) -> int:
    """The pid of a Ray worker running run_action once its action process has started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in subprocess.run(["pgrep", "-f", "^ray::run_action"], capture_output=True, text=True).stdout.split():
            if subprocess.run(["pgrep", "-P", pid, "-f", "client.py"], capture_output=True).returncode == 0:
                return int(pid)
        time.sleep(0.2)
    raise AssertionError("no cluster task started an action")


def test_killing_the_nodes_worker_mid_compile_ends_in_a_correct_build(ray_cluster, nginx_server, tiny_cache,
                                                                       tmp_path: Path) -> None:
    # An empty cache here (no compile entry to hit); the head has never compiled the tiny models (the second
    # node did, for another ISA), so the compile really runs there, and is killed.
    ws = make_tiny(tmp_path / "ws")
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "aotbuild", "build", "//m:a", "--executor", ray_cluster.url, "--remote-cache",
           nginx_server.url(nginx_server.new_prefix()), "--report", str(report)]
    proc = subprocess.Popen(cmd, cwd=ws, env={**os.environ, "AOTBUILD_CACHE_DIR": str(tmp_path / "cache")},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        worker = _task_running_an_action()
        time.sleep(2)  # into the compile
        os.kill(worker, signal.SIGKILL)
        output, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    (executor,) = [a["executor"] for a in json.loads(report.read_text())["actions"] if a["action"] == "compile"]
    assert len(executor["faults"]) == 1 and "WorkerCrashedError" in executor["faults"][0]
    assert executor["node"] == ray_cluster.names["head"]
    assert artifact_digests(ws) == _reference(tmp_path, tiny_cache)


def test_ctrl_c_cancels_the_clusters_task(ray_cluster, nginx_server, tmp_path: Path) -> None:
    ws = make_tiny(tmp_path / "ws")
    write(ws / "m" / "BUILD.aot.yaml", "targets:\n  a: {model: m.tiny:Tiny, kwargs: {n: 7}, "
                                       "inputs: {x: {shape: [2, 7], dtype: float32}}}\n")  # in no cache
    cmd = [sys.executable, "-m", "aotbuild", "build", "//m:a", "--executor", ray_cluster.url, "--remote-cache",
           nginx_server.url(nginx_server.new_prefix())]
    proc = subprocess.Popen(cmd, cwd=ws, env={**os.environ, "AOTBUILD_CACHE_DIR": str(tmp_path / "cache")},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        worker = _task_running_an_action()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, output
    # The task was cancelled: its worker no longer runs an action (Ray keeps the process, idle, for reuse).
    deadline = time.monotonic() + 30
    while subprocess.run(["pgrep", "-P", str(worker), "-f", "client.py"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the node still runs the action"
        time.sleep(0.2)
    assert not (ws / "aot-out" / "m" / "@a" / "manifest.json").exists()


class CuttableLink:
    """A TCP relay from a loopback port to the Ray Client port, which the test can cut: every connection
    through it closed and no new one accepted, as when the network to the cluster goes away."""

    def __init__(self, target_port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target_port = target_port
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # cut
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    @staticmethod
    def _relay(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                sink.sendall(data)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: close alone would not
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_losing_the_connection_to_the_cluster_mid_compile_ends_in_a_correct_build(
        ray_cluster, nginx_server, tiny_cache, tmp_path: Path) -> None:
    ws = make_tiny(tmp_path / "ws")
    write(ws / "m" / "BUILD.aot.yaml", "targets:\n  a: {model: m.tiny:Tiny, kwargs: {n: 9}, "
                                       "inputs: {x: {shape: [2, 9], dtype: float32}}}\n")  # in no cache
    link = CuttableLink(ray_cluster.client_port)
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "aotbuild", "build", "//m:a", "--executor", f"ray://127.0.0.1:{link.port}",
           "--remote-cache", nginx_server.url(nginx_server.new_prefix()), "--report", str(report)]
    # Ray Client tries to reconnect for this long before its calls fail (30 s by default).
    env = {**os.environ, "AOTBUILD_CACHE_DIR": str(tmp_path / "cache"), "RAY_CLIENT_RECONNECT_GRACE_PERIOD": "3"}
    proc = subprocess.Popen(cmd, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _task_running_an_action()
        link.cut()
        output, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
        link.cut()
    assert proc.returncode == 0, output
    assert "compiled on this machine, not the cluster" in output, output
    (compile_,) = [a for a in json.loads(report.read_text())["actions"] if a["action"] == "compile"]
    assert compile_["outcome"] == "compiled" and compile_["executor"]["node"] is None, compile_
    # What it built here computes what the eager model does.
    verify = subprocess.run([sys.executable, "-m", "aotbuild", "test", "//m:a"], cwd=ws, capture_output=True,
                            text=True, env={**os.environ, "AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert verify.returncode == 0 and "PASSED //m:a" in verify.stdout, verify.stdout + verify.stderr

"""A real two-node Ray cluster on loopback for the executor tests: a head, and a second node simulating another CPU."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest

from aotbuild.executors.routing import CPU_ISA, Node
from aotbuild.executors.worker import base_dir, sweep

from .remote_servers import free_port, wait_for_port

RAY = Path(sys.executable).with_name("ray")
SIMULATED_ISA = "x86_64:simulated-isa"  # what the second node's fingerprint and Ray labels say its CPU is


@dataclass
class RayCluster:
    base: Path
    port: int
    client_port: int
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # "head"/"second" -> the node's name in reports

    @property
    def url(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    def node_env(self, name: str, **extra: str) -> dict[str, str]:
        # Each node its own local cache: results reach the client through the remote cache only.
        env = {**os.environ, "AOTBUILD_CACHE_DIR": str(self.base / f"{name}-cache"), **extra}
        if "AOTBUILD_CPU_ISA" not in extra:
            env.pop("AOTBUILD_CPU_ISA", None)
        return env

    def start_node(self, name: str, head: bool, env: dict[str, str]) -> None:
        resources = subprocess.run([sys.executable, "-m", "aotbuild", "executor", "resources"], env=env,
                                   capture_output=True, text=True, check=True).stdout.strip()
        where = ["--head", f"--port={self.port}", f"--ray-client-server-port={self.client_port}",
                 f"--temp-dir={self.base / 'ray'}", "--include-dashboard=false"] if head \
            else [f"--address=127.0.0.1:{self.port}"]
        cmd = [str(RAY), "start", "--block", *where, "--num-cpus=1", f"--resources={resources}",
               "--object-store-memory=80000000", "--disable-usage-stats"]
        log = open(self.base / f"{name}.log", "wb")  # noqa: SIM115 - kept open for the node's life
        # Own session: stopping the node stops its raylet, workers and the actions they run, and nothing else.
        self.nodes[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=lambda: os.nice(10))

    def wait_nodes(self, count: int, timeout: float = 120.0) -> None:
        """Until `count` nodes are alive; then `names` says which is which, as reports name them."""
        wait_for_port(self.client_port, self.nodes["head"], "ray head", timeout)
        script = ("import json, ray, sys, time; ray.init(sys.argv[1], logging_level='ERROR'); d = time.time() + "
                  f"{timeout}\nalive = lambda: [n for n in ray.nodes() if n['Alive']]\n"
                  f"while len(alive()) < {count} and time.time() < d: time.sleep(0.5)\n"
                  "print(json.dumps([[n['NodeID'], n['NodeManagerAddress'], n['Resources']] for n in alive()]))")
        for _ in range(3):  # the head's Ray Client proxy may fail to start a server for a client on a loaded box
            out = subprocess.run([sys.executable, "-c", script, self.url], capture_output=True, text=True,
                                 timeout=timeout + 30)
            if out.returncode == 0:
                break
        found = [Node(*n) for n in json.loads(out.stdout.strip().splitlines()[-1])] if out.stdout.strip() else []
        assert len(found) == count, out.stderr[-2000:]
        for node in found:
            self.names["second" if f"{CPU_ISA}{SIMULATED_ISA}" in node.resources else "head"] = node.name

    def stop_node(self, name: str) -> None:
        proc = self.nodes.pop(name)
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The session's other processes (workers, the actions' warm servers) go with it.
        for _ in range(50):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.1)


def without_token_auth() -> contextlib.AbstractContextManager:
    """For `ray start` and every Ray Client connection in the block (os.environ, restored after): once any local
    ray.init() has left a ~/.ray/auth_token, `ray start` turns token authentication on, and the connections of
    the nodes' checks and of the builds time out. The test clusters are loopback-only."""
    return mock.patch.dict(os.environ, {"RAY_AUTH_MODE": "disabled"})


@pytest.fixture(scope="session")
def ray_cluster():
    """One cluster per session (two nodes take about 30 s to start on 2 cores): the head with this machine's
    CPU ISA, a second node whose fingerprint and labels say SIMULATED_ISA. One CPU each."""
    base = Path(tempfile.mkdtemp(prefix="aotray-"))  # short: Ray's unix socket paths live under it
    cluster = RayCluster(base, free_port(), free_port())
    with without_token_auth():
        try:
            cluster.start_node("head", True, cluster.node_env("head"))
            cluster.start_node("second", False, cluster.node_env("second", AOTBUILD_CPU_ISA=SIMULATED_ISA))
            cluster.wait_nodes(2)
            yield cluster
        finally:
            for name in list(cluster.nodes):
                cluster.stop_node(name)
            shutil.rmtree(base, ignore_errors=True)
        sweep(base_dir())  # what a worker killed by a test left: its node will run no next action to do it


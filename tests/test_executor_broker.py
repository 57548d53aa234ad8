"""The broker's scheduling against a fake cluster: retries elsewhere, refusals, deadlines, cancellation."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from aotbuild.executors import routing
from aotbuild.executors.broker import Broker
from aotbuild.executors.cluster import ClusterFault
from aotbuild.executors.dispatch import _ask

from .conftest import wait_for

TOOLCHAIN = {"compile": {"cpu_isa": "x86_64:aaaa"}, "cuda": {"gpu_arch": None}}
LABEL_OF_ISA = {routing.CPU_ISA + "x86_64:aaaa": 1000.0, "CPU": 1.0}


class Ref:
    def __init__(self, n: int) -> None:
        self.n = n

    def hex(self) -> str:
        return f"{self.n:08x}"


class FakeCluster:
    """Nodes 'a' and 'b' (or those given); each behaves as `behaviour[node id]` says: ok, die, refuse, hang."""

    def __init__(self, behaviour: dict[str, str], resources: dict[str, float] = LABEL_OF_ISA) -> None:
        self.behaviour = behaviour
        self.list = [routing.Node(node_id, "10.0.0.1", dict(resources)) for node_id in behaviour]
        self.runs: dict[str, routing.Node] = {}
        self.submitted: list[str] = []
        self.cancelled: list[str] = []

    def nodes(self) -> list[routing.Node]:
        return self.list

    def submit(self, bundle: dict[str, Any], node: routing.Node, wanted: dict[str, float]) -> Ref:
        ref = Ref(len(self.submitted))
        self.runs[ref.hex()] = node
        self.submitted.append(node.id)
        return ref

    def wait(self, refs: list[Ref], timeout: float) -> list[Ref]:
        ready = [r for r in refs if self.behaviour[self.runs[r.hex()].id] != "hang"]
        if not ready:
            time.sleep(timeout)
        return ready

    def result(self, ref: Ref) -> dict[str, Any]:
        what = self.behaviour[self.runs[ref.hex()].id]
        if what == "die":
            raise ClusterFault("WorkerCrashedError: The worker died unexpectedly")
        if what == "refuse":
            return {"status": "refused", "why": "toolchain differs: compile.cxx", "started": time.time()}
        return {"status": "ok", "started": time.time(), "seconds": 1.0, "outcome": "compiled"}

    def cancel(self, ref: Ref) -> None:
        self.cancelled.append(ref.hex())


REQUEST = {"bundle": {"action": "compile", "spec": {"label": "//m:a", "device": "cpu"}, "toolchain": TOOLCHAIN}}


def _ask_broker(cluster: FakeCluster, deadline_s: float = 60.0, request: dict[str, Any] = REQUEST) -> dict[str, Any]:
    broker = Broker(cluster, deadline_s)  # type: ignore[arg-type]
    try:
        return _ask(broker.socket_path, request)
    finally:
        broker.stop()


def test_an_attempt_goes_to_a_node_with_the_keys_labels() -> None:
    answer = _ask_broker(FakeCluster({"a": "ok"}))
    assert answer["status"] == "ok" and answer["node"] == "10.0.0.1/a" and answer["faults"] == []


def test_a_cpu_export_goes_to_a_node_of_any_isa_and_a_cuda_one_needs_its_gpu() -> None:
    export = {"bundle": {**REQUEST["bundle"], "action": "export"}}
    answer = _ask_broker(FakeCluster({"a": "ok"}, {"aotbuild_cpu_isa:x86_64:other": 1000.0}), request=export)
    assert answer["status"] == "ok" and answer["node"] == "10.0.0.1/a"
    cuda = {"bundle": {**export["bundle"], "spec": {"label": "//m:a", "device": "cuda"}}}
    answer = _ask_broker(FakeCluster({"a": "ok"}), request=cuda)
    assert answer["status"] == "unserved" and "need aotbuild_gpu_arch:" in answer["why"], answer


@pytest.mark.parametrize("first", ["die", "refuse", "hang"])
def test_a_failed_attempt_is_retried_once_on_another_node(first: str) -> None:
    cluster = FakeCluster({"a": first, "b": "ok"})
    answer = _ask_broker(cluster, deadline_s=0.5)
    assert answer["status"] == "ok" and answer["node"] == "10.0.0.1/b" and cluster.submitted == ["a", "b"]
    assert len(answer["faults"]) == 1 and "node 10.0.0.1/a" in answer["faults"][0]
    assert cluster.cancelled == (["00000000"] if first == "hang" else [])


def test_two_failed_attempts_leave_the_action_to_the_client() -> None:
    cluster = FakeCluster({"a": "die", "b": "refuse"})
    answer = _ask_broker(cluster)
    assert answer["status"] == "unavailable" and cluster.submitted == ["a", "b"]
    assert "WorkerCrashedError" in answer["why"] and "refused: toolchain differs" in answer["why"]


def test_the_only_eligible_node_is_tried_again() -> None:
    cluster = FakeCluster({"a": "die"})
    assert _ask_broker(cluster)["status"] == "unavailable" and cluster.submitted == ["a", "a"]


def test_no_node_with_the_labels_is_unserved_naming_the_nodes() -> None:
    cluster = FakeCluster({"a": "ok"}, resources={routing.CPU_ISA + "x86_64:other": 1000.0, "CPU": 4.0})
    answer = _ask_broker(cluster)
    assert answer["status"] == "unserved" and cluster.submitted == []
    assert "need aotbuild_cpu_isa:x86_64:aaaa" in answer["why"] and "node 10.0.0.1/a (4 CPUs" in answer["why"]


def test_an_action_that_goes_away_has_its_task_cancelled() -> None:
    cluster = FakeCluster({"a": "hang"})
    broker = Broker(cluster, 60.0)  # type: ignore[arg-type]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(broker.socket_path))
            sock.sendall(json.dumps(REQUEST).encode() + b"\n")
            wait_for(lambda: cluster.submitted, 10)
            assert broker.where == {"//m:a": "10.0.0.1/a"}  # the progress line's "on node"
        wait_for(lambda: cluster.cancelled, 10)
        assert cluster.cancelled == ["00000000"] and broker.where == {}
    finally:
        broker.stop()


def test_stopping_the_broker_cancels_what_runs_and_answers_the_action() -> None:
    cluster = FakeCluster({"a": "hang"})
    broker = Broker(cluster, 60.0)  # type: ignore[arg-type]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(broker.socket_path))
        sock.sendall(json.dumps(REQUEST).encode() + b"\n")
        wait_for(lambda: cluster.submitted, 10)
        broker.stop()
        assert json.loads(sock.makefile().readline())["status"] == "unavailable"
    assert cluster.cancelled == ["00000000"]

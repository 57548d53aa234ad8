"""The CLI's broker between a build's actions and the cluster: a unix socket in, one thread driving Ray."""

from __future__ import annotations

import contextlib
import json
import queue
import select
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aotbuild.executors import routing
from aotbuild.executors.cluster import Cluster, ClusterFault

ATTEMPTS = 2  # the first, and one retry elsewhere; then the action runs locally (or fails: --executor-required)
POLL_S = 0.2
NODES_TTL_S = 1.0  # ray.nodes() at most this often: a node's death shows up as a failed attempt anyway
MAX_REQUEST = 16 << 20


@dataclass
class Job:
    conn: socket.socket
    request: dict[str, Any]
    wanted: dict[str, float]
    tried: list[routing.Node] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    ref: Any = None
    submitted: float = 0.0  # wall clock, as the task reports its start
    deadline: float = 0.0  # monotonic

    @property
    def label(self) -> str:
        return self.request["bundle"]["spec"]["label"]


class Broker:
    """Actions connect to `socket_path`, send one JSON request line, and read one reply line. An action that
    disconnects (Ctrl-C, killed) has its cluster task cancelled; stop() cancels every task still running."""

    def __init__(self, cluster: Cluster, deadline_s: float) -> None:
        self.cluster = cluster
        self.deadline_s = deadline_s
        self.where: dict[str, str] = {}  # label -> node name, while its action runs there (the progress line)
        self._dir = Path(tempfile.mkdtemp(prefix="aotbuild-exec-"))  # 0700: only this user's actions connect
        self.socket_path = self._dir / "broker.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.socket_path))
        self._listener.listen(64)
        self._incoming: queue.Queue[Job] = queue.Queue()
        self._running: list[Job] = []
        self._load: dict[str, int] = {}
        self._nodes: tuple[float, list[routing.Node]] = (0.0, [])
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True),
                         threading.Thread(target=self._drive, daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._threads[1].join(timeout=30)
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- the socket side (its own thread; reads requests only)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        data = b""
        with contextlib.suppress(OSError):
            while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        try:
            request = json.loads(data)
            bundle = request["bundle"]
            wanted = routing.needs(bundle["action"], bundle["spec"], bundle["toolchain"])
        except (ValueError, KeyError, TypeError):
            conn.close()
            return
        if self._stop.is_set():  # the driving thread is gone: nobody would answer
            conn.close()
            return
        self._incoming.put(Job(conn, request, wanted))

    # -- the Ray side (one thread: every Ray call is made here)

    def _drive(self) -> None:
        why = "the build is stopping"
        try:
            while not self._stop.is_set():
                while not self._incoming.empty():
                    self._start(self._incoming.get())
                self._poll()
        except Exception as e:  # noqa: BLE001 - the actions must hear of it, not hang: they fall back
            why = f"the executor broker failed: {type(e).__name__}: {e}"
            raise
        finally:
            self._stop.set()  # a request arriving now is answered below, or by _read
            for job in list(self._running):
                self.cluster.cancel(job.ref)
                self._reply(job, {"status": "unavailable", "why": why})
            while not self._incoming.empty():
                self._reply(self._incoming.get(), {"status": "unavailable", "why": why})

    def _poll(self) -> None:
        if not self._running:
            time.sleep(POLL_S / 4)
            return
        done = {ref.hex() for ref in self.cluster.wait([j.ref for j in self._running], POLL_S)}
        for job in list(self._running):
            if job.ref.hex() in done:
                self._finished(job)
            elif _gone(job.conn):
                self.cluster.cancel(job.ref)  # its action was interrupted: nobody wants the result
                self._drop(job)
            elif time.monotonic() > job.deadline:
                self.cluster.cancel(job.ref)
                self._fault(job, f"no answer from node {job.tried[-1].name} within {self.deadline_s:g} s")

    def _live_nodes(self) -> list[routing.Node]:
        checked, nodes = self._nodes
        if time.monotonic() - checked > NODES_TTL_S:
            nodes = self.cluster.nodes()
            self._nodes = (time.monotonic(), nodes)
        return nodes

    def _start(self, job: Job) -> None:
        nodes = self._live_nodes()
        eligible = [n for n in nodes if n.serves(job.wanted)]
        if not eligible:
            if job.tried:
                self._reply(job, {"status": "unavailable", "why": "; ".join(job.faults)})
            else:
                self._reply(job, {"status": "unserved", "why": routing.unserved(job.wanted, nodes)})
            return
        fresh = [n for n in eligible if n.id not in {t.id for t in job.tried}] or eligible
        node = min(fresh, key=lambda n: (self._load.get(n.id, 0) / max(n.resources.get("CPU", 1.0), 1.0), n.id))
        job.tried.append(node)
        job.submitted, job.deadline = time.time(), time.monotonic() + self.deadline_s
        self._load[node.id] = self._load.get(node.id, 0) + 1
        self.where[job.label] = node.name
        job.ref = self.cluster.submit(job.request["bundle"], node, job.wanted)
        self._running.append(job)

    def _finished(self, job: Job) -> None:
        node = job.tried[-1]
        try:
            answer = self.cluster.result(job.ref)
        except ClusterFault as e:
            self._fault(job, f"node {node.name}: {e}")
            return
        if answer["status"] == "refused":
            self._fault(job, f"node {node.name} refused: {answer['why']}")
            return
        queued = max(0.0, answer["started"] - job.submitted)
        self._reply(job, {**answer, "node": node.name, "queue_s": round(queued, 3), "faults": job.faults})

    def _fault(self, job: Job, why: str) -> None:
        self._unload(job)
        job.faults.append(why)
        if len(job.tried) < ATTEMPTS:
            self._start(job)
        else:
            self._reply(job, {"status": "unavailable", "why": "; ".join(job.faults)})

    def _unload(self, job: Job) -> None:
        if job in self._running:
            self._running.remove(job)
            self._load[job.tried[-1].id] -= 1
        self.where.pop(job.label, None)

    def _drop(self, job: Job) -> None:
        self._unload(job)
        job.conn.close()

    def _reply(self, job: Job, answer: dict[str, Any]) -> None:
        self._unload(job)
        with contextlib.suppress(OSError):
            job.conn.sendall(json.dumps(answer).encode() + b"\n")
        job.conn.close()


def _gone(conn: socket.socket) -> bool:
    """Whether the action at the other end went away (it sends nothing after its request: readable means EOF)."""
    try:
        return bool(select.select([conn], [], [], 0)[0]) and not conn.recv(1, socket.MSG_PEEK)
    except OSError:
        return True

"""The Ray cluster as the CLI sees it: one Ray Client connection, its live nodes, attempts pinned to a node."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from aotbuild.errors import InfraError
from aotbuild.executors import routing, worker
from aotbuild.executors.address import ExecutorUrl


class Cluster:
    """Imported only by a build with an executor: Ray never loads in a CLI without one."""

    def __init__(self, url: ExecutorUrl) -> None:
        import ray

        self.ray = ray
        self.url = url
        try:
            _connect(ray, url)
        except Exception as e:  # noqa: BLE001 - Ray raises many kinds (ConnectionError, grpc's, its own)
            raise InfraError(f"executor {url}: cannot connect: {type(e).__name__}: {str(e)[:300]}\n"
                             "  fix: check that the cluster's head runs Ray Client on that port "
                             "(`ray start --head --ray-client-server-port=PORT`) with the same Ray and Python as "
                             "here, or build without --executor") from None
        # One function handle: the task body is found by module and name on the node (aotbuild installed there).
        self._task = ray.remote(max_retries=0, num_cpus=1)(worker.run_action)

    def nodes(self) -> list[routing.Node]:
        return [routing.Node(n["NodeID"], n.get("NodeManagerAddress", "?"), dict(n.get("Resources", {})))
                for n in self.ray.nodes() if n.get("Alive")]

    def slots(self) -> int:
        """Actions the cluster runs at once: one per CPU of its live nodes."""
        return max(1, int(sum(n.resources.get("CPU", 0.0) for n in self.nodes())))

    def submit(self, bundle: dict[str, Any], node: routing.Node, wanted: dict[str, float]) -> Any:
        """An attempt on `node` only (a retry must go elsewhere, so Ray is not left to pick)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options = {"resources": {k: v for k, v in wanted.items() if k != "GPU"},
                   "num_gpus": wanted.get("GPU", 0), "scheduling_strategy":
                   NodeAffinitySchedulingStrategy(node_id=node.id, soft=False)}
        return self._task.options(**options).remote(bundle)

    def wait(self, refs: list[Any], timeout: float) -> list[Any]:
        return self.ray.wait(refs, num_returns=len(refs), timeout=timeout, fetch_local=True)[0] if refs else []

    def result(self, ref: Any) -> dict[str, Any]:
        """The task's answer; a Ray error (node died, worker killed, cancelled) as ClusterFault."""
        try:
            return self.ray.get(ref)
        except Exception as e:  # noqa: BLE001 - every Ray failure is a fault to retry elsewhere
            raise ClusterFault(f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}")

    def cancel(self, ref: Any) -> None:
        try:
            self.ray.cancel(ref, recursive=True)
        except Exception:  # noqa: BLE001,S110 - already finished or its node gone: nothing left to stop
            pass

    def close(self) -> None:
        try:
            self.ray.shutdown()
        except Exception:  # noqa: BLE001,S110 - the connection may be gone already
            pass
        os.environ.pop("RAY_ADDRESS", None)


def _connect(ray: Any, url: ExecutorUrl) -> None:
    """Twice: the head's Ray Client proxy can fail to start the server for one client ("Starting Ray client
    server failed", seen once on a loaded 2-core box); a second failure is the user's to hear about."""
    try:
        ray.init(str(url), logging_level=logging.ERROR, log_to_driver=False)
    except ConnectionError:
        ray.shutdown()
        time.sleep(1.0)
        ray.init(str(url), logging_level=logging.ERROR, log_to_driver=False)


class ClusterFault(Exception):
    """An attempt ended without the task's own answer: its node or worker died, the connection broke, or it
    was cancelled. Retried elsewhere once."""

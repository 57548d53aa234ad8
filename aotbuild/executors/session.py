"""A build's executor session, opened by the engine: the cluster connection, its broker, the actions' env."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from aotbuild.errors import UserError
from aotbuild.executors.address import parse
from aotbuild.workspace import settings
from aotbuild.workspace.discovery import WORKSPACE_FILE


@dataclass(frozen=True)
class Session:
    env: dict[str, str]  # for ninja and the actions: where the broker listens
    slots: int  # ninja's -j when none was given
    where: dict[str, str]  # label -> node, while an action runs there (shared with the broker)


def check_remote(remote: str | None) -> None:
    """Inputs and results travel through the remote cache: an executor without one cannot work."""
    if remote is None:
        raise UserError("--executor needs a remote cache: the cluster's nodes take an action's inputs from it and "
                        "put the results there\n  fix: pass --remote-cache URL, set "
                        f"{settings.REMOTE_VAR}, or add cache: {{remote: URL}} to {WORKSPACE_FILE}")


def source_of(flag: str | None) -> str:
    """Where the executor URL came from, for an error about it."""
    if flag is not None:
        return "--executor"
    if settings.environ().get(settings.EXECUTOR_VAR):
        return f"${settings.EXECUTOR_VAR}"
    return f"{WORKSPACE_FILE} executor:"


@contextlib.contextmanager
def opened(url: str, source: str, required: bool) -> Iterator[Session]:
    """Connect (Ray is imported here, never by a build without an executor), serve the actions, and on the way
    out (Ctrl-C included) cancel whatever still runs on the cluster."""
    address = parse(url, source)
    from aotbuild.executors.broker import Broker
    from aotbuild.executors.cluster import Cluster

    cluster = Cluster(address)
    try:
        broker = Broker(cluster, settings.executor_deadline(settings.environ()))
        try:
            env = {settings.EXECUTOR_SOCKET_VAR: str(broker.socket_path),
                   settings.EXECUTOR_REQUIRED_VAR: str(int(required))}
            yield Session(env, cluster.slots(), broker.where)
        finally:
            broker.stop()
    finally:
        cluster.close()

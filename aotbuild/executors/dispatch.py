"""An action's side of the executor: send a miss to the CLI's broker, take the result from the remote cache."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aotbuild.cache import payloads
from aotbuild.errors import ActionError, InfraError
from aotbuild.rules.compile import KIND as COMPILE
from aotbuild.workspace import settings

Local = Callable[..., tuple[dict[str, Any] | None, str]]  # actions/compile.py compile_artifacts
Sources = Callable[[Any], dict[str, Any]]  # actions/remote_export.py compile_sources
Compiled = tuple[dict[str, Any], str]  # the compile entry and the action's outcome


def compiled(ctx: Any, graph: dict[str, Any], key: str, shape: str, local: Local, sources: Sources) -> Compiled:
    """The compile entry for `key` (a miss; `shape` its structure's key) and the outcome: `local`'s when the
    build has no executor. With one, `local` first tries only a re-package here (seconds, no compiler): just a
    full compile goes to the cluster. After a cluster fault (retried once there) the compile runs here with a
    warning, or fails when the build says --executor-required. `sources` gives the files and export spec a node
    needs when it must export again or import the model's output type."""
    env = settings.environ()
    path = settings.executor_socket(env)
    if path is None:
        return local(ctx, graph, shape)
    entry, outcome = local(ctx, graph, shape, full=False)
    if entry is not None:
        return entry, outcome
    try:
        return _on_cluster(ctx, graph, key, path, sources)
    except ClusterUnavailable as e:
        why = str(e)
        if settings.executor_required(env):
            raise InfraError(f"the cluster could not compile it: {why}\n"
                             "  (--executor-required: the build fails instead of compiling here)") from None
    ctx.warn(f"{ctx.label}: compiled on this machine, not the cluster: {why}")
    ctx.extra["executor"] = {"node": None, "local_because": why[:500]}
    return local(ctx, graph, shape)


class ClusterUnavailable(Exception):
    """The cluster answered with faults only (or not at all): the action may still run here."""


def _on_cluster(ctx: Any, graph: dict[str, Any], key: str, path: Path, sources: Sources) -> Compiled:
    config = settings.remote_settings(settings.environ())
    bundle = {"action": "compile", "spec": ctx.spec, "graph": graph, "toolchain": ctx.toolchain(), "key": key,
              "remote": config.url if config else None}
    if graph["program"] is None or graph["interface"]["requires_imports"]:
        bundle.update(sources(ctx))  # the node exports again, or imports the model's output type
    if graph["program"] is not None:
        _ship_program(ctx, graph["program"])
    answer = on_node(ctx, path, bundle)
    entry = payloads.checked(ctx.store, key, "compile")  # from the remote, checked like any remote hit
    if entry is None:
        raise ClusterUnavailable(f"node {answer['node']} compiled it, but the remote cache does not give the "
                                 "result back (see the remote-cache warnings)")
    return entry, answer.get("outcome") or COMPILE.ran  # what the node did: compiled, or re-packaged there


def on_node(ctx: Any, path: Path, bundle: dict[str, Any], unserved_fails: bool = True) -> dict[str, Any]:
    """Run `bundle` on a node through the broker: its answer when the action succeeded there. A failure of the
    action itself raises ActionError (no retry: it would fail again); faults raise ClusterUnavailable, and so
    does a cluster without a node for it when not `unserved_fails`."""
    action = bundle["action"]
    answer = _ask(path, {"bundle": bundle})
    status = answer.get("status")
    if status == "unserved" and unserved_fails:
        raise ActionError(ctx.label, action, answer["why"])
    if status != "ok" and status != "failed":
        raise ClusterUnavailable(answer.get("why") or f"the broker answered {status or 'nothing'}")
    # seconds: the task on the node, from its start; action_seconds: the action alone, as the node timed it.
    ctx.extra["executor"] = {"node": answer["node"], "queue_s": answer["queue_s"], "seconds": answer["seconds"],
                             "action_seconds": answer.get("action_seconds"), "faults": answer["faults"],
                             "phases": answer.get("phases", {})}
    print(f"ran on node {answer['node']} (queued {answer['queue_s']:.2f} s)", flush=True)  # into the log
    if status == "failed":
        print(answer["log_tail"], flush=True)
        raise ActionError(ctx.label, action, f"on node {answer['node']}: {answer['message']}")
    return answer


def _ship_program(ctx: Any, digest: str) -> None:
    """The exported program must be in the remote for a node to fetch; an export found locally may not be."""
    ship(ctx, [digest], "the exported program")


def ship(ctx: Any, digests: list[str], what: str) -> None:
    """Put the blobs `digests` (in the local cache, or already in the remote) into the remote cache."""

    def put(remote: Any) -> str | None:
        for digest in digests:
            if remote.contains("cas", digest):
                continue
            local = ctx.store.local.blob_path(digest)
            if local is None:
                return f"cas/{digest} is in neither cache"
            remote.put_blob(digest, local)
        return None

    missing = ctx.store.guard(put, "the remote cache is unavailable")
    if missing is not None:
        trouble = "; ".join(ctx.store.warnings) or missing
        raise ClusterUnavailable(f"cannot put {what} in the remote cache: {trouble}")


def _ask(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """One request, one reply. A signal ending this process closes the socket: the broker cancels the task."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            raise ClusterUnavailable(f"cannot reach the build's executor broker: {e}") from None
    try:
        return json.loads(data)
    except ValueError:
        raise ClusterUnavailable("the executor broker closed the connection without an answer") from None

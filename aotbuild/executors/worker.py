"""One action on a cluster node (a Ray task): check the toolchain, lay out a scratch aot-out/, run it there."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aotbuild import cpu_levels, layout
from aotbuild.errors import InfraError
from aotbuild.executors import manifest, routing
from aotbuild.fsutil import atomic_write
from aotbuild.hashing import pretty_json
from aotbuild.workspace import settings
from aotbuild.workspace.labels import parse_label

CLIENT = Path(__file__).resolve().parent.parent / "workers" / "client.py"
ACTIONS = ("compile", "export")  # the kinds a node runs (a verify loads the artifact where it is used)
LOG_TAIL = 4000  # characters of the node's action log sent back with a failure


def base_dir() -> Path:
    """This user's scratch space on the node: one directory per action under it, removed after."""
    path = Path(f"/tmp/aotbuild-{os.getuid()}/exec")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def own_fingerprint() -> dict[str, Any]:
    from aotbuild.planning.toolchain import cached_fingerprint

    return cached_fingerprint(base_dir() / "toolchain-stamp.json", os.environ)


def sweep(base: Path) -> None:
    """Scratch directories of workers that died mid-action (killed: their `finally` never ran). A directory is
    named after its worker's pid, so one whose worker lives (running another action) is never touched."""
    for path in base.glob("a-*-*"):
        pid = path.name.split("-")[1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's (it cannot be: the base is this user's, 0700)


def node_id() -> str:
    """The Ray node this task runs on (its id), or the host name outside Ray."""
    with contextlib.suppress(Exception):  # noqa: BLE001 - any failure of Ray's context just means no id
        import ray

        return ray.get_runtime_context().get_node_id()
    return socket.gethostname()


def run_action(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Ray task: {"status": "ok" | "failed" | "refused", ...}. Refused: this node's toolchain differs from
    the one the key was computed for, so nothing ran."""
    started = time.time()
    here = {"node": node_id(), "started": started}
    if bundle["action"] not in ACTIONS:
        return {**here, "status": "refused", "why": f"this node runs {', '.join(ACTIONS)} actions only"}
    differs = routing.mismatch(bundle["toolchain"], own_fingerprint(), bundle["spec"], bundle["action"],
                               cpu_levels.host_levels())
    if differs:
        return {**here, "status": "refused", "why": "toolchain differs: " + "; ".join(differs)}
    sweep(base_dir())
    scratch = Path(tempfile.mkdtemp(prefix=f"a-{os.getpid()}-", dir=base_dir()))  # the pid: see sweep()
    try:
        return {**here, **_run_in(scratch, bundle), "seconds": round(time.time() - started, 3)}
    except InfraError as e:  # a bad manifest, or inputs the remote does not give: nothing ran
        return {**here, "status": "refused", "why": str(e)[:1000]}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_in(scratch: Path, bundle: dict[str, Any]) -> dict[str, Any]:
    """Lay out the workspace files the bundle names (by digest) and aot-out/ as the client's (specs,
    graph.json, toolchain.json), then run the action's own module there."""
    from aotbuild.cache.access import record_root
    from aotbuild.rules import kinds
    from aotbuild.rules.export import GRAPH

    kind = next(k for k in kinds() if k.name == bundle["action"])
    # The node's own credentials and signing key (its environment): a bundle carries the remote's URL only.
    remote = settings.remote_env(bundle["remote"], upload=True, required=True)
    cache = settings.cache_dir(os.environ, None, None, scratch)
    # The workspace root is the scratch directory itself; aot-out/ is never in a manifest (manifest.check).
    manifest.materialize(bundle.get("files", {}), scratch, _fetcher(cache, remote))
    out = scratch / layout.OUT_DIR
    # Paths from the label as this node parses it: a bundle never names a path.
    target = out / layout.TargetPaths(parse_label(bundle["spec"]["label"])).dir
    target.mkdir(parents=True)
    specs = {kind.spec_file: bundle["spec"], **bundle.get("specs", {})}
    known = {k.spec_file for k in kinds()}
    for name, spec in specs.items():
        if name not in known:  # a plain name, never a path: only the spec files the actions read
            raise manifest.ManifestError(f"bundle: {str(name)[:100]!r} is not a spec file of an action")
        atomic_write(target / name, pretty_json(spec), durable=False)
    if "graph" in bundle:
        atomic_write(target / GRAPH, pretty_json(bundle["graph"]), durable=False)
    toolchain = {**bundle["toolchain"], "host": own_fingerprint()["host"]}  # what this node has, for checks
    atomic_write(out / layout.TOOLCHAIN_FILE, pretty_json(toolchain), durable=False)
    record_root(out, cache)
    events = out / layout.STATE_DIR / "node-events.jsonl"
    events.parent.mkdir(parents=True, exist_ok=True)
    env = {**_node_environ(), settings.EVENTS_VAR: str(events), **remote}
    env.pop(settings.EXECUTOR_SOCKET_VAR, None)  # the action runs here, never sent on again
    spec = (target / kind.spec_file).relative_to(out).as_posix()
    code = _run_action([sys.executable, "-S", str(CLIENT), f"aotbuild.actions.{kind.name}", spec], out, env)
    records = [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []
    record = records[-1] if records else {}
    log = target / f"{kind.name}.log"
    if code == 0 and record.get("outcome") not in (None, "failed"):
        return {"status": "ok", "outcome": record["outcome"], "phases": record.get("phases", {}),
                "action_seconds": record.get("seconds")}
    tail = log.read_text(errors="replace")[-LOG_TAIL:] if log.exists() else ""
    return {"status": "failed", "exit_code": code, "message": record.get("message") or f"exit code {code}",
            "log_tail": tail}


def _fetcher(cache: Path, remote: dict[str, str]) -> Callable[[str], Path | None]:
    """The verified path of a blob in this node's cache, fetched from the remote when missing."""
    from aotbuild.cache.layered import open_layered
    from aotbuild.cache.local import LocalStore

    store = open_layered({**os.environ, **remote}, LocalStore(cache))
    return store.blob_path


def _node_environ() -> dict[str, str]:
    """This worker's environment, less the OMP_NUM_THREADS Ray sets for a task (its num_cpus) when the node was
    started without one: inductor's code depends on the thread count it sees, and the node's compile must
    give the bytes a build on the node itself gives (checked: the example's CNNs differ under 1 thread)."""
    env = dict(os.environ)
    try:
        with open(f"/proc/{os.getppid()}/environ", "rb") as f:  # the raylet's, as the operator started it
            started_with = {entry.split(b"=", 1)[0] for entry in f.read().split(b"\0") if b"=" in entry}
    except OSError:
        return env
    if b"OMP_NUM_THREADS" not in started_with:
        env.pop("OMP_NUM_THREADS", None)
    return env


def _run_action(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
    """The action's exit code. Cancelled (Ray raises KeyboardInterrupt in the task), it is stopped as Ctrl-C
    stops a local one; if this worker process dies, the kernel sends the action SIGTERM (PR_SET_PDEATHSIG)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    try:
        return proc.wait()
    except BaseException:
        proc.send_signal(signal.SIGTERM)  # the workers client forwards it to the action's process group
        proc.wait()
        raise


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: the child only calls into it
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

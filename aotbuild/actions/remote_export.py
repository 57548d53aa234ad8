"""An export's side of the executor: ship the files it reads by digest, run it on a node, take the result back
through this checkout's own action-cache lookup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aotbuild.actions import shipping
from aotbuild.cache import payloads
from aotbuild.errors import ActionError, InfraError
from aotbuild.executors import dispatch, manifest
from aotbuild.executors.dispatch import ClusterUnavailable
from aotbuild.hashing import key_of
from aotbuild.rules.compile import SPEC as COMPILE_SPEC
from aotbuild.rules.export import KIND as EXPORT
from aotbuild.workspace import settings


def exported(ctx: Any) -> str | None:
    """The outcome of this export (a miss here) run on the cluster, or None: it runs here. A cluster fault
    (retried once there) lets it run here with a warning, or fails the build under --executor-required."""
    env = settings.environ()
    path = settings.executor_socket(env)
    if path is None:
        return None
    files, why = shipped_files(ctx)
    if files is not None:
        try:
            return _on_cluster(ctx, files, path)
        except ClusterUnavailable as e:
            why = str(e)
            if settings.executor_required(env):
                raise InfraError(f"the cluster could not export it: {why}\n"
                                 "  (--executor-required: the build fails instead of exporting here)") from None
            ctx.warn(f"{ctx.label}: exported on this machine, not the cluster: {why}")
    print(f"exported here, not on the cluster: {why}", flush=True)  # into the log: expected, not a warning
    ctx.extra["executor"] = {"node": None, "local_because": str(why)[:500]}
    return None


def recorded_lists(ctx: Any) -> list[dict[str, list[str]]]:
    """The dependency lists earlier exports of this target recorded (any machine's, through the remote)."""
    from aotbuild.actions.export import source_key

    recorded = payloads.checked(ctx.store, key_of("export-deps", source_key(ctx)), "export-deps")
    return recorded["lists"] if recorded else []


def shipped_files(ctx: Any) -> tuple[list[str] | None, str | None]:
    """The workspace files to ship, or None and why the export runs here. A first export (no recorded list)
    runs here where it can, because only a local run discovers exactly what the model reads; a CUDA target on
    a machine without a GPU cannot, so it ships every workspace `.py` file and its declared weights and data."""
    lists = recorded_lists(ctx)
    if any(deps["external"] for deps in lists):
        return None, "it imports modules from outside the workspace (PYTHONPATH), which are not shipped"
    if ctx.spec.get("env") or any(deps["env"] for deps in lists):
        return None, "it reads environment variables (env:), whose values are not shipped"
    toolchain = ctx.toolchain()
    cuda = ctx.spec["device"].startswith("cuda")
    if cuda and toolchain["cuda"]["gpu_arch"] is None:
        return None, f"a CUDA target needs {settings.GPU_ARCH_VAR} here to be routed to a node with that GPU"
    if lists:
        return shipping.known_files(ctx.root, lists, ctx.spec), None
    if cuda and toolchain["host"]["gpu_arch"] is None:
        files = shipping.workspace_sources(ctx.root, ctx.spec)
        if len(files) > manifest.MAX_FILES:  # a node would refuse the manifest
            return None, f"the workspace has {len(files)} .py files, more than a node takes ({manifest.MAX_FILES})"
        return files, None
    return None, "its first export runs here, where it discovers what the model reads"


def _on_cluster(ctx: Any, files: list[str], path: Path) -> str:
    from aotbuild.actions.export import from_cache, source_key

    shipped = _ship(ctx, files)
    config = settings.remote_settings(settings.environ())
    bundle = {"action": EXPORT.name, "spec": ctx.spec, "specs": {COMPILE_SPEC: ctx.read_json(COMPILE_SPEC)},
              "toolchain": ctx.toolchain(), "remote": config.url if config else None, "files": shipped}
    # A cluster without a node for it lets it run here: a CUDA target then fails as without an executor
    # (or is skipped under a wildcard).
    try:
        answer = dispatch.on_node(ctx, path, bundle, unserved_fails=False)
    except ActionError as e:
        if settings.executor_required(settings.environ()):
            raise
        # The lists are of earlier exports: a module imported since (a new file) was not shipped. Here it is.
        raise ClusterUnavailable(f"{e.message} (it may read a file that its recorded dependency lists do not "
                                 "name yet)") from None
    # The node's dependency list, over an older one here; then this checkout's own lookup: it re-hashes what
    # the node's export read, as found here, so a result of inputs that differ from these is not used.
    ctx.store.refresh_action(key_of("export-deps", source_key(ctx)))
    if not from_cache(ctx):
        raise ClusterUnavailable(f"node {answer['node']} exported it, but its result does not fit this checkout "
                                 "(a file it read is not the same here, or the remote cache does not give the "
                                 "result back)")
    return str(answer.get("outcome") or EXPORT.ran)


def compile_sources(ctx: Any) -> dict[str, Any]:
    """For a node's compile that must export again (its program is not stored: large weights) or import the
    module that registers its output type: the export's files and spec, to go into the bundle. Raises
    ClusterUnavailable when they cannot be shipped (the compile runs here)."""
    from aotbuild.actions.export import as_export

    exporting = as_export(ctx)
    files, why = shipped_files(exporting)
    if files is None:
        raise ClusterUnavailable(f"the node would need its sources: {why}")
    return {"files": _ship(ctx, files), "specs": {EXPORT.spec_file: exporting.spec}}


def _ship(ctx: Any, files: list[str]) -> manifest.Manifest:
    """Hash `files` into the local cache and put them in the remote: their manifest."""
    with ctx.phases.phase("ship_inputs"):
        shipped = manifest.build(ctx.root, files, ctx.store.local.put_file)
        dispatch.ship(ctx, sorted({entry["sha256"] for entry in shipped.values()}), "the model's files")
    return shipped

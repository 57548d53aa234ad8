"""What a warm server imports and prepares before it forks actions: torch and inductor, and inductor's setup."""

from __future__ import annotations

import importlib
import os
import shutil
import sys

# Imported before forking; whatever an action imports beyond these it imports itself (correct, only slower).
PRELOAD = (
    "torch", "torch.export", "torch._dynamo", "torch._functorch.aot_autograd", "torch._inductor",
    "torch._inductor.compile_fx", "torch._inductor.lowering", "torch._inductor.graph", "torch._inductor.scheduler",
    "torch._inductor.codecache", "torch._inductor.cpp_builder", "torch._inductor.codegen.cpp",
    "torch._inductor.codegen.cpp_wrapper_cpu", "torch._inductor.package", "torch._export.serde.serialize",
    "torch.fx.experimental.symbolic_shapes", "torch.utils._pytree",
    # Not the action modules themselves: each runs as __main__, as `python -m` would run it.
    "aotbuild.actions.runtime", "aotbuild.actions.dependencies",
    "aotbuild.actions.reference_io", "aotbuild.actions.example_inputs", "aotbuild.actions.model_loader",
    "aotbuild.actions.interface", "aotbuild.actions.graph_hash", "aotbuild.actions.signature_check",
    "aotbuild.actions.isa_probe",
)


def preload() -> None:
    """torch as a compile imports it (through the staging links), then the modules actions use; before anything
    starts OpenMP threads or CUDA, so a forked child may use both."""
    from aotbuild.actions import staging

    # torch.cuda.is_available()/device_count() arm CUDA's fork guard (every forked child then fails its first
    # CUDA call, even inductor's device probe in a CPU compile) unless they ask NVML instead of the driver.
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(str(staging.BASE), "workers", f"inductor-{os.getpid()}")
    with staging.torch_imported_through_link():
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError as e:  # an older torch lacks one: the action imports what it needs itself
                print(f"preload: {name}: {e}", file=sys.stderr, flush=True)
    _warm_inductor()
    import torch

    if torch.cuda.is_initialized():
        raise RuntimeError("CUDA was initialized while preloading: forked actions could not use it")
    pid = os.fork()  # whether a forked child would be refused CUDA: it reports torch's own flag (no CUDA init)
    if pid == 0:
        os._exit(1 if torch.cuda._is_in_bad_fork() else 0)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        raise RuntimeError("CUDA's fork guard was armed while preloading: forked actions could not use CUDA")


def _warm_inductor() -> None:
    """Inductor's setup of a machine (ISA probe, precompiled headers) while the server serves; in a child: both
    run threads and compilers, and a process with threads must not fork the actions."""
    if os.fork() != 0:
        return  # reaped with the actions' children (an unknown pid there)
    # Inductor builds the probe libraries in its cache dir: one of our own, which the server's idle exit
    # (it removes its own) cannot pull from under a probe still running.
    scratch = os.environ["TORCHINDUCTOR_CACHE_DIR"] + "-isa"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = scratch
    try:
        from aotbuild.actions import isa_probe, precompiled_headers, staging

        def probe() -> None:
            isa_probe.remember(staging.BASE)
            isa_probe.load_probes_without_torch()
            isa_probe.probe_concurrently()

        for step, run in (("CPU ISA probe", probe),
                          ("precompiled headers", precompiled_headers.build_cpu_headers)):
            try:
                with staging.using_temp_space():  # `cache gc` leaves the headers' dir alone meanwhile
                    run()
            except Exception as e:  # noqa: BLE001 - only a head start: each compile can still do it itself
                print(f"preload: {step}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(0)

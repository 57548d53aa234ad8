"""Inductor's precompiled headers for CPU compiles, built by the warm worker before the first compile asks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any


def header_requests() -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The (args, kwargs) of each `_precompile_header` call `AotCodeCompiler.compile` makes for a CPU model with
    default options, in its argument order (its memo is keyed by it): the wrapper, then the kernels' prefix."""
    from torch._inductor import codecache
    from torch._inductor.config import aot_inductor
    from torch._inductor.cpp_builder import CppBuilder, CppTorchDeviceOptions
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    isa = pick_vec_isa()
    cpp_command = repr(CppBuilder(name="o", sources="i", BuildOption=CppTorchDeviceOptions(
        vec_isa=isa, device_type="cpu", aot_mode=True)).get_command_line())
    compile_command = {"aot_mode": True, "device_type": "cpu", "use_mmap_weights": False,
                       "use_mmap_weights_external": False, "use_relative_path": False, "vec_isa": isa}
    wrapper = codecache._get_cpp_wrapper_header("cpu", aot_mode=True)
    requests = [((wrapper, cpp_command), {"min_optimize": not aot_inductor.package_cpp_only, **compile_command})]
    prefix = codecache._get_cpp_prefix_header("cpu")
    if prefix:
        requests.append(((prefix, cpp_command), compile_command))
    return requests


def build_cpu_headers() -> list[str]:
    """Build both headers at once (a compile builds them one after the other); call it after the ISA probe.
    Each is named by a hash of its compiler line: a compile with other arguments builds its own."""
    from torch._inductor import codecache, config

    if not config.aot_inductor.precompile_headers:
        return []  # inductor will not use them
    requests = header_requests()
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(lambda request: codecache._precompile_header(*request[0], **request[1]), requests))

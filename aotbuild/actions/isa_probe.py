"""Inductor's CPU vector-ISA probe answered once per machine and toolchain, not once per process."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path
from typing import Any

import filelock

from aotbuild.planning.toolchain import cpu_isa

_MARK = "_aotbuild_remembers"


def _answers_dir(base: Path, torch: Any) -> Path:
    """Keyed by the CPU's flags, torch's build and the C++ compiler (an upgraded compiler is a new key)."""
    from torch._inductor import cpp_builder

    compiler = os.path.realpath(cpp_builder.get_cpp_compiler())
    try:
        st = os.stat(compiler)
        compiler_id = f"{compiler}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        compiler_id = compiler
    torch_dir = os.path.realpath(os.path.dirname(torch.__file__))
    key = "\0".join([cpu_isa(), torch.__version__, torch_dir, os.path.realpath(sys.executable), compiler_id])
    return base / "isa" / hashlib.sha256(key.encode()).hexdigest()[:24]


def remember(base: Path) -> None:
    """Make inductor's ISA check read and record positive answers, each keyed by the ISA, its flags then (AMX
    adds one for fp16) and the test program. Idempotent; a surprise in inductor leaves its own check."""
    import torch
    from torch._inductor import cpu_vec_isa

    isa_class = getattr(cpu_vec_isa, "VecISA", None)
    check_build = getattr(isa_class, "check_build", None)
    if check_build is None or getattr(check_build, _MARK, False):
        return
    answers = _answers_dir(base, torch)

    def remembering_check_build(isa: Any, code: str) -> bool:
        try:
            flags = isa.build_arch_flags()
        except Exception:  # noqa: BLE001 - an inductor without it: ask inductor every time
            return check_build(isa, code)
        answer = f"{isa} [{flags.strip()}] {hashlib.sha256(code.encode()).hexdigest()[:16]}"
        # One file per positive answer, named by its digest: its existence is the answer.
        kept = answers / hashlib.sha256(answer.encode()).hexdigest()[:16]
        if kept.exists():
            return True
        answers.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Concurrent compiles of a cold machine wait for one probe of each answer instead of each running it.
        with filelock.FileLock(f"{kept}.lock"):
            if kept.exists():
                return True
            ok = check_build(isa, code)
            if ok:  # a negative answer may be a probe timed out under load: never kept
                kept.write_text(answer)
        return ok

    setattr(remembering_check_build, _MARK, True)
    isa_class.check_build = remembering_check_build


def probe_concurrently() -> None:
    """Ask inductor's check about every vector ISA this CPU offers at once, not one after another."""
    from concurrent.futures import ThreadPoolExecutor

    from torch._inductor import cpu_vec_isa

    checker = getattr(cpu_vec_isa, "x86_isa_checker", None)
    candidates = list(getattr(cpu_vec_isa, "supported_vec_isa_list", []))
    if checker is None or not candidates or platform.machine() not in ("x86_64", "AMD64"):
        cpu_vec_isa.valid_vec_isa_list()  # inductor's own order elsewhere
        return
    flags = set(checker())
    offered = [isa for isa in candidates if all(flag in flags for flag in str(isa).split())]
    with ThreadPoolExecutor(max_workers=max(1, len(offered))) as pool:
        list(pool.map(bool, offered))


def load_probes_without_torch() -> None:
    """For a process that only probes, as torch 2.13 does itself: each probe child finds libtorch_cpu through
    LD_LIBRARY_PATH instead of importing torch (about 5 s for CUDA torch)."""
    import torch
    from torch._inductor import cpu_vec_isa

    isa_class = getattr(cpu_vec_isa, "VecISA", None)
    code = getattr(isa_class, "_avx_py_load", None)
    if sys.platform != "linux" or not isinstance(code, str) or not code.lstrip().startswith("import torch\n"):
        return
    lib_dir = os.path.join(os.path.dirname(torch.__file__), "lib")
    others = os.environ.get("LD_LIBRARY_PATH")
    os.environ["LD_LIBRARY_PATH"] = lib_dir + (os.pathsep + others if others else "")
    isa_class._avx_py_load = code.lstrip().removeprefix("import torch\n")

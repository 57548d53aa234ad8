"""Inductor's CPU vector-ISA probe answered once per machine and toolchain, not once per process.

To learn which vector ISAs it may use, inductor builds a test library per ISA and loads each in a child
`python -c "import torch; ..."` (VecISA.check_build), and keeps the answer in memory only. Every compile
process pays that: about 3 s on 2 cores with the probe libraries already built, and 60 s of a 16-core
machine's compile when seven compiles each start CUDA torch four times at once. A positive answer only
depends on the CPU, the compiler and torch, so it is kept on disk under a key of those, in this user's
private /tmp dir, and given to inductor before it asks; concurrent processes wait for one probe. A negative
answer is never kept: it may be a probe that timed out under load, and remembering it would compile every
later model for a lesser ISA.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import filelock

from aotbuild.fsutil import replace_unsynced
from aotbuild.planning.toolchain import cpu_isa

_MARK = "_aotbuild_remembers"


def answers_path(base: Path, torch: Any) -> Path:
    """Where this toolchain's answers live: keyed by the CPU's flags, torch's build and the C++ compiler
    inductor calls (its resolved path, size and mtime: an upgraded compiler is a new key)."""
    from torch._inductor import cpp_builder

    compiler = os.path.realpath(cpp_builder.get_cpp_compiler())
    try:
        st = os.stat(compiler)
        compiler_id = f"{compiler}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        compiler_id = compiler
    torch_dir = os.path.realpath(os.path.dirname(torch.__file__))
    key = "\0".join([cpu_isa(), torch.__version__, torch_dir, os.path.realpath(sys.executable), compiler_id])
    return base / "isa" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def remember(base: Path) -> None:
    """Make inductor's ISA check read, and record, positive answers in the file for this toolchain.

    Every check is remembered by what it compiles: the ISA, its compiler flags at that moment (AMX checks
    fp16 by adding a flag for one call) and the test program (AVX-512 and AMX try more than one). Idempotent
    per process (a warm worker installs it once; its forked actions inherit it). Any surprise in inductor's
    internals leaves its own check in place: this only saves time."""
    import torch
    from torch._inductor import cpu_vec_isa

    isa_class = getattr(cpu_vec_isa, "VecISA", None)
    check_build = getattr(isa_class, "check_build", None)
    if check_build is None or getattr(check_build, _MARK, False):
        return
    path = answers_path(base, torch)

    def remembering_check_build(isa: Any, code: str) -> bool:
        try:
            flags = isa.build_arch_flags()
        except Exception:  # noqa: BLE001 - an inductor without it: ask inductor every time
            return check_build(isa, code)
        answer = f"{isa} [{flags.strip()}] {hashlib.sha256(code.encode()).hexdigest()[:16]}"
        if answer in _read(path):
            return True
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Concurrent compiles of a cold machine wait for one probe of each answer instead of each running it:
        # seven compiles probing at once on 16 cores took 60 s each, starting torch in 28 children.
        digest = hashlib.sha256(answer.encode()).hexdigest()[:16]
        with filelock.FileLock(f"{path.with_suffix('')}.{digest}.lock"):
            if answer in _read(path):
                return True
            ok = check_build(isa, code)
            if ok:
                _record(path, answer)
        return ok

    setattr(remembering_check_build, _MARK, True)
    isa_class.check_build = remembering_check_build


def _read(path: Path) -> set[str]:
    try:
        answers = json.loads(path.read_text())["loads"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {a for a in answers if isinstance(a, str)} if isinstance(answers, list) else set()


def _record(path: Path, answer: str) -> None:
    """Add one answer. Probes of different answers run at once, so the file has a lock of its own."""
    with filelock.FileLock(str(path) + ".lock"):
        replace_unsynced(path, json.dumps({"loads": sorted(_read(path) | {answer})}, indent=0).encode())


def probe_concurrently() -> None:
    """Ask inductor's check about every vector ISA this CPU offers at once, one thread each, instead of one
    after another as inductor does: each check starts a child interpreter that imports torch (about 5 s for
    CUDA torch), and AMX alone runs three. With `remember` installed, the answers are recorded for every
    process that asks later; the threads are gone when this returns."""
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
    """What torch 2.13's inductor does itself, for older ones: the child that loads each probe library finds
    libtorch_cpu through torch's lib dir, put first on LD_LIBRARY_PATH, instead of by importing torch. That
    import costs about 5 s for CUDA torch, and AVX-512 and AMX probe in two rounds, one after the other
    (measured on 16 cores, torch 2.11: every compile of a cold build waited about 15 s for the answers).
    For a process that only probes (the warm worker's probe child): the variable stays set for its children.
    A torch whose loader does not import torch, or another platform, is left as it is."""
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

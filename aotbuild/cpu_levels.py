"""Portable CPU ISAs a target may ask for (`cpu_isa:`) instead of -march=native: x86-64 microarchitecture levels.

An artifact compiled for a level runs on every CPU that has the level, so its key holds the level, not this
machine's CPU flags, and any machine (any cluster node) with the level may compile it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

NATIVE = "native"

# The /proc/cpuinfo flags each level adds to the one before (the x86-64 psABI's levels, in Linux's names; LZCNT
# is `abm`). A level needs its own and every earlier level's.
_ADDS = {
    "x86-64": ("cmov", "cx8", "fpu", "fxsr", "lm", "mmx", "sse", "sse2", "syscall"),
    "x86-64-v2": ("cx16", "lahf_lm", "pni", "popcnt", "sse4_1", "sse4_2", "ssse3"),
    "x86-64-v3": ("abm", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave"),
}
LEVELS = tuple(_ADDS)  # x86-64-v4 is not offered: inductor adds AVX-512 BF16 and AMX flags when the compiling
# machine has them, so its AVX-512 code would not run on every v4 CPU.

# Inductor's vector width for each level: AVX2 (256 bits, -mavx2 -mfma -mf16c) is inside v3; inductor has no
# 128-bit x86 vector code, so below v3 the kernels are scalar (a simdlen no ISA has).
_SIMDLEN = {"x86-64": 1, "x86-64-v2": 1, "x86-64-v3": 256}
KEY_PREFIX = "portable:"


def cpu_flags() -> str:
    """The host CPU's instruction-set flags, sorted (empty where /proc/cpuinfo says none)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return " ".join(sorted(line.split(":", 1)[1].split()))
    return ""


def required_flags(level: str) -> tuple[str, ...]:
    upto = LEVELS[:LEVELS.index(level) + 1]
    return tuple(flag for name in upto for flag in _ADDS[name])


def missing_flags(level: str, flags: str) -> list[str]:
    """The flags `level` needs that a CPU with `flags` (space-separated, as /proc/cpuinfo) lacks."""
    have = set(flags.split())
    return [flag for flag in required_flags(level) if flag not in have]


def supported(flags: str) -> list[str]:
    """The levels a CPU with `flags` runs."""
    return [level for level in LEVELS if not missing_flags(level, flags)]


def host_levels() -> list[str]:
    """The levels this machine's CPU runs (AOTBUILD_CPU_ISA, which declares a CPU ISA, does not change them)."""
    return supported(cpu_flags())


def inductor_options(level: str) -> dict[str, object]:
    """What makes inductor compile for `level` rather than for this machine's CPU."""
    return {"cpp.march": level, "cpp.simdlen": _SIMDLEN[level]}


def spec_level(spec: dict[str, Any]) -> str:
    """The level a compile spec asks for (the field is absent for native)."""
    return str(spec.get("cpu_isa", NATIVE))


def artifact_isa(spec: dict[str, Any], toolchain: dict[str, Any]) -> str:
    """The CPU ISA a compile's key holds and its manifest names: the level, or the toolchain's own ISA."""
    level = spec_level(spec)
    return toolchain["compile"]["cpu_isa"] if level == NATIVE else KEY_PREFIX + level


def host_lacks(level: str) -> str | None:
    """Why this machine cannot compile or run code for `level`, or None: inductor would fall back to scalar
    code for a vector ISA the CPU lacks, and an artifact would crash on an instruction it lacks."""
    missing = [] if level == NATIVE else missing_flags(level, cpu_flags())
    return f"cpu_isa {level}: this machine's CPU lacks {', '.join(missing)}" if missing else None


def level_of(isa: str) -> str:
    """The level an artifact ISA (artifact_isa's result) names, or NATIVE."""
    return isa[len(KEY_PREFIX):] if isa.startswith(KEY_PREFIX) else NATIVE

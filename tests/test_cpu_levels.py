"""`cpu_isa:` portable levels: which CPUs run a level, the field's parsing, and what it puts in the compile spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from aotbuild import cpu_levels
from aotbuild.rules.compile import compile_spec

from .test_yaml_and_schema import parse

V2 = "cmov cx8 fpu fxsr lm mmx sse sse2 syscall cx16 lahf_lm pni popcnt sse4_1 sse4_2 ssse3"
V3 = V2 + " abm avx avx2 bmi1 bmi2 f16c fma movbe xsave"


def test_a_level_needs_its_own_flags_and_every_earlier_levels() -> None:
    assert cpu_levels.supported(V3 + " avx512f") == ["x86-64", "x86-64-v2", "x86-64-v3"]
    assert cpu_levels.supported(V2) == ["x86-64", "x86-64-v2"]
    assert cpu_levels.missing_flags("x86-64-v3", V3.replace(" avx2", "")) == ["avx2"]
    # AVX2 without SSE4.2 is no v3 CPU: v3 includes v2.
    assert cpu_levels.missing_flags("x86-64-v3", V3.replace(" sse4_2", "")) == ["sse4_2"]
    assert cpu_levels.supported("") == []


def test_a_level_sets_inductors_march_and_a_vector_width_inside_it() -> None:
    assert cpu_levels.inductor_options("x86-64-v3") == {"cpp.march": "x86-64-v3", "cpp.simdlen": 256}
    assert cpu_levels.inductor_options("x86-64-v2") == {"cpp.march": "x86-64-v2", "cpp.simdlen": 1}  # scalar


def test_an_artifact_isa_names_the_level_or_the_machines_own_isa() -> None:
    toolchain = {"compile": {"cpu_isa": "x86_64:aaaa"}}
    assert cpu_levels.artifact_isa({"device": "cpu"}, toolchain) == "x86_64:aaaa"
    portable = cpu_levels.artifact_isa({"device": "cpu", "cpu_isa": "x86-64-v2"}, toolchain)
    assert portable == "portable:x86-64-v2" and cpu_levels.level_of(portable) == "x86-64-v2"
    assert cpu_levels.level_of("x86_64:aaaa") == cpu_levels.NATIVE


BUILD = """defaults:
  cpu_isa: x86-64-v3
targets:
  a: {model: m.x:A, inputs: {x: {shape: [2], dtype: float32}}}
  b: {model: m.x:A, cpu_isa: native, inputs: {x: {shape: [2], dtype: float32}}}
"""


def test_cpu_isa_parses_defaults_and_reaches_only_a_portable_compile_spec(tmp_path: Path) -> None:
    (a, b), errors = parse(tmp_path, BUILD)
    assert errors == {}
    assert a.cpu_isa == "x86-64-v3" and b.cpu_isa == "native"
    assert compile_spec(a)["cpu_isa"] == "x86-64-v3"
    assert "cpu_isa" not in compile_spec(b)  # native: the spec (and the key) is what it was before the field


@pytest.mark.parametrize(("value", "problem"), [
    ("x86-64-v4", "unknown CPU ISA 'x86-64-v4'"), ("x86_64_v3", "did you mean 'x86-64-v3'?"),
    ("3", "expected 'native' or 'x86-64'"),
])
def test_a_bad_cpu_isa_names_the_field_and_the_choices(tmp_path: Path, value: str, problem: str) -> None:
    text = f"targets:\n  a:\n    model: m.x:A\n    cpu_isa: {value}\n    inputs: {{x: {{shape: [2], dtype: float32}}}}\n"
    _, errors = parse(tmp_path, text)
    [error] = errors.values()
    assert problem in str(error) and "'cpu_isa'" in str(error) and ":4" in str(error)

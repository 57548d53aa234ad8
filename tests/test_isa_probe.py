"""Inductor's CPU-ISA probe is answered once per toolchain: a second process asks inductor's own check for
nothing it already answered yes to, and a no is never remembered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch

# Runs in a fresh interpreter (inductor caches its answer per process). `check_build` stands in for
# inductor's real probe (a compile and a child `import torch` per ISA): it says yes to the ISAs named in
# argv[2], records each call, and raises for any call when argv[2] is "raise".
PROBE = r"""
import json, sys, threading, time
from pathlib import Path
from torch._inductor import cpu_vec_isa
asked, active, most = [], [0], [0]
yes, concurrently = sys.argv[2], sys.argv[3] == "concurrently"
lock = threading.Lock()
def check_build(isa, code):
    if yes == "raise":
        raise AssertionError(f"inductor's own probe ran for {isa}")
    with lock:
        asked.append(str(isa))
        active[0] += 1
        most[0] = max(most[0], active[0])
    time.sleep(0.3 if concurrently else 0)  # a probe takes time: the others start meanwhile
    with lock:
        active[0] -= 1
    return str(isa) in yes.split(",")
cpu_vec_isa.VecISA.check_build = check_build
from aotbuild.actions import isa_probe
isa_probe.remember(Path(sys.argv[1]))
isa_probe.remember(Path(sys.argv[1]))  # idempotent: one wrapper, not two
if concurrently:
    isa_probe.probe_concurrently()
    asked_then = list(asked)
valid = [str(i) for i in cpu_vec_isa.valid_vec_isa_list()]
later = len(asked) - len(asked_then) if concurrently else 0
print(json.dumps({"asked": asked_then if concurrently else asked, "valid": valid, "most": most[0],
                  "threads": threading.active_count(), "asked_after": later}))
"""


def probe(base: Path, yes: str, tmp_path: Path, how: str = "inductors-order") -> dict:
    env_cache = tmp_path / "inductor"
    out = subprocess.run([sys.executable, "-c", PROBE, str(base), yes, how], capture_output=True, text=True,
                         env={"TORCHINDUCTOR_CACHE_DIR": str(env_cache), "PATH": "/usr/bin:/bin"}, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def kept_answers(base: Path) -> list[str]:
    return [answer.read_text() for answer in base.glob("isa/*/*") if answer.suffix != ".lock"]


def test_a_yes_is_remembered_for_the_next_process_and_a_no_is_not(tmp_path: Path) -> None:
    base = tmp_path / "base"
    first = probe(base, "", tmp_path)  # learn which ISAs this CPU offers inductor's probe
    if len(first["asked"]) < 2:
        pytest.skip(f"this CPU offers fewer than two vector ISAs to probe: {first['asked']}")
    assert first["valid"] == [] and not kept_answers(base)  # every no: nothing kept
    yes, no = first["asked"][-1], first["asked"][:-1]  # say yes to the last only
    second = probe(base, yes, tmp_path)
    assert second["valid"] == [yes] and second["asked"] == first["asked"]
    [kept] = kept_answers(base)
    assert kept.startswith(f"{yes} [")  # the ISA, its flags, the test program's hash
    third = probe(base, yes, tmp_path)  # the yes comes from the file; the noes are asked again
    assert third["valid"] == [yes] and third["asked"] == no


def test_remembered_answers_mean_no_probe_at_all(tmp_path: Path) -> None:
    base = tmp_path / "base"
    first = probe(base, "", tmp_path)
    everything = ",".join(first["asked"])
    assert probe(base, everything, tmp_path)["valid"] == first["asked"]
    assert probe(base, "raise", tmp_path)["valid"] == first["asked"]  # inductor's check never ran


def test_probing_concurrently_asks_every_offered_isa_at_once_and_records_the_answers(tmp_path: Path) -> None:
    first = probe(tmp_path / "serial", "", tmp_path)
    if len(first["asked"]) < 2:
        pytest.skip(f"this CPU offers fewer than two vector ISAs to probe: {first['asked']}")
    everything = ",".join(first["asked"])
    base = tmp_path / "base"
    together = probe(base, everything, tmp_path, "concurrently")
    assert together["most"] >= 2  # checks overlapped
    assert together["threads"] == 1  # and no thread is left behind (a fork server forks after this)
    assert sorted(together["valid"]) == sorted(first["asked"]) and together["asked_after"] == 0
    assert probe(base, "raise", tmp_path)["valid"] == first["asked"]  # recorded for the next process


# torch before 2.13 loads each probe library in a child that imports torch; this stands in for that loader
# on a torch that no longer has it, then runs the loader as inductor's check would (env: os.environ).
OLD_LOADER = r'''
import glob, json, os, subprocess, sys
from torch._inductor import cpu_vec_isa
cpu_vec_isa.VecISA._avx_py_load = 'import torch\nfrom ctypes import cdll\ncdll.LoadLibrary("__lib_path__")\n'
from aotbuild.actions import isa_probe
isa_probe.load_probes_without_torch()
code = cpu_vec_isa.VecISA._avx_py_load
cpu_vec_isa.VecAVX2().check_build(cpu_vec_isa.VecISA._avx_code)  # a probe library, linked to libtorch_cpu
[lib] = glob.glob(os.path.join(os.environ["TORCHINDUCTOR_CACHE_DIR"], "**", "*.so"), recursive=True)
loader = code.replace("__lib_path__", lib) + "import sys\nprint('torch' in sys.modules)\n"
without = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
runs = {name: subprocess.run([sys.executable, "-c", loader], env=env, capture_output=True, text=True)
        for name, env in (("with", dict(os.environ)), ("without", without))}
print(json.dumps({"code": code, "ld": os.environ["LD_LIBRARY_PATH"],
                  **{name: [run.returncode, run.stdout.strip()] for name, run in runs.items()}}))
'''


def test_an_old_torch_loads_probe_libraries_without_importing_torch(tmp_path: Path) -> None:
    import importlib.util

    torch_lib = str(Path(importlib.util.find_spec("torch").origin).parent / "lib")
    out = subprocess.run([sys.executable, "-c", OLD_LOADER], capture_output=True, text=True, check=False,
                         env={"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "import torch" not in result["code"] and result["ld"] == torch_lib
    assert result["with"] == [0, "False"]  # loaded, and torch was never imported
    assert result["without"][0] != 0  # the library does need libtorch_cpu: the variable is what finds it

"""The executor's pure parts (URLs, routing, toolchain refusal) and its user errors, without Ray or torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aotbuild.errors import UserError
from aotbuild.executors import address, routing
from aotbuild.planning.toolchain import fingerprint
from aotbuild.workspace import settings

from .conftest import aotbuild, make_tiny, write

TOOLCHAIN = {"export": {"torch": "2.13.0", "python": "3.11.7"},
             "compile": {"torch": "2.13.0", "python": "3.11.7", "cxx": "g++ 12", "cpu_isa": "x86_64:aaaa", "env": {}},
             "cuda": {"cuda": "13.0", "gpu_arch": "9.0", "triton": "triton 3.5"}, "host": {"gpu_arch": None}}


@pytest.mark.parametrize(("text", "host", "port"), [("ray://head:10001", "head", 10001),
                                                    (" ray://10.0.0.7:1 ", "10.0.0.7", 1)])
def test_executor_urls_parse(text: str, host: str, port: int) -> None:
    assert address.parse(text, "--executor") == address.ExecutorUrl(host, port)


@pytest.mark.parametrize("text", ["http://head:10001", "ray://head", "ray://head:0", "ray://head:70000",
                                  "ray://a/b:1", "ray://head:1/x"])
def test_bad_executor_urls_name_their_source(text: str) -> None:
    with pytest.raises(UserError, match=r"^\$AOTBUILD_EXECUTOR .*expected ray://HOST:PORT"):
        address.parse(text, "$AOTBUILD_EXECUTOR")


def test_the_flag_then_the_variable_then_the_workspace_name_the_executor() -> None:
    env = {settings.EXECUTOR_VAR: "ray://env:1"}
    assert settings.executor_url(env, "ray://flag:1", "ray://ws:1") == "ray://flag:1"
    assert settings.executor_url(env, None, "ray://ws:1") == "ray://env:1"
    assert settings.executor_url({}, None, "ray://ws:1") == "ray://ws:1"
    assert settings.executor_url(env, "", "ray://ws:1") is None  # --executor '' turns it off


def test_a_cpu_action_asks_for_its_isa_and_a_cuda_one_also_for_a_gpu_of_its_arch() -> None:
    assert routing.needs("compile", {"device": "cpu"}, TOOLCHAIN) == {"aotbuild_cpu_isa:x86_64:aaaa": routing.ASKED}
    assert routing.needs("compile", {"device": "cuda:0"}, TOOLCHAIN) == {"aotbuild_cpu_isa:x86_64:aaaa": routing.ASKED,
                                                             "aotbuild_gpu_arch:9.0": routing.ASKED, "GPU": 1.0}


def test_an_export_asks_for_no_cpu_isa_and_a_cuda_one_for_a_gpu_of_its_arch() -> None:
    assert routing.needs("export", {"device": "cpu"}, TOOLCHAIN) == {}
    assert routing.needs("export", {"device": "cuda"}, TOOLCHAIN) == {"aotbuild_gpu_arch:9.0": routing.ASKED, "GPU": 1.0}


def test_a_node_advertises_its_own_isa_and_gpu_arch() -> None:
    gpu_node = {**TOOLCHAIN, "host": {"gpu_arch": "9.0"}}
    assert routing.node_resources(TOOLCHAIN) == {"aotbuild_cpu_isa:x86_64:aaaa": routing.ADVERTISED}
    resources = {**routing.node_resources(gpu_node), "GPU": 1.0}
    assert routing.Node("n1", "10.0.0.1", resources).serves(routing.needs("compile", {"device": "cuda"}, TOOLCHAIN))
    cpu_only = routing.Node("n2", "10.0.0.2", routing.node_resources(TOOLCHAIN))
    assert not cpu_only.serves(routing.needs("compile", {"device": "cuda"}, TOOLCHAIN))


def test_an_unserved_action_names_what_it_needs_and_what_each_node_has() -> None:
    nodes = [routing.Node("0123456789", "10.0.0.1", {"CPU": 2.0, "aotbuild_cpu_isa:x86_64:bbbb": 1000.0})]
    text = routing.unserved(routing.needs("compile", {"device": "cuda"}, TOOLCHAIN), nodes)
    assert "need aotbuild_cpu_isa:x86_64:aaaa, aotbuild_gpu_arch:9.0 and a GPU" in text
    assert "node 10.0.0.1/012345 (2 CPUs, 0 GPUs; aotbuild_cpu_isa:x86_64:bbbb)" in text
    assert "aotbuild executor resources" in text
    assert "no live nodes" in routing.unserved(routing.needs("compile", {"device": "cpu"}, TOOLCHAIN), [])


def test_a_node_with_another_toolchain_is_refused_field_by_field() -> None:
    other = {**TOOLCHAIN, "compile": {**TOOLCHAIN["compile"], "cxx": "g++ 13"},
             "cuda": {**TOOLCHAIN["cuda"], "gpu_arch": "8.0"}}
    assert routing.mismatch(TOOLCHAIN, TOOLCHAIN, {"device": "cuda"}, "compile") == []
    assert routing.mismatch(TOOLCHAIN, other, {"device": "cpu"}, "compile") == ["compile.cxx: key has 'g++ 12', node has 'g++ 13'"]
    assert routing.mismatch(TOOLCHAIN, other, {"device": "cuda"}, "compile") == [
        "compile.cxx: key has 'g++ 12', node has 'g++ 13'", "cuda.gpu_arch: key has '9.0', node has '8.0'"]
    # An export's keys hold no compiler: only a CUDA one's GPU arch matters besides torch and Python.
    assert routing.mismatch(TOOLCHAIN, other, {"device": "cpu"}, "export") == []
    assert routing.mismatch(TOOLCHAIN, other, {"device": "cuda"}, "export") == ["cuda.gpu_arch: key has '9.0', node has '8.0'"]


def test_a_portable_compile_asks_for_its_level_and_any_node_whose_cpu_runs_it_may_take_it() -> None:
    portable = {"device": "cpu", "cpu_isa": "x86-64-v3"}
    assert routing.needs("compile", portable, TOOLCHAIN) == {"aotbuild_cpu_level:x86-64-v3": routing.ASKED}
    assert routing.needs("export", portable, TOOLCHAIN) == {}
    v3_node = routing.node_resources({**TOOLCHAIN, "compile": {**TOOLCHAIN["compile"], "cpu_isa": "x86_64:bbbb"}},
                                     ["x86-64", "x86-64-v2", "x86-64-v3"])
    assert routing.Node("n1", "10.0.0.1", v3_node).serves(routing.needs("compile", portable, TOOLCHAIN))
    v2_node = routing.node_resources(TOOLCHAIN, ["x86-64", "x86-64-v2"])
    assert not routing.Node("n2", "10.0.0.2", v2_node).serves(routing.needs("compile", portable, TOOLCHAIN))
    # The node checks too: another CPU ISA is fine for a portable key, a CPU without the level is not.
    other_cpu = {**TOOLCHAIN, "compile": {**TOOLCHAIN["compile"], "cpu_isa": "x86_64:bbbb"}}
    assert routing.mismatch(TOOLCHAIN, other_cpu, portable, "compile", ["x86-64-v3"]) == []
    assert routing.mismatch(TOOLCHAIN, other_cpu, {"device": "cpu"}, "compile", ["x86-64-v3"]) == [
        "compile.cpu_isa: key has 'x86_64:aaaa', node has 'x86_64:bbbb'"]
    assert routing.mismatch(TOOLCHAIN, TOOLCHAIN, portable, "compile", ["x86-64"]) == [
        "cpu_isa: the key is for x86-64-v3, which this node's CPU does not run"]


def test_a_declared_cpu_isa_replaces_the_detected_one_in_the_fingerprint() -> None:
    assert fingerprint({"PATH": "/usr/bin", settings.CPU_ISA_VAR: "x86_64:zen4"})["compile"]["cpu_isa"] == "x86_64:zen4"
    assert fingerprint({"PATH": "/usr/bin"})["compile"]["cpu_isa"].startswith("x86_64:") or sys.platform != "linux"


def test_the_cli_and_the_actions_never_import_ray_without_an_executor() -> None:
    code = ("import sys; import aotbuild.cli, aotbuild.commands.build, aotbuild.engine.build, "
            "aotbuild.actions.compile, aotbuild.executors.dispatch; assert 'ray' not in sys.modules, 'ray'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_executor_without_a_remote_cache_is_a_user_error(tmp_path: Path) -> None:
    ws = make_tiny(tmp_path / "ws")
    run = aotbuild(["build", "//...", "--executor", "ray://127.0.0.1:1", "--remote-cache", ""], ws,
                   {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert run.code == 2 and "--executor needs a remote cache" in run.stderr, run.output


def test_the_workspace_names_an_executor_and_a_bad_one_is_refused_before_connecting(tmp_path: Path) -> None:
    ws = make_tiny(tmp_path / "ws")
    write(ws / "WORKSPACE.aot.yaml", "executor: http://head:10001\n")
    run = aotbuild(["build", "//...", "--remote-cache", "http://127.0.0.1:1/x"], ws,
                   {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert run.code == 2 and "WORKSPACE.aot.yaml executor: 'http://head:10001': expected ray://HOST:PORT" in run.stderr
    write(ws / "WORKSPACE.aot.yaml", "executor: 5\n")
    run = aotbuild(["build", "//..."], ws, {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert run.code == 2 and "field 'executor'" in run.stderr, run.output


def test_a_build_sizes_the_compile_pool_without_re_planning(tmp_path: Path) -> None:
    from aotbuild.planning.ninja_files import POOLS_FILE, pool_depths, write_pools

    write_pools(tmp_path, {"aot_compile_pool": 40})  # an executor's build: the cluster's slots
    text = (tmp_path / POOLS_FILE).read_text()
    assert "\naot_compile_pool_depth = 40\n" in text and "\naot_gpu_compile_pool_depth = 2\n" in text
    write_pools(tmp_path)  # after it: this machine's depth again, for plain ninja
    assert f"\naot_compile_pool_depth = {pool_depths()['aot_compile_pool']}\n" in (tmp_path / POOLS_FILE).read_text()


def test_a_node_sweeps_the_scratch_dirs_of_dead_workers_only(tmp_path: Path) -> None:
    from aotbuild.executors.worker import sweep

    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    (tmp_path / f"a-{dead.pid}-x1").mkdir()
    (tmp_path / f"a-{os.getpid()}-x2").mkdir()  # a live worker, mid-action
    (tmp_path / "toolchain-stamp.json").write_text("{}")
    sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"a-{os.getpid()}-x2", "toolchain-stamp.json"]

"""Warm workers without torch: the client's contract, its server key, the no-workers path, phase accounting."""

from __future__ import annotations

import ast
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from aotbuild.actions.runtime import Phases
from aotbuild.rules import CLIENT
from aotbuild.workers import client
from aotbuild.workers.child import _exit_code
from aotbuild.workspace import settings
from aotbuild.rules import kinds


def test_client_and_settings_name_the_same_variable() -> None:
    assert client.WORKERS_VAR == settings.WORKERS_VAR


def test_client_imports_only_the_standard_library() -> None:
    """It runs with -S (no site-packages): anything else would fail there, or cost start-up time."""
    tree = ast.parse(CLIENT.read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert modules and modules <= set(sys.stdlib_module_names) | {"__future__"}, modules


def test_every_action_rule_runs_through_the_client() -> None:
    for kind in kinds():
        command = kind.rule("/venv/bin/python").command
        assert command == f"/venv/bin/python -S {shlex.quote(str(CLIENT))} aotbuild.actions.{kind.name} $spec"


def test_socket_path_ignores_aotbuild_and_shell_variables_only() -> None:
    base = {"PATH": "/bin", "HOME": "/root"}
    key = client.socket_path(base)
    assert client.socket_path({**base, "AOTBUILD_EVENTS": "/x", "AOTBUILD_CACHE_DIR": "/c"}) == key
    assert client.socket_path({**base, "OMP_NUM_THREADS": "1"}) != key  # torch reads it when imported
    assert client.socket_path({**base, "CXX": "clang++"}) != key
    # The shell ninja runs the client in sets these for itself; the CLI warming a server sees other values.
    assert client.socket_path({**base, "PWD": "/a", "OLDPWD": "/b", "SHLVL": "2", "_": "/bin/sh"}) == key


def test_no_workers_execs_the_module_in_the_clients_place(tmp_path: Path) -> None:
    (tmp_path / "act.py").write_text("import os, sys\nprint(os.getpid())\nsys.exit(int(sys.argv[1]))\n")
    proc = subprocess.Popen([sys.executable, "-S", str(CLIENT), "act", "4"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, env={"AOTBUILD_WORKERS": "0", "PATH": "/usr/bin:/bin"})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 4
    assert out.strip() == str(proc.pid)  # exec'd: no worker, no fork


@pytest.mark.parametrize(("code", "expected"), [(None, 0), (0, 0), (3, 3), ("error: boom", 1)])
def test_exit_codes_map_as_the_interpreter_maps_them(code, expected) -> None:
    assert _exit_code(SystemExit(code)) == expected


def fake_torch(metrics: dict[str, list[float]]) -> SimpleNamespace:
    return SimpleNamespace(_dynamo=SimpleNamespace(utils=SimpleNamespace(compilation_time_metrics=metrics)))


def test_inductor_timers_split_the_compile_call() -> None:
    phases = Phases()
    phases.add("trace_and_package", 20.0)
    phases.split_inductor(fake_torch({"GraphLowering.run": [1.0], "GraphLowering.codegen": [2.0, 1.0],
                                      "aoti_precompile_header": [4.0], "AotCodeCompiler.compile": [10.0]}),
                          "trace_and_package")
    assert phases.rounded() == {"trace_and_package": 6.0, "lower": 1.0, "codegen": 3.0,
                                "precompiled_header": 4.0, "cxx_compile_link": 6.0}
    assert phases.line().startswith("phases: trace_and_package 6.00 s, lower 1.00 s")


def test_unknown_inductor_timers_leave_the_total() -> None:
    phases = Phases()
    phases.add("trace_and_package", 5.0)
    phases.split_inductor(fake_torch({"something_else": [1.0]}), "trace_and_package")
    assert phases.rounded() == {"trace_and_package": 5.0}


@pytest.mark.parametrize("last_word", [{"exit": 3}, {"hand_off": 12345}])
def test_a_childs_last_word_before_the_servers_pid_is_the_answer(tmp_path: Path, last_word: dict) -> None:
    """A child that fails at once (or hands off) writes on the connection before the server says it forked."""
    path = str(tmp_path / "s.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1, 3)
            conn.makefile("rb").readline()  # the whole request, as the server reads it before anything happens
            for fd in fds:
                os.close(fd)
            conn.sendall(json.dumps(last_word).encode() + b"\n" + json.dumps({"pid": 1}).encode() + b"\n")

    server = threading.Thread(target=serve)
    server.start()
    try:
        assert client.run_once(["aotbuild.actions.export", "x.json"], path, []) == last_word
    finally:
        server.join(5)
        listener.close()

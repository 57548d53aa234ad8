"""The no-op fast path (engine/noop_stamp.py): a true no-op build skips ninja, and every change that would make
ninja or the checks before it do something makes the build run ninja again, with the right rebuild.

The builds are the real CLI and the real ninja; only the actions are stand-ins (as in bench/scale.py): the
interpreter the ninja files name is a script that writes what an action writes and logs each action it ran,
and `ninja` beside it is a wrapper that logs each time it is started. No torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import ninja
import pytest

from aotbuild import layout
from aotbuild.engine import noop_stamp
from aotbuild.planning import file_state

from .conftest import write

STANDIN = r'''#!/bin/bash
# An action stand-in: see tests/test_noop_stamp.py.
if [ "$1" = -m ] && [ "${2#aotbuild.actions.}" != "$2" ]; then
  spec=$3; dir=${spec%/*}; name=${dir##*/}; name=${name#@}; action=${2#aotbuild.actions.}; label="//${dir%/*}:$name"
  echo "$action $label" >> "$NOOP_TEST_ACTIONS"
  if [ "$NOOP_TEST_FAIL" = "$label" ]; then echo "stand-in: $label fails" >&2; exit 1; fi
  case $action in
    export)
      printf '{"graph_hash": "%s"}\n' "$name" > "$dir/graph.json"
      printf '{}\n' > "$dir/reference.json"; printf 'pt' > "$dir/reference_io.pt"
      printf '%s\n' "$NOOP_TEST_DEPS" > "$dir/graph.deps"
      printf '%s: %s\n' "$dir/graph.json" "$NOOP_TEST_DEPS" > "$dir/graph.json.d"
      outcome=exported;;
    compile)
      printf 'so' > "$dir/$name-0123456789abcdef.so"; printf 'pt2' > "$dir/$name-0123456789abcdef.pt2"
      ln -sfn "$name-0123456789abcdef.so" "$dir/$name.so"; ln -sfn "$name-0123456789abcdef.pt2" "$dir/$name.pt2"
      printf '{"label": "%s"}\n' "$label" > "$dir/manifest.json"
      outcome=compiled;;
    verify)
      printf '{"cases": [], "rejected": []}\n' > "$dir/verified.json"
      outcome=verified;;
  esac
  printf '{"label": "%s", "action": "%s", "outcome": "%s", "seconds": 0, "hits": 0, "misses": 0, "corrupt": []}\n' \
    "$label" "$action" "$outcome" >> "$AOTBUILD_EVENTS"
  exit 0
fi
exec -a "$0" @REAL@ "$@"
'''
NINJA_WRAPPER = '#!/bin/sh\necho "$*" >> "$NOOP_TEST_NINJA_RUNS"\nexec @NINJA@ "$@"\n'
COPIES = 23  # the tests using `ws` (23); more only cost a wait each
BUILD = """targets:
  a: {model: m.tiny:Tiny, inputs: {x: {shape: [2, 4], dtype: float32}}}
  b: {model: m.tiny:Tiny, inputs: {x: {shape: [2, 5], dtype: float32}}}
"""


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv whose `python` is the stand-in and whose `ninja` is the logging wrapper (the `ninja` package
    finds its binary beside the running interpreter's scripts)."""
    where = tmp_path_factory.mktemp("standin") / "venv"
    base = sys._base_executable  # type: ignore[attr-defined]
    subprocess.run([base, "-m", "venv", "--without-pip", str(where)], check=True)
    site = Path(sysconfig.get_paths(vars={"base": str(where), "platbase": str(where)})["purelib"])
    (site / "_noop_test.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    interpreter = where / "bin" / "python"
    interpreter.unlink()
    interpreter.write_text(STANDIN.replace("@REAL@", os.path.realpath(base)))
    interpreter.chmod(0o755)
    wrapper = where / "bin" / "ninja"
    wrapper.write_text(NINJA_WRAPPER.replace("@NINJA@", str(Path(ninja.BIN_DIR) / "ninja")))
    wrapper.chmod(0o755)
    return interpreter


class Workspace:
    def __init__(self, root: Path, python: Path) -> None:
        self.root, self.python = root, python
        self.out = root / layout.OUT_DIR
        self.logs = root.parent / "logs"
        self.logs.mkdir(exist_ok=True)
        # The discovered dependency is named relative to aot-out/, so a copied workspace depends on its own.
        self.env = {**os.environ, "AOTBUILD_CACHE_DIR": str(root.parent / "cache"), "AOTBUILD_WORKERS": "0",
                    "NOOP_TEST_ACTIONS": str(self.logs / "actions"), "NOOP_TEST_NINJA_RUNS": str(self.logs / "ninja"),
                    "NOOP_TEST_DEPS": "../m/tiny.py"}
        self.env.pop("AOTBUILD_NOOP_STAMP", None)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """One CLI command; the logs of actions and ninja starts are cleared before it."""
        for log in ("actions", "ninja"):
            (self.logs / log).unlink(missing_ok=True)
        return subprocess.run([str(self.python), "-m", "aotbuild", *args], cwd=self.root, capture_output=True,
                              text=True, env={**self.env, **env})

    def actions(self) -> list[str]:
        path = self.logs / "actions"
        return path.read_text().splitlines() if path.exists() else []

    def ninja_ran(self) -> bool:
        """Whether ninja was started to build (not only asked its version)."""
        path = self.logs / "ninja"
        return path.exists() and any("--version" not in line for line in path.read_text().splitlines())

    @property
    def stamp(self) -> Path:
        return self.out / noop_stamp.STAMP_FILE


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, python: Path) -> Path:
    """A workspace of 4 targets built once with stand-in actions; each test gets a copy."""
    root = tmp_path_factory.mktemp("built") / "ws"
    write(root / "WORKSPACE.aot.yaml", "")
    write(root / "m" / "__init__.py", "")
    write(root / "m" / "tiny.py", "class Tiny: pass\n")
    write(root / "m" / "BUILD.aot.yaml", BUILD)
    write(root / "n" / "BUILD.aot.yaml", BUILD)
    w = Workspace(root, python)
    first = w.run("build", "//...")
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(w.actions()) == 8  # 4 targets: export and compile each
    return root


@pytest.fixture(scope="module")
def copies(built: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Copies of the built workspace (mtimes kept: ninja has nothing to do), made at once: their ctimes are
    new, and planning trusts a file's signature only a second after it last changed (before that it re-plans,
    which appends to ninja's log and moves the stamp's signature of it). One wait for all the tests."""
    return _copy_all(built, tmp_path_factory, COPIES)


def _copy_all(built: Path, tmp_path_factory: pytest.TempPathFactory, count: int) -> list[Path]:
    made = []
    for _ in range(count):
        where = tmp_path_factory.mktemp("copy")
        shutil.copytree(built.parent, where, symlinks=True, dirs_exist_ok=True)
        made.append(where)
    time.sleep(file_state.RACY_NS / 1e9)
    return made


@pytest.fixture
def ws(copies: list[Path], python: Path, built: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A copy of the built workspace, after the no-op builds that wrote the stamp."""
    if not copies:  # more tests than COPIES: one more copy, and its wait
        copies.extend(_copy_all(built, tmp_path_factory, 1))
    w = Workspace(copies.pop() / "ws", python)
    for _ in range(2):  # the first re-plans (the copy's new inodes), which does not try to stamp
        proc = w.run("build", "//...")
        assert proc.returncode == 0 and w.ninja_ran() and not w.actions(), proc.stdout + proc.stderr
    assert w.stamp.exists()
    return w


def assert_fast(w: Workspace, *args: str, **env: str) -> subprocess.CompletedProcess:
    proc = w.run(*args, **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = (w.logs / "ninja").read_text() if (w.logs / "ninja").exists() else ""
    assert not w.ninja_ran() and not w.actions(), f"ninja ran: the stamp should have held: {ran!r} {w.actions()}"
    return proc


def test_a_true_no_op_skips_ninja_and_says_so(ws: Workspace) -> None:
    report = ws.root / "report.json"
    proc = assert_fast(ws, "build", "//...", "--report", str(report))
    assert proc.stdout.startswith("aotbuild: 4 targets: 4 up to date in "), proc.stdout
    data = json.loads(report.read_text())
    assert data["actions"] == [] and data["exit_code"] == 0 and data["failures"] == {} and data["noop_stamp"]
    assert set(data["targets"].values()) == {"up to date"} and len(data["targets"]) == 4
    # Flags that change no command: -k, -j, --no-workers; and a subset of the stamped goals.
    assert_fast(ws, "build", "//...", "-k", "-j", "1", "--no-workers")
    assert "1 up to date" in assert_fast(ws, "build", "//m:a").stdout
    assert "no-op stamp holds" in assert_fast(ws, "build", "//...", "-v").stdout


def test_explain_always_runs_ninja(ws: Workspace) -> None:
    proc = ws.run("build", "//...", "--explain", "--report", str(ws.root / "r.json"))
    assert proc.returncode == 0 and ws.ninja_ran() and "no work to do" in proc.stdout
    assert not json.loads((ws.root / "r.json").read_text())["noop_stamp"]


def test_the_stamp_command_names_what_moved(ws: Workspace) -> None:
    proc = ws.run("stamp")
    assert proc.returncode == 0 and "every entry is as recorded" in proc.stdout, proc.stdout
    os.utime(ws.root / "m" / "tiny.py", ns=(10**9, 10**9))
    proc = ws.run("stamp")
    assert "moved: ../m/tiny.py: recorded " in proc.stdout and "now 1000000000" in proc.stdout, proc.stdout
    (ws.out / "m" / "@a" / "graph.json").unlink()
    assert "moved: m/@a/graph.json: recorded " in ws.run("stamp").stdout


def test_a_ninja_outside_the_tested_range_turns_the_stamp_off_and_says_so(ws: Workspace) -> None:
    fake = ws.root.parent / "ninja-1.12"
    real = json.loads((ws.out / layout.PLAN_FILE).read_text())["ninja"]
    fake.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo 1.12.1; exit 0; fi\nexec {real} "$@"\n')
    fake.chmod(0o755)
    plan_file = ws.out / layout.PLAN_FILE
    plan_file.write_text(plan_file.read_text().replace(json.dumps(real), json.dumps(str(fake))))
    proc = ws.run("build", "//...", "-v")
    assert proc.returncode == 0 and "outside the tested range" in proc.stderr and not ws.stamp.exists()
    assert "no work to do" in ws.run("build", "//...").stdout  # ninja ran, every time


def test_the_variable_turns_it_off(ws: Workspace) -> None:
    proc = ws.run("build", "//...", AOTBUILD_NOOP_STAMP="0")
    assert proc.returncode == 0 and ws.ninja_ran()


def test_a_source_file_edit_reruns_the_exports_that_imported_it(ws: Workspace) -> None:
    source = ws.root / "m" / "tiny.py"
    source.write_text("class Tiny: pass  # edited\n")
    os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))  # past any timestamp granularity
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran(), proc.stdout + proc.stderr
    assert sorted(a for a in ws.actions() if a.startswith("export")) == [
        "export //m:a", "export //m:b", "export //n:a", "export //n:b"]


def test_a_deleted_output_is_rebuilt(ws: Workspace) -> None:
    (ws.out / "m" / "@a" / "graph.json").unlink()
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran() and "export //m:a" in ws.actions()
    assert (ws.out / "m" / "@a" / "graph.json").exists()


def test_a_deleted_artifact_alias_is_recreated(ws: Workspace) -> None:
    alias = ws.out / "n" / "@b" / "b.so"
    alias.unlink()  # not a ninja node: only the check before ninja sees it
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran() and ws.actions() == ["compile //n:b"], proc.stdout
    assert alias.is_symlink() and alias.exists()


def test_a_deleted_artifact_behind_its_alias_is_recreated(ws: Workspace) -> None:
    (ws.out / "n" / "@b" / "b-0123456789abcdef.pt2").unlink()
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.actions() == ["compile //n:b"], proc.stdout
    assert (ws.out / "n" / "@b" / "b.pt2").exists()


def test_a_link_in_place_of_a_target_directory_is_removed(ws: Workspace, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.move(ws.out / "m" / "@a", elsewhere)  # the same files, mtimes kept, now behind a link
    (ws.out / "m" / "@a").symlink_to(elsewhere)
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran(), proc.stdout + proc.stderr
    assert "was a symlink" in proc.stderr and not (ws.out / "m" / "@a").is_symlink()
    assert "compile //m:a" in ws.actions()


def test_a_build_file_edit_replans_first(ws: Workspace) -> None:
    build_file = ws.root / "m" / "BUILD.aot.yaml"
    build_file.write_text(BUILD.replace("[2, 5]", "[3, 5]"))
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran(), proc.stdout + proc.stderr
    assert "export //m:b" in ws.actions() and "export //m:a" not in ws.actions()


def test_a_new_target_is_built(ws: Workspace) -> None:
    new = "  c: {model: m.tiny:Tiny, inputs: {x: {shape: [1], dtype: float32}}}\n"
    write(ws.root / "n" / "BUILD.aot.yaml", BUILD + new)
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.actions() == ["export //n:c", "compile //n:c"], proc.stdout


def test_test_is_not_a_build(ws: Workspace) -> None:
    proc = ws.run("test", "//m:a")
    assert proc.returncode == 0 and ws.ninja_ran() and ws.actions() == ["verify //m:a"], proc.stdout + proc.stderr


def test_goals_beyond_the_stamped_ones_run_ninja(ws: Workspace) -> None:
    shutil.rmtree(ws.out / "n" / "@a")  # as if never built
    assert ws.run("build", "//m:a").returncode == 0 and ws.ninja_ran()
    time.sleep(noop_stamp.RACY_NS / 1e9)
    assert ws.run("build", "//m:a").returncode == 0 and ws.stamp.exists()  # a stamp for //m:a only
    assert_fast(ws, "build", "//m:a")
    proc = ws.run("build", "//...")  # //n:a's files are as they were when stamped: missing
    assert proc.returncode == 0 and ws.ninja_ran() and ws.actions() == ["export //n:a", "compile //n:a"]


def test_a_failed_build_leaves_no_stamp_and_fails_again(ws: Workspace) -> None:
    (ws.out / "m" / "@b" / "graph.json").unlink()
    failed = ws.run("build", "//...", "-k", NOOP_TEST_FAIL="//m:b")
    assert failed.returncode == 1 and not ws.stamp.exists()
    again = ws.run("build", "//...", NOOP_TEST_FAIL="//m:b")
    assert again.returncode == 1 and ws.ninja_ran() and "export //m:b" in ws.actions()


def test_a_lost_build_log_makes_ninja_run(ws: Workspace) -> None:
    (ws.out / layout.NINJA_BUILDDIR / ".ninja_log").unlink()
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran() and len(ws.actions()) == 8  # ninja reruns what it forgot


def test_a_damaged_stamp_is_not_trusted(ws: Workspace) -> None:
    data = bytearray(ws.stamp.read_bytes())
    data[len(data) // 2] ^= 1
    ws.stamp.write_bytes(bytes(data))
    assert noop_stamp.read(ws.out) is None
    assert ws.run("build", "//...").returncode == 0 and ws.ninja_ran()


def test_a_stamp_is_written_only_after_a_build_that_ran_nothing(ws: Workspace) -> None:
    (ws.out / "m" / "@a" / "manifest.json").unlink()
    assert ws.run("build", "//...").returncode == 0 and ws.actions() and not ws.stamp.exists()
    time.sleep(noop_stamp.RACY_NS / 1e9)
    assert ws.run("build", "//...").returncode == 0 and ws.ninja_ran() and ws.stamp.exists()
    assert_fast(ws, "build", "//...")


def test_a_build_with_the_stamp_off_or_a_test_removes_it(ws: Workspace) -> None:
    assert ws.run("build", "//m:a", AOTBUILD_NOOP_STAMP="0").returncode == 0 and not ws.stamp.exists()
    time.sleep(noop_stamp.RACY_NS / 1e9)
    assert ws.run("build", "//...").returncode == 0 and ws.stamp.exists()
    assert ws.run("test", "//m:a").returncode == 0 and not ws.stamp.exists()


def test_a_toolchain_change_recompiles(ws: Workspace) -> None:
    # A variable inductor reads is part of the toolchain fingerprint: toolchain.json, a compile input, changes.
    proc = ws.run("build", "//...", TORCHINDUCTOR_NOOP_TEST="1")
    assert proc.returncode == 0 and ws.ninja_ran(), proc.stdout + proc.stderr
    assert sorted(a for a in ws.actions() if a.startswith("compile")) == [
        "compile //m:a", "compile //m:b", "compile //n:a", "compile //n:b"]


def test_a_deleted_output_that_no_build_edge_reads_is_rebuilt(ws: Workspace) -> None:
    # manifest.json (the build goal) and reference_io.pt are left to their directory's ctime by the stamp.
    (ws.out / "m" / "@a" / "manifest.json").unlink()
    (ws.out / "n" / "@b" / "reference_io.pt").unlink()
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran(), proc.stdout + proc.stderr
    assert {"compile //m:a", "export //n:b"} <= set(ws.actions())
    assert (ws.out / "m" / "@a" / "manifest.json").exists() and (ws.out / "n" / "@b" / "reference_io.pt").exists()


def test_an_edit_that_changes_no_ninja_file_runs_ninja_once_then_stamps(ws: Workspace) -> None:
    # A tag is no part of any spec: the re-plan rewrites plan.json, so ninja decides (and runs nothing).
    build_file = ws.root / "m" / "BUILD.aot.yaml"
    build_file.write_text(BUILD.replace("[2, 5], dtype: float32}}", "[2, 5], dtype: float32}}, tags: [edited]"))
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran() and not ws.actions() and "4 up to date" in proc.stdout
    assert "edited" in (ws.out / layout.PLAN_FILE).read_text()  # it did re-plan
    # A second after an edit, planning records the BUILD file's settled stat (a build that re-plans does not
    # stamp); the build after that stamps.
    time.sleep(file_state.RACY_NS / 1e9)
    for _ in range(2):
        assert ws.run("build", "//...").returncode == 0 and ws.ninja_ran() and not ws.actions()
    assert ws.stamp.exists()
    assert_fast(ws, "build", "//...")


def test_a_build_file_newer_than_the_plan_s_log_entry_runs_ninja(ws: Workspace) -> None:
    # The generator edge is dirty when a BUILD file is newer than what ninja's log recorded for build.ninja:
    # the stamp must not hide that, though only generator files moved.
    build_file = ws.root / "m" / "BUILD.aot.yaml"
    future = time.time_ns() + 3600 * 10**9
    os.utime(build_file, ns=(future, future))
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran(), proc.stdout + proc.stderr



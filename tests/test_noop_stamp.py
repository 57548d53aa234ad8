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
from array import array
from collections.abc import Callable
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
COPIES = 22  # the tests using `ws` (21); more only cost a wait each
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


def test_a_true_no_op_skips_ninja_and_prints_what_a_no_op_prints(ws: Workspace) -> None:
    report = ws.root / "report.json"
    proc = assert_fast(ws, "build", "//...", "--report", str(report))
    lines = proc.stdout.splitlines()
    assert lines[:2] == [f"ninja: Entering directory `{ws.out}'", "ninja: no work to do."]
    assert lines[2].startswith("aotbuild: 4 targets: 4 up to date in ")
    data = json.loads(report.read_text())
    assert data["actions"] == [] and data["exit_code"] == 0 and data["failures"] == {}
    assert set(data["targets"].values()) == {"up to date"} and len(data["targets"]) == 4
    # Flags that change no command: -k, -j, --explain, --no-workers; and a subset of the stamped goals.
    assert_fast(ws, "build", "//...", "-k", "-j", "1", "--explain", "--no-workers")
    assert "1 up to date" in assert_fast(ws, "build", "//m:a").stdout


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


def test_the_snapshot_sees_every_kind_of_change(tmp_path: Path) -> None:
    """take/holds on a small ninja file of its own: a node that was missing appears, an input's mtime moves,
    a checked directory gets an entry, a ninja file is rewritten; each stops the stamp from holding."""
    out = tmp_path / "out"
    write(out / layout.NINJA_FILE, "rule cc\n  command = true\nbuild gen.o: cc in.c\nbuild all: phony gen.o\n")
    write(out / "in.c", "")
    write(out / "gen.o", "")
    (out / "t").mkdir()
    binary = str(Path(ninja.BIN_DIR) / "ninja")
    time.sleep(noop_stamp.RACY_NS / 1e9)
    taken = noop_stamp.take(out, binary, ["t"])
    assert taken is not None
    snap = taken[0]
    assert snap.missing == ("all",) and set(snap.nodes) == {"gen.o", "in.c"} and snap.dirs == ("t",)
    stamp = (frozenset({"gen.o"}), snap)
    assert noop_stamp.holds(out, binary, ["gen.o"], stamp)
    assert not noop_stamp.holds(out, binary, ["all"], stamp)  # not a stamped goal

    def changed(change: Callable[[], object]) -> bool:
        change()
        return not noop_stamp.holds(out, binary, ["gen.o"], stamp)

    assert changed(lambda: write(out / "all", ""))
    (out / "all").unlink()
    assert noop_stamp.holds(out, binary, ["gen.o"], stamp)
    assert changed(lambda: os.utime(out / "in.c", ns=(0, 10**9)))
    os.utime(out / "in.c", ns=(0, snap_mtime(snap, "in.c")))
    assert noop_stamp.holds(out, binary, ["gen.o"], stamp)
    assert changed(lambda: write(out / "t" / "x", ""))
    (out / "t" / "x").unlink()
    assert not noop_stamp.holds(out, binary, ["gen.o"], stamp)  # a directory's ctime never goes back
    time.sleep(noop_stamp.RACY_NS / 1e9)
    retaken = noop_stamp.take(out, binary, ["t"])
    assert retaken is not None
    stamp = (stamp[0], retaken[0])
    assert noop_stamp.holds(out, binary, ["gen.o"], stamp)
    text = (out / layout.NINJA_FILE).read_text()
    assert changed(lambda: (out / layout.NINJA_FILE).write_text(text))  # same bytes, rewritten: ctime moved


def snap_mtime(snap: noop_stamp.Snapshot, node: str) -> int:
    return array("q", snap.mtimes)[snap.nodes.index(node)]


def test_a_deleted_output_that_no_build_edge_reads_is_rebuilt(ws: Workspace) -> None:
    # manifest.json (the build goal) and reference_io.pt are left to their directory's ctime by the stamp.
    (ws.out / "m" / "@a" / "manifest.json").unlink()
    (ws.out / "n" / "@b" / "reference_io.pt").unlink()
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran(), proc.stdout + proc.stderr
    assert {"compile //m:a", "export //n:b"} <= set(ws.actions())
    assert (ws.out / "m" / "@a" / "manifest.json").exists() and (ws.out / "n" / "@b" / "reference_io.pt").exists()


def test_what_the_stamp_leaves_to_a_directory_is_what_ninja_reads_no_mtime_of(ws: Workspace) -> None:
    """Every file of a target directory that the stamp does not stat: with its mtime moved far back and far
    forward, the real ninja still has nothing to do, and the stamp still holds. What ninja does read the
    mtime of (the spec files, graph.json) is stat-ed."""
    _, snap = noop_stamp.read(ws.out)
    target = ws.out / "m" / "@a"
    checked = {node for node in (*snap.nodes, *snap.missing) if node.startswith("m/@a/")}
    assert {"m/@a/graph.json", "m/@a/export.json", "m/@a/compile.json"} <= checked
    left = sorted(p for p in target.iterdir() if p.is_file() and f"m/@a/{p.name}" not in checked)
    assert {"manifest.json", "reference_io.pt"} <= {p.name for p in left}
    plan = json.loads((ws.out / layout.PLAN_FILE).read_text())
    goals = [t["goals"]["compile"] for p in plan["packages"].values() for t in p["targets"].values()]
    for mtime in (10**9, time.time_ns() + 10**12):
        for path in left:
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
        dry = subprocess.run([str(Path(ninja.BIN_DIR) / "ninja"), "-C", str(ws.out), "-f", layout.NINJA_FILE,
                              "-n", "-d", "explain", *goals], capture_output=True, text=True)
        assert dry.returncode == 0 and "no work to do" in dry.stdout, dry.stdout + dry.stderr
        assert_fast(ws, "build", "//...")


def test_the_snapshot_of_goals_holds_what_ninja_s_decision_for_them_reads(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write(out / layout.NINJA_FILE, "rule cc\n  command = true\n  restat = 1\nrule plain\n  command = true\n"
          "build t/gen.o | t/extra.o: cc in.c\nbuild t/link.out: plain t/gen.o\nbuild t/other.o: cc in2.c\n"
          "build t/own.o: cc in.c\n  restat =\nbuild all: phony t/link.out\n")
    for name in ("in.c", "in2.c", "t/gen.o", "t/extra.o", "t/link.out", "t/other.o", "t/own.o"):
        write(out / name, "")
    binary = str(Path(ninja.BIN_DIR) / "ninja")
    time.sleep(noop_stamp.RACY_NS / 1e9)

    def decisive(goals: list[str], dirs: list[str]) -> set[str] | None:
        taken = noop_stamp.take(out, binary, dirs, goals=goals)
        return None if taken is None else set(taken[0].nodes) | set(taken[0].missing)

    # link.out's rule is no restat rule: its own mtime counts. extra.o, a restat output nothing reads, is
    # proven by t/'s ctime; other.o and in2.c are nothing link.out depends on.
    assert decisive(["t/link.out"], ["t"]) == {"t/link.out", "t/gen.o", "in.c"}
    assert decisive(["t/link.out"], []) == {"t/link.out", "t/gen.o", "t/extra.o", "in.c"}  # t/ unchecked
    assert decisive(["t/own.o"], ["t"]) == {"t/own.o", "in.c"}  # the edge sets restat itself: assume nothing
    assert decisive(["all"], ["t"]) is None and decisive(["in.c"], ["t"]) is None  # no file an edge makes


def test_an_edit_that_changes_no_ninja_file_keeps_the_build_a_no_op(ws: Workspace) -> None:
    # A tag is no part of any spec: the re-plan rewrites plan.json, touches build.ninja and appends the
    # generator's log lines, and nothing else; ninja would find nothing to do, so it is not started.
    build_file = ws.root / "m" / "BUILD.aot.yaml"
    build_file.write_text(BUILD.replace("[2, 5], dtype: float32}}", "[2, 5], dtype: float32}}, tags: [edited]"))
    proc = assert_fast(ws, "build", "//...")
    assert "4 up to date" in proc.stdout
    assert "edited" in (ws.out / layout.PLAN_FILE).read_text()  # it did re-plan
    assert_fast(ws, "build", "//...")


def test_a_build_file_newer_than_the_plan_s_log_entry_runs_ninja(ws: Workspace) -> None:
    # The generator edge is dirty when a BUILD file is newer than what ninja's log recorded for build.ninja:
    # the stamp must not hide that, though only generator files moved.
    build_file = ws.root / "m" / "BUILD.aot.yaml"
    future = time.time_ns() + 3600 * 10**9
    os.utime(build_file, ns=(future, future))
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.ninja_ran(), proc.stdout + proc.stderr


# Manifests that ninja reads one way and a careless reader another, each with a change after which ninja
# has work: the stamp must not hold (it may also refuse to be taken). Found by a review of the stamp.
_R = "builddir = .aotbuild\nrule cp\n  command = cat $in > $out\n"
_RS = _R + "rule rcp\n  command = cat $in > $out\n  restat = 1\n"
_TRICKY = {
    # `#` after a continuation is command text, not a comment: `build mid` is a real edge.
    "comment after a continuation": (
        _R + "rule cpx\n  command = cat $in > $out $\n    #arg\nbuild mid: cp src\nbuild goal: cpx mid\n",
        {"src": "x"}, ["goal"], [], "touch src"),
    # `$`-newline right after the rule name ends the name: `src` is an input.
    "a continuation right after a word": (_R + "build goal: cp$\n    src\n", {"src": "x"}, ["goal"], [],
                                          "touch src"),
    # ninja canonicalizes `gen/x/` to `gen/x`: one node, made by the first edge.
    "a trailing slash": (_R + "build gen/x/: cp src\nbuild goal: cp gen/x\n", {"src": "x", "gen/.keep": ""},
                         ["goal"], [], "touch src"),
    # A deps edge's first output is compared with its deps record, though the edge is restat.
    "a deps edge's first output": (
        _RS + "rule dep\n  command = cat $in > $out; echo \"$out: $in\" > $out.d\n  depfile = $out.d\n"
        "  deps = gcc\n  restat = 1\nbuild d/goal: dep src\n", {"src": "x"}, ["d/goal"], [".", "d"],
        "touch d/goal"),
    # An output that is a link out of its directory: its target goes, the directory does not change.
    "a link leaving its directory": (
        _RS + "rule ln\n  command = ln -sf ../x/elsewhere $out\n  restat = 1\nbuild d/goal: ln src\n",
        {"src": "x", "x/elsewhere": "y"}, ["d/goal"], [".", "d"], "rm x/elsewhere"),
}


@pytest.mark.parametrize("case", sorted(_TRICKY))
def test_a_tricky_manifest_never_hides_work_from_ninja(case: str, tmp_path: Path) -> None:
    manifest, files, goals, dirs, change = _TRICKY[case]
    out = tmp_path / "out"
    write(out / layout.NINJA_FILE, manifest)
    for name, text in files.items():
        write(out / name, text)
    binary = str(Path(ninja.BIN_DIR) / "ninja")
    ninja_cmd = [binary, "-C", str(out), "-f", layout.NINJA_FILE]
    assert subprocess.run([*ninja_cmd, *goals], capture_output=True).returncode == 0
    time.sleep(noop_stamp.RACY_NS / 1e9 + 0.02)
    taken = noop_stamp.take(out, binary, dirs, goals=goals)
    if taken is None:
        return  # refused: no stamp, so ninja runs
    stamp = (frozenset(goals), taken[0])
    assert noop_stamp.holds(out, binary, goals, stamp)
    verb, path = change.split()
    if verb == "touch":
        later = time.time_ns() + 10**10
        os.utime(out / path, ns=(later, later))
    else:
        (out / path).unlink()
    dry = subprocess.run([*ninja_cmd, "-n", *goals], capture_output=True, text=True)
    assert "no work to do" not in dry.stdout  # ninja has work
    assert not noop_stamp.holds(out, binary, goals, stamp)

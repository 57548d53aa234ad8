"""Scoped builds (engine/scoped_run.py): after a re-plan of some packages, ninja runs on their ninja files
alone while the no-op stamp proves the rest; anything the stamp cannot prove runs ninja on everything.

The same stand-in workspace as tests/test_noop_stamp.py (packages m and n, targets a and b each), the real CLI
and the real ninja. Whether a build was scoped is read from the ninja wrapper's log of its arguments.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import ninja
import pytest

from aotbuild import layout
from aotbuild.engine import noop_stamp, scoped_run
from aotbuild.ninja import deps_log, logs
from aotbuild.ninja.nodes import read_deps_log
from aotbuild.planning.plan_index import read_plan
from aotbuild.workspace.labels import Label

from .conftest import write
from .test_noop_stamp import BUILD, Workspace, assert_fast, built, copies, python, ws  # noqa: F401 - fixtures

NINJA = str(Path(ninja.BIN_DIR) / "ninja")
GOALS = {Label(p, t): f"{p}/@{t}/manifest.json" for p in ("m", "n") for t in ("a", "b")}


def ninja_files(w: Workspace) -> list[str]:
    """The manifest (-f) of each ninja started to build (not a dry run)."""
    path = w.logs / "ninja"
    runs = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return [args[args.index("-f") + 1] for args in runs if "-f" in args and "-n" not in args]


def edit(w: Workspace, package: str, shape: str) -> None:
    (w.root / package / "BUILD.aot.yaml").write_text(BUILD.replace("[2, 5]", shape))


def full_ninja_has_nothing_to_do(w: Workspace) -> bool:
    """Whether ninja on every ninja file (what the next unscoped build runs) finds nothing to do for all goals."""
    goals = ["all"]
    proc = subprocess.run([NINJA, "-C", str(w.out), "-f", layout.NINJA_FILE, "-n", *goals], capture_output=True,
                          text=True, check=False)
    return proc.returncode == 0 and "no work to do" in proc.stdout


def test_an_edit_runs_ninja_on_its_package_alone(ws: Workspace) -> None:
    edit(ws, "m", "[3, 5]")
    proc = ws.run("build", "//...")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ninja_files(ws) == [scoped_run.SCOPED_NINJA_FILE]
    assert ws.actions() == ["export //m:b", "compile //m:b"]
    assert "1 compiled, 3 up to date" in proc.stdout
    # The scoped manifest holds m's file only, and the build left ninja nothing to do on all of them.
    assert "subninja .aotbuild/pkgs/m.ninja" in (ws.out / scoped_run.SCOPED_NINJA_FILE).read_text()
    assert "pkgs/n.ninja" not in (ws.out / scoped_run.SCOPED_NINJA_FILE).read_text()
    assert full_ninja_has_nothing_to_do(ws)
    stamp = noop_stamp.read(ws.out)
    assert stamp is not None and stamp[1].excluded == (".aotbuild/pkgs/m.ninja",)


def test_edits_in_a_row_stay_scoped_and_a_build_without_one_stamps_everything_again(ws: Workspace) -> None:
    edit(ws, "m", "[3, 5]")
    assert ws.run("build", "//...").returncode == 0 and ninja_files(ws) == [scoped_run.SCOPED_NINJA_FILE]
    edit(ws, "n", "[4, 5]")
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ninja_files(ws) == [scoped_run.SCOPED_NINJA_FILE], proc.stdout + proc.stderr
    assert ws.actions() == ["export //n:b", "compile //n:b"]
    text = (ws.out / scoped_run.SCOPED_NINJA_FILE).read_text()
    assert "pkgs/m.ninja" in text and "pkgs/n.ninja" in text  # m is still excluded from the stamp
    # No edit: ninja on everything, which finds nothing to do, and stamps it all; then no ninja at all.
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ninja_files(ws) == [layout.NINJA_FILE] and not ws.actions()
    assert noop_stamp.read(ws.out)[1].excluded == ()
    time.sleep(noop_stamp.RACY_NS / 1e9)
    assert_fast(ws, "build", "//...")


def test_an_edit_beside_a_changed_shared_source_runs_ninja_on_everything(ws: Workspace) -> None:
    edit(ws, "m", "[3, 5]")
    source = ws.root / "m" / "tiny.py"  # every export's recorded dependency
    source.write_text("class Tiny: pass  # edited\n")
    os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ninja_files(ws) == [layout.NINJA_FILE], proc.stdout + proc.stderr
    assert sorted(a for a in ws.actions() if a.startswith("export")) == [
        "export //m:a", "export //m:b", "export //n:a", "export //n:b"]


def test_an_edit_beside_a_deleted_output_elsewhere_runs_ninja_on_everything(ws: Workspace) -> None:
    edit(ws, "m", "[3, 5]")
    (ws.out / "n" / "@a" / "graph.json").unlink()
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ninja_files(ws) == [layout.NINJA_FILE], proc.stdout + proc.stderr
    assert "export //n:a" in ws.actions() and (ws.out / "n" / "@a" / "graph.json").exists()


def test_a_deps_log_due_for_recompaction_runs_ninja_on_everything(ws: Workspace) -> None:
    # A recompaction under m's file alone would drop n's recorded deps: ninja must see every file then.
    goals, snap = noop_stamp.read(ws.out)
    noop_stamp.write(ws.out, goals, replace(snap, deps_records=(deps_log.MIN_COMPACTION_RECORDS + 1, 1)),
                     noop_stamp.read_producers(ws.out)[0])
    edit(ws, "m", "[3, 5]")
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ninja_files(ws) == [layout.NINJA_FILE], proc.stdout + proc.stderr
    assert ws.actions() == ["export //m:b", "compile //m:b"]


def test_a_failed_scoped_build_leaves_no_stamp(ws: Workspace) -> None:
    edit(ws, "m", "[3, 5]")
    proc = ws.run("build", "//...", NOOP_TEST_FAIL="//m:b")
    assert proc.returncode == 1 and ninja_files(ws) == [scoped_run.SCOPED_NINJA_FILE]
    assert not ws.stamp.exists()
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ninja_files(ws) == [layout.NINJA_FILE] and ws.actions() == [
        "export //m:b", "compile //m:b"]


def test_the_stamp_is_not_kept_when_ninja_wrote_for_another_package(ws: Workspace) -> None:
    # As if another ninja had run meanwhile: a log line for n's output makes the kept stamp unprovable.
    edit(ws, "m", "[3, 5]")
    proc = ws.run("plan")
    assert proc.returncode == 0, proc.stderr
    stamp = noop_stamp.read(ws.out)
    plan = read_plan(ws.out)
    scope = scoped_run.find(ws.out, plan.ninja, stamp, ("m",), plan.packages, GOALS)
    assert scope is not None and [str(label) for label in scope.labels] == ["//m:a", "//m:b"]
    log = ws.out / layout.NINJA_BUILDDIR / logs.BUILD_LOG
    with open(log, "ab") as f:
        f.write(b"0\t0\t1\tm/@b/graph.json\t1\n")
    assert scoped_run.keep_stamp(ws.out, plan.ninja, scope)
    with open(log, "ab") as f:
        f.write(b"0\t0\t1\tn/@a/graph.json\t1\n")
    assert not scoped_run.keep_stamp(ws.out, plan.ninja, scope)


@pytest.mark.parametrize("outputs", [300, 400])
def test_recompaction_is_predicted_as_ninja_decides_it(outputs: int, tmp_path: Path) -> None:
    # 1,200 deps records: for 300 outputs ninja recompacts (more than 3 per output), for 400 it does not.
    (tmp_path / "build.ninja").write_text("builddir = b\nrule cp\n  command = cp $in $out\nbuild out: cp in\n")
    (tmp_path / "in").write_text("x")
    builddir = tmp_path / "b"
    finished = [logs.Finished((f"o{i % outputs}",), "true", 1, deps=("in",), output_mtimes_ns=(1,))
                for i in range(1200)]
    logs.append(builddir, finished)
    data = (builddir / logs.DEPS_LOG).read_bytes()
    scan = deps_log.scan(data)
    assert scan is not None and len(scan.outputs) == 1200 and read_deps_log(builddir / logs.DEPS_LOG)[1] == (
        1200, outputs)
    predicted = deps_log.recompacts(1200, outputs)
    subprocess.run([NINJA, "-C", str(tmp_path)], check=True, capture_output=True)
    assert ((builddir / logs.DEPS_LOG).stat().st_size < len(data)) == predicted == (outputs == 300)


def test_a_deps_log_tail_is_read_from_where_it_left_off() -> None:
    names = ["a", "bb"]
    head = logs.DEPS_LOG_HEADER + struct.pack("<i", logs.DEPS_LOG_VERSION)
    first = logs._path_record("a", 0) + logs._path_record("bb", 1) + logs._deps_record(0, 5, [1])
    tail = logs._path_record("ccc", 2) + logs._deps_record(2, 6, [0, 1])
    whole = deps_log.scan(head + first + tail)
    assert whole is not None and whole.names == [*names, "ccc"] and whole.outputs == [0, 2]
    rest = deps_log.scan(head + first + tail, len(head + first), None)
    assert rest is not None and rest.names == ["ccc"] and rest.outputs == [2]
    assert deps_log.scan(head + first + tail[:-2]) is None  # a torn record: ninja would truncate
    assert deps_log.scan(head + first + logs._deps_record(0, 5, [7])) is None  # an unknown path id


def test_deps_recorded_after_the_scope_was_found_can_still_send_ninja_to_everything(ws: Workspace) -> None:
    # The cache pass runs after find and may record deps: ninja counts them when it loads the log.
    goals, snap = noop_stamp.read(ws.out)
    noop_stamp.write(ws.out, goals, replace(snap, deps_records=(deps_log.MIN_COMPACTION_RECORDS, 1)),
                     noop_stamp.read_producers(ws.out)[0])
    edit(ws, "m", "[3, 5]")
    assert ws.run("plan").returncode == 0
    plan = read_plan(ws.out)
    scope = scoped_run.find(ws.out, plan.ninja, noop_stamp.read(ws.out), ("m",), plan.packages, GOALS)
    assert scope is not None and scoped_run.still_holds(ws.out, plan.ninja, scope)
    logs.append(ws.out / layout.NINJA_BUILDDIR, [logs.Finished(("m/@b/graph.json",), "x", 1, deps=("../m/tiny.py",),
                                                              output_mtimes_ns=(1,))])
    assert not scoped_run.still_holds(ws.out, plan.ninja, scope)


def test_a_stamp_of_another_shape_is_no_stamp(ws: Workspace) -> None:
    ws.stamp.write_bytes(b"\xff" * 8 + b"an older format, or damage")  # a length past the end of the file
    assert noop_stamp.read(ws.out) is None and noop_stamp.read_producers(ws.out) is None
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ninja_files(ws) == [layout.NINJA_FILE], proc.stdout + proc.stderr


def test_a_package_directory_holding_another_package_s_is_never_in_scope(ws: Workspace, tmp_path: Path) -> None:
    # m/sub is a package inside m's directory, and the root package's is aot-out/ itself: a link put in place
    # of aot-out/m, which a scoped build of the root and m would remove, must send ninja to everything
    # (m/sub's outputs went with the link). Found by a review.
    for package in ("", "m/sub"):
        write(ws.root / package / "BUILD.aot.yaml", BUILD)
    for _ in range(3):
        assert ws.run("build", "//...").returncode == 0
        time.sleep(noop_stamp.RACY_NS / 1e9)
    assert_fast(ws, "build", "//...")
    edit(ws, "", "[3, 5]")
    edit(ws, "m", "[3, 5]")
    shutil.move(ws.out / "m", tmp_path / "m")
    (ws.out / "m").symlink_to(tmp_path / "m")
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ninja_files(ws) == [layout.NINJA_FILE], proc.stdout + proc.stderr
    assert "was a symlink" in proc.stderr
    assert (ws.out / "m" / "sub" / "@a" / "manifest.json").exists() and full_ninja_has_nothing_to_do(ws)


def test_stats_started_before_the_re_plan_never_hide_what_it_wrote(ws: Workspace) -> None:
    # The build starts a child on the stamp's stats before it re-plans (stat_compare.start), and the re-plan
    # rewrites the package's specs file: the child's stat of it is older than the check. Found by a review:
    # a spec-only edit (m.ninja unchanged) was reported up to date. The CLI, with a child for every path.
    forced = ("import sys; from aotbuild.engine import stat_compare as s; s.FORK_AT = 1; "
              "s.start.__defaults__ = (1.0, None); from aotbuild.cli import main; sys.exit(main())")
    (ws.root / "m" / "BUILD.aot.yaml").write_text(BUILD.replace("a: {model: m.tiny:Tiny,",
                                                                "a: {model: m.tiny:Tiny, kwargs: {hidden: 3},"))
    (ws.logs / "actions").unlink(missing_ok=True)
    proc = subprocess.run([str(ws.python), "-c", forced, "build", "//..."], cwd=ws.root, capture_output=True,
                          text=True, env=ws.env)
    assert proc.returncode == 0 and ws.actions() == ["export //m:a", "compile //m:a"], proc.stdout + proc.stderr
    assert full_ninja_has_nothing_to_do(ws)

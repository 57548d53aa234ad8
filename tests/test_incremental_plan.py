"""Incremental planning: an edit re-plans only its package, content (not mtimes) decides, hostile YAML is
refused while the rest of the workspace still plans, and an unchanged workspace is never written to."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from aotbuild import layout

from aotbuild.engine import context as engine

from aotbuild.planning import plan_index, planner
from aotbuild.planning.plan_index import read_plan
from bench.synthetic import generate

from .conftest import aotbuild

OLD = 10**10  # ns: 10 s


def age_sources(root: Path) -> None:
    """Date every BUILD/WORKSPACE file's mtime back, as in a checkout made a while ago (ctimes stay recent)."""
    for path in [root / "WORKSPACE.aot.yaml", *root.rglob("BUILD.aot.yaml")]:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - OLD))


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    """Every file under aot-out/ with (mtime, inode): a rewrite or a replacement shows in one of them."""
    return {str(p.relative_to(out)): (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in out.rglob("*") if p.is_file() and not p.name.endswith(".lock")}


def planned_shapes(out: Path, package: str) -> dict[str, list]:
    """Each target's first input shape, as planned: parsed from the package's specs file (spec_edges)."""
    lines = (out / ".aotbuild/pkgs" / (package.replace("/", "~") + ".specs")).read_text().splitlines()
    shapes = {}
    for line in lines:
        if ") set -- " in line:  # one target's spec files: key) set -- path 'json' path 'json' ...;;
            words = shlex.split(line.partition(") set -- ")[2].removesuffix(";;"))
            for path, text in zip(words[::2], words[1::2]):
                if path.endswith("/export.json"):
                    spec = json.loads(text)
                    shapes[spec["label"]] = spec["inputs"][0]["shape"]
    return shapes


def changed(before: dict, after: dict) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    generate(root, packages=6, targets_per_package=3)
    age_sources(root)
    return root


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The packages whose BUILD file the planner parses."""
    seen: list[str] = []
    real = planner.load_package

    def counting(root, package, config, text=None):
        seen.append(package)
        return real(root, package, config, text)

    monkeypatch.setattr(planner, "load_package", counting)
    return seen


def plan(root: Path):
    return engine.ensure_plan(root, root / layout.OUT_DIR)


def test_an_edit_replans_only_its_package(ws: Path, parsed: list[str]) -> None:
    plan(ws)
    assert len(parsed) == 6
    out = ws / layout.OUT_DIR
    before = snapshot(out)
    parsed.clear()
    build_file = ws / "group0" / "pkg3" / "BUILD.aot.yaml"
    build_file.write_text(build_file.read_text().replace("shape: [2,", "shape: [5,", 1))  # target m0
    new = plan(ws)
    assert parsed == ["group0/pkg3"]
    # A spec's content lives in the package's specs file (spec_edges), not in its ninja file, which is unchanged.
    specs_file = ".aotbuild/pkgs/group0~pkg3.specs"
    assert changed(before, snapshot(out)) == {layout.NINJA_FILE, layout.PLAN_FILE, specs_file}
    shapes = planned_shapes(out, "group0/pkg3")
    assert [s[0] for s in shapes.values()] == [5, 2, 2] and list(shapes)[0] == "//group0/pkg3:m0"
    assert sorted(new.targets) == sorted(read_plan(out).targets) and len(new.targets) == 18
    # And once planned, `query` (the CLI, as users run it) writes nothing at all.
    time.sleep(1.1)  # past file_state's racy window: files changed within a second are hashed every run
    plan(ws)  # records their settled state once
    before = snapshot(out)
    run = aotbuild(["query", "//..."], ws)
    assert run.code == 0 and len(run.stdout.split()) == 18
    assert changed(before, snapshot(out)) == set()


def test_adding_and_removing_a_package_touches_only_the_index(ws: Path, parsed: list[str]) -> None:
    plan(ws)
    out = ws / layout.OUT_DIR
    before = snapshot(out)
    parsed.clear()
    (ws / "extra").mkdir()
    (ws / "extra" / "BUILD.aot.yaml").write_text(
        "targets:\n  t: {model: lib.tiny:Tiny, inputs: {x: {shape: [2, 8], dtype: float32}}}\n")
    assert "//extra:t" in plan(ws).targets
    assert parsed == ["extra"]
    assert {p for p in changed(before, snapshot(out)) if not p.startswith(("extra/", ".aotbuild/pkgs/extra"))} \
        == {layout.NINJA_FILE, layout.PLAN_FILE}
    assert "subninja .aotbuild/pkgs/extra.ninja" in (out / layout.NINJA_FILE).read_text()

    before = snapshot(out)
    parsed.clear()
    (ws / "group0" / "pkg1" / "BUILD.aot.yaml").unlink()
    new = plan(ws)
    assert parsed == []
    assert not any(label.startswith("//group0/pkg1:") for label in new.targets)
    assert changed(before, snapshot(out)) == {layout.NINJA_FILE, layout.PLAN_FILE, ".aotbuild/pkgs/group0~pkg1.ninja",
                                              ".aotbuild/pkgs/group0~pkg1.specs"}
    assert "group0~pkg1" not in (out / layout.NINJA_FILE).read_text()


def test_an_edit_that_keeps_an_older_mtime_is_seen(ws: Path) -> None:
    plan(ws)
    build_file = ws / "group0" / "pkg2" / "BUILD.aot.yaml"
    st = build_file.stat()
    # Same size, same (old) mtime: only the content and the inode's ctime differ.
    build_file.write_text(build_file.read_text().replace("shape: [2,", "shape: [9,", 1))
    os.utime(build_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert build_file.stat().st_size == st.st_size
    plan(ws)
    assert [s[0] for s in planned_shapes(ws / layout.OUT_DIR, "group0/pkg2").values()] == [9, 2, 2]


def test_a_touched_but_unchanged_file_is_not_parsed_again(ws: Path, parsed: list[str]) -> None:
    plan(ws)
    out = ws / layout.OUT_DIR
    before = snapshot(out)
    parsed.clear()
    os.utime(ws / "group0" / "pkg4" / "BUILD.aot.yaml")
    plan(ws)
    assert parsed == []
    # The index learns the new stat; build.ninja gets a fresh mtime so ninja's generator edge stays done.
    assert changed(before, snapshot(out)) == {layout.NINJA_FILE, layout.PLAN_FILE}


BOMB = "targets:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  {n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))


def test_an_alias_bomb_and_an_oversized_file_are_refused_while_the_rest_plans(ws: Path) -> None:
    (ws / "bomb").mkdir()
    (ws / "bomb" / "BUILD.aot.yaml").write_text(BOMB)  # 9**9 strings once expanded
    (ws / "huge").mkdir()
    (ws / "huge" / "BUILD.aot.yaml").write_text("targets: {}\n" + "# padding\n" * 110_000)
    started = time.monotonic()
    run = aotbuild(["query", "//..."], ws)  # the old planner spent minutes and gigabytes on the bomb
    assert time.monotonic() - started < 30
    assert run.code == 2
    assert "bomb/BUILD.aot.yaml:2: YAML aliases expand to more than 10,000 values" in run.stderr
    assert "huge/BUILD.aot.yaml: file is 1,100,012 bytes, over the limit of 1,048,576 bytes" in run.stderr
    assert len(run.stdout.split()) == 18  # every good target is still listed
    good = aotbuild(["query", "//group0/..."], ws)
    assert good.code == 0 and len(good.stdout.split()) == 18
    plan_ = read_plan(ws / layout.OUT_DIR)
    assert plan_ is not None
    # The good targets are in the ninja files and buildable as far as ninja can tell (a dry run).
    goal = plan_.targets["//group0/pkg0:m0"]["goals"]["compile"]
    dry = subprocess.run([plan_.ninja, "-C", str(ws / layout.OUT_DIR), "-f", layout.NINJA_FILE, "-n", goal], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr


def test_fixing_a_broken_package_replans_it(ws: Path, parsed: list[str]) -> None:
    (ws / "bomb").mkdir()
    (ws / "bomb" / "BUILD.aot.yaml").write_text(BOMB)
    assert "bomb" in plan(ws).broken
    parsed.clear()
    (ws / "bomb" / "BUILD.aot.yaml").write_text(
        "targets:\n  t: {model: lib.tiny:Tiny, inputs: {x: {shape: [2, 8], dtype: float32}}}\n")
    new = plan(ws)
    assert parsed == ["bomb"] and "bomb" not in new.broken and "//bomb:t" in new.targets


def test_a_workspace_file_change_replans_everything(ws: Path, parsed: list[str]) -> None:
    plan(ws)
    parsed.clear()
    (ws / "WORKSPACE.aot.yaml").write_text("defaults: {seed: 3}\n")
    plan(ws)
    assert len(parsed) == 6
    assert '"seed":3' in (ws / layout.OUT_DIR / ".aotbuild/pkgs/group0~pkg5.specs").read_text()


def test_an_index_from_an_older_aotbuild_is_planned_over(ws: Path, parsed: list[str]) -> None:
    out = ws / layout.OUT_DIR
    (out / ".aotbuild").mkdir(parents=True)
    (out / layout.PLAN_FILE).write_text('{"version": "0.1.0", "build_files": [], "targets": {}}')
    (out / layout.NINJA_FILE).write_text("# a monolithic build.ninja of the previous planner\n")
    assert len(plan(ws).targets) == 18 and len(parsed) == 6
    assert "subninja .aotbuild/pkgs/group0~pkg0.ninja" in (out / layout.NINJA_FILE).read_text()


def test_a_replan_encodes_only_the_entries_it_changed(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # plan.json has a line per package; a re-plan takes the unchanged ones as read and encodes the rest. The
    # file must be exactly what encoding the whole new plan gives.
    plan(ws)
    out = ws / layout.OUT_DIR
    for package, shape in (("group0/pkg3", "shape: [5,"), ("group0/pkg1", "shape: [7,")):
        build_file = ws / package / "BUILD.aot.yaml"
        build_file.write_text(build_file.read_text().replace("shape: [2,", shape, 1))
        encoded: list[plan_index.PackageEntry] = []
        real = plan_index.PackageEntry.to_json

        def counting(entry: plan_index.PackageEntry) -> dict:
            encoded.append(entry)
            return real(entry)

        monkeypatch.setattr(plan_index.PackageEntry, "to_json", counting)
        new = plan(ws)
        monkeypatch.setattr(plan_index.PackageEntry, "to_json", real)
        assert len(encoded) == 1  # the edited package's entry alone
        data = (out / layout.PLAN_FILE).read_bytes()
        assert data == plan_index.encode_plan(new)  # the same bytes as encoding every entry afresh
        assert read_plan(out) == new

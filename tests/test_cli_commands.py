"""The commands that need no torch, run in-process as a user types them: --help, clean, plan, cache stats and
cache gc (the compiler temp space included), and the text they print: counted nouns, sizes, the build summary."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from aotbuild import cli, layout
from aotbuild.actions import staging
from aotbuild.cache import compiler_temp
from aotbuild.cache.access import CacheAccess
from aotbuild.cache.local import LocalStore
from aotbuild.engine.build import LAST_BUILD_FILE, record_cache_use
from aotbuild.reports.outcomes import BuildResult, summary_line
from aotbuild.text import human_bytes, plural, table

from .conftest import aotbuild, torch_tripwire, write

DAY = 86400


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    write(root / "WORKSPACE.aot.yaml", "")
    write(root / "m" / "BUILD.aot.yaml", "targets:\n  a: {model: m.f:F, inputs: {x: {shape: [2], dtype: float32}}}\n")
    monkeypatch.chdir(root / "m")  # commands find the workspace from any directory inside it
    monkeypatch.setenv("AOTBUILD_CACHE_DIR", str(tmp_path / "cache"))
    # gc looks for running compiles in the staging dir; this machine's real one belongs to other builds.
    monkeypatch.setattr(staging, "BASE", tmp_path / "staging")
    monkeypatch.setattr(compiler_temp, "BASE", staging.BASE)  # where `cache` commands look for it
    return root


def main(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# -- --help


def test_help_opens_with_what_aotbuild_does_for_its_user(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    description = text.split("\n\n")[1]
    assert description.startswith("Build PyTorch models ahead of time"), text
    assert cli.__doc__.splitlines()[0] not in text  # not the module's docstring, written for developers
    assert "examples:\n  aotbuild build //..." in text and "commands:" in text


# -- counted nouns, sizes, tables


@pytest.mark.parametrize("count, noun, text", [
    (0, "target", "0 targets"), (1, "target", "1 target"), (2, "target", "2 targets"),
    (1, "entry", "1 entry"), (3, "entry", "3 entries"), (1, "miss", "1 miss"), (2, "miss", "2 misses"),
    (1, "corrupt entry", "1 corrupt entry"), (2, "corrupt entry", "2 corrupt entries"),
])
def test_plural(count: int, noun: str, text: str) -> None:
    assert plural(count, noun) == text


@pytest.mark.parametrize("size, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 << 20, "5.0 MiB"),
                                        (3 << 30, "3.0 GiB"), (2 << 40, "2.0 TiB")])
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


def test_table_aligns_names_left_and_numbers_right() -> None:
    assert table(("", "n"), [("a", "1"), ("longer", "100")]) == ["          n", "a         1", "longer  100"]


# -- the build summary


def _result(outcomes: dict[str, str], errors: list[str] = (), broken_files: dict[str, str] | None = None) -> BuildResult:
    plan = SimpleNamespace(broken=broken_files or {})
    return BuildResult(outcomes=outcomes, config_errors=list(errors), seconds=0.5,
                       context=SimpleNamespace(plan=plan))


def test_summary_says_1_target() -> None:
    assert summary_line(_result({"//m:a": "compiled"})) == "aotbuild: 1 target: 1 compiled in 0.50s"
    assert summary_line(_result({})) == "aotbuild: 0 targets: nothing to do in 0.50s"


def test_summary_with_keep_going_counts_targets_whose_build_entry_is_broken() -> None:
    # build //... -k: two targets built, one failed, one not built because its BUILD entry has an error.
    result = _result({"//m:a": "compiled", "//m:b": "up to date", "//n:c": "failed"},
                     ["n/BUILD.aot.yaml:5, target 'd', field 'colour': unknown key 'colour'"])
    assert summary_line(result) == ("aotbuild: 4 targets: 1 failed, 1 compiled, 1 up to date, "
                                     "1 not built (error in its BUILD file) in 0.50s")


def test_summary_counts_an_unusable_build_file_as_a_file_not_as_targets() -> None:
    error = "p/BUILD.aot.yaml:3: malformed YAML"
    result = _result({"//m:a": "compiled"}, [error, "q/BUILD.aot.yaml:2, target 'x': bad",
                                             "q/BUILD.aot.yaml:4, target 'y': bad"], {"p": error})
    assert summary_line(result) == ("aotbuild: 3 targets: 1 compiled, 2 not built (error in their BUILD file); "
                                    "1 BUILD file unusable in 0.50s")


# -- clean and plan


def test_clean_removes_aot_out_and_keeps_the_cache(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write(ws / "aot-out" / "m" / "@a" / "manifest.json", "{}")
    write(tmp_path / "cache" / "v1" / "keep", "x")
    code, out = main(capsys, "clean")
    assert code == 0 and out == f"aotbuild: removed {ws / 'aot-out'}\n"
    assert not (ws / "aot-out").exists() and (tmp_path / "cache" / "v1" / "keep").exists()
    assert main(capsys, "clean")[0] == 0  # nothing left to remove is no error


def test_plan_writes_build_ninja_and_the_index_and_nothing_when_unchanged(ws: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    out = ws / "aot-out"
    assert main(capsys, "plan") == (0, "")
    files = [out / layout.NINJA_FILE, out / layout.PLAN_FILE, out / layout.TOOLCHAIN_FILE, out / ".aotbuild/pkgs/m.ninja"]
    assert all(f.is_file() for f in files)
    assert "build m/@a/manifest.json: aot_compile" in files[3].read_text()
    before = [f.stat().st_mtime_ns for f in files]
    assert main(capsys, "plan") == (0, "")
    assert [f.stat().st_mtime_ns for f in files] == before
    write(ws / "m" / "BUILD.aot.yaml", "targets:\n  b: {model: m.f:F, inputs: {x: {shape: [2], dtype: float32}}}\n")
    assert main(capsys, "plan") == (0, "")
    assert "build m/@b/manifest.json: aot_compile" in files[3].read_text() and "@a" not in files[3].read_text()


def test_plan_imports_no_torch(ws: Path, tmp_path: Path) -> None:
    env, marker = torch_tripwire(tmp_path)
    run = aotbuild(["plan"], ws, env)
    assert run.code == 0 and not marker.exists(), run.output
    assert (ws / "aot-out" / layout.NINJA_FILE).is_file()


# -- cache stats and gc


def _fill(cache: Path) -> LocalStore:
    store = LocalStore(cache)
    blob = store.put_bytes(b"x" * 3000)
    store.put_action("ab" * 32, {"blobs": [blob]})
    return store


def _compiler_temp(cache: Path, age_s: float = 0.0, size: int = 2048) -> Path:
    """What compiles leave in their $TMPDIR (staging.BASE/tmp, whatever the cache): precompiled headers under
    torchinductor_<user>/."""
    headers = staging.BASE / "tmp" / "torchinductor_me" / "precompiled_headers" / "abc.h.gch"
    write(headers, "h" * size)
    then = time.time() - age_s
    for path in [headers, *headers.parents][:4]:
        os.utime(path, (then, then))
    return headers


def test_cache_stats_prints_a_table(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    store = _fill(cache)
    _compiler_temp(cache, size=2 << 20)
    ac = store.stats()["ac_bytes"]
    write(ws / "aot-out" / LAST_BUILD_FILE, json.dumps({"hits": 1, "misses": 2, "actions": 3, "corrupt": [],
                                                       "remote": None, "outcomes": {"compiled": 1, "up to date": 2},
                                                       "cache": str(cache)}))
    code, out = main(capsys, "cache", "stats")
    assert code == 0
    total = human_bytes(3000 + ac + (2 << 20))
    assert out.splitlines() == [
        f"cache {cache}",
        f"                            entries{'size'.rjust(len(total) + 2)}",
        f"artifacts, programs (cas/)        1{'2.9 KiB'.rjust(len(total) + 2)}",
        f"action results (ac/)              1{human_bytes(ac).rjust(len(total) + 2)}",
        f"compiler temp space               -{'2.0 MiB'.rjust(len(total) + 2)}",
        f"total                             2  {total}",
        "",
        "last build: 1 hit, 2 misses, 3 actions, 0 corrupt entries",
        "  targets: 2 up to date, 1 compiled",
    ]


def test_cache_stats_shows_this_workspaces_last_build_not_anothers(ws: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    _fill(cache)
    other = tmp_path / "other" / "aot-out"  # another workspace on the same cache builds last
    event = {"hits": 0, "misses": 2, "corrupt": [], "remote": None}
    record_cache_use(other, cache, BuildResult(outcomes={"//x:y": "compiled"}, events=[event]))
    code, out = main(capsys, "cache", "stats")
    assert code == 0 and "last build" not in out
    record_cache_use(ws / "aot-out", tmp_path / "elsewhere", BuildResult(outcomes={"//m:a": "compiled"},
                                                                        events=[event]))
    assert "last build" not in main(capsys, "cache", "stats")[1]  # it used another cache
    record_cache_use(ws / "aot-out", cache, BuildResult(outcomes={"//m:a": "compiled"}, events=[event]))
    assert "last build: 0 hits, 2 misses, 1 action" in main(capsys, "cache", "stats")[1]


def test_gc_says_when_the_size_budget_could_not_be_met(ws: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    _compiler_temp(cache, size=10_000)
    with CacheAccess.open(cache, ws / "aot-out").lease():  # a build is running: the temp space stays
        code, out = main(capsys, "cache", "gc", "--max-size", "1K")
    assert code == 0
    assert f"warning: the cache still holds {human_bytes(10_000)}" in out and "--max-size 1K budget" in out
    code, out = main(capsys, "cache", "gc", "--max-size", "1K")
    assert code == 0 and "warning" not in out


def test_gc_reclaims_compiler_temp_space_unused_for_longer_than_max_age(ws: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    _fill(cache)
    headers = _compiler_temp(cache, age_s=2 * DAY)
    code, out = main(capsys, "cache", "gc", "--max-age", "1d")
    assert code == 0 and out == "aotbuild: evicted 0 entries and 2.0 KiB of compiler temp space\n"
    assert not headers.exists() and (staging.BASE / "tmp").is_dir()  # emptied, kept: a waiting compile points there
    assert LocalStore(cache).stats()["cas_entries"] == 1  # the entries were used today


def test_gc_keeps_compiler_temp_space_used_recently(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    headers = _compiler_temp(cache, age_s=2 * DAY)
    write(staging.BASE / "tmp" / "cc1234.s", "")  # a compile's temp file today: the space is in use
    code, out = main(capsys, "cache", "gc", "--max-age", "1d")
    assert code == 0 and out == "aotbuild: evicted 0 entries\n" and headers.exists()


def test_gc_reclaims_compiler_temp_space_before_any_entry_to_meet_the_size_budget(
        ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    store = _fill(cache)
    entries = store.stats()["cas_bytes"] + store.stats()["ac_bytes"]
    headers = _compiler_temp(cache, size=10_000)
    code, out = main(capsys, "cache", "gc", "--max-size", str(entries + 5_000))  # room for the entries alone
    assert code == 0 and out == f"aotbuild: evicted 0 entries and {human_bytes(10_000)} of compiler temp space\n"
    assert not headers.exists() and LocalStore(cache).stats()["cas_entries"] == 1
    code, out = main(capsys, "cache", "gc", "--max-size", "0")
    assert out == "aotbuild: evicted 2 entries\n"


def test_gc_never_reclaims_compiler_temp_space_a_build_or_compile_is_using(ws: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    headers = _compiler_temp(cache, age_s=2 * DAY)
    access = CacheAccess.open(cache, ws / "aot-out")
    with access.lease():  # a build is running
        code, out = main(capsys, "cache", "gc", "--max-age", "1d")
    assert out == ("aotbuild: evicted 0 entries; kept the compiler temp space, in use by a running build or "
                   "compile\n") and headers.exists()
    fd = os.open(staging.temp_lock_path(), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a compile is staging (under plain ninja: no lease)
        main(capsys, "cache", "gc", "--max-age", "1d")
        assert headers.exists()
    finally:
        os.close(fd)
    main(capsys, "cache", "gc", "--max-age", "1d")
    assert not headers.exists()


def test_cache_verify_counts_in_words(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    digest = LocalStore(cache).put_bytes(b"precious")
    blob = cache / "v1" / "cas" / digest[:2] / digest
    blob.chmod(0o644)
    blob.write_bytes(b"damaged")
    code, out = main(capsys, "cache", "verify")
    assert code == 1 and out.splitlines()[-1] == (f"aotbuild: cache verified, 1 corrupt entry removed; 0 artifacts in "
                                                  f"{ws / 'aot-out'} differ from their manifests")


def test_a_tests_summary_counts_the_targets_it_verified_as_verified() -> None:
    from aotbuild.commands.build import as_test_summary

    result = BuildResult(outcomes={"//m:a": "artifact-cache hit", "//m:b": "up to date"}, events=[
        {"label": "//m:a", "action": "compile", "outcome": "artifact-cache hit"},
        {"label": "//m:a", "action": "verify", "outcome": "verified"}])
    assert summary_line(as_test_summary(result)).startswith("aotbuild: 2 targets: 1 verified, 1 up to date in ")
    assert result.outcomes["//m:a"] == "artifact-cache hit"  # the report still says how the artifact came

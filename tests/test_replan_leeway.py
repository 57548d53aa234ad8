"""engine/replan_leeway.py: which changes to ninja's log a re-plan may make under a no-op stamp."""

from __future__ import annotations

import os
from pathlib import Path

from aotbuild.engine import replan_leeway

HEADER = b"# ninja log v7\n"
STAMPED = HEADER + b"0\t5\t100\tm/@a/graph.json\tabc\n0\t0\t200\t.aotbuild/build.ninja\t0\n"
OUTPUTS = (".aotbuild/build.ninja", ".aotbuild/plan.json")


def test_only_whole_generator_lines_may_follow_the_stamped_log() -> None:
    prefix = replan_leeway.prefix_of(STAMPED)
    ok = STAMPED + b"0\t0\t300\t.aotbuild/build.ninja\t0\n0\t0\t300\t.aotbuild/plan.json\t0\n"
    assert replan_leeway.only_generator_lines_appended(ok, prefix, OUTPUTS)
    assert replan_leeway.only_generator_lines_appended(STAMPED, prefix, OUTPUTS)  # nothing appended
    # Another edge's line (an action ran), a torn line, a changed stamped part, a shorter log: no.
    assert not replan_leeway.only_generator_lines_appended(STAMPED + b"0\t5\t300\tm/@a/graph.json\tabd\n",
                                                           prefix, OUTPUTS)
    assert not replan_leeway.only_generator_lines_appended(STAMPED + b"0\t0\t300\t.aotbuild/build.ni", prefix,
                                                           OUTPUTS)
    assert not replan_leeway.only_generator_lines_appended(STAMPED.replace(b"abc", b"abd"), prefix, OUTPUTS)
    assert not replan_leeway.only_generator_lines_appended(STAMPED[:-1], prefix, OUTPUTS)
    assert not replan_leeway.only_generator_lines_appended(ok, (0, 0), OUTPUTS)  # no log when stamped


def test_the_generator_edge_is_current_only_if_each_output_s_last_entry_is_no_older_than_every_input(
        tmp_path: Path) -> None:
    for name in ("BUILD", ".aotbuild/build.ninja", ".aotbuild/plan.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    os.utime(tmp_path / "BUILD", ns=(250, 250))
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        log = STAMPED + b"0\t0\t300\t.aotbuild/build.ninja\t0\n0\t0\t300\t.aotbuild/plan.json\t0\n"
        assert replan_leeway.generator_current(log, OUTPUTS, ["BUILD"], fd)
        os.utime(tmp_path / "BUILD", ns=(301, 301))  # newer than what the log records
        assert not replan_leeway.generator_current(log, OUTPUTS, ["BUILD"], fd)
        os.utime(tmp_path / "BUILD", ns=(250, 250))
        assert not replan_leeway.generator_current(STAMPED, OUTPUTS, ["BUILD"], fd)  # build.ninja's entry: 200
        no_plan = STAMPED + b"0\t0\t300\t.aotbuild/build.ninja\t0\n"
        assert not replan_leeway.generator_current(no_plan, OUTPUTS, ["BUILD"], fd)  # plan.json: no entry
    finally:
        os.close(fd)

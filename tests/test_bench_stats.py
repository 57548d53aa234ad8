"""The latency statistics of `aotbuild bench`: median and spread of known samples, not of whatever a clock gave."""

from __future__ import annotations

import pytest

from aotbuild.deploy import bench


@pytest.mark.parametrize("durations_ms, median, p10, p90, low", [
    ([5, 1, 3, 2, 4], 3, 1, 5, 1),  # unsorted on purpose: the statistics must not depend on call order
    ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110], 60, 20, 100, 10),
    ([7], 7, 7, 7, 7),
    ([4, 1, 2, 3], 2.5, 1, 4, 1),
])
def test_measure_reports_median_spread_and_min_of_the_timed_calls(monkeypatch: pytest.MonkeyPatch, durations_ms,
                                                                  median, p10, p90, low) -> None:
    clock = iter([t for d in durations_ms for t in (0, int(d * 1e6))])
    monkeypatch.setattr(bench.time, "perf_counter_ns", lambda: next(clock))
    calls = []
    stats = bench._measure(lambda: calls.append(1), warmup=2, repeats=len(durations_ms))
    assert stats == {"median_ms": median, "p10_ms": p10, "p90_ms": p90, "min_ms": low,
                     "spread": (p90 - p10) / median}
    assert len(calls) == 2 + len(durations_ms)  # warm-up calls run, untimed

"""Where an action's seconds went: our own phases timed directly, inductor's read from its own timers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Inductor's own timers (torch._dynamo.utils.compilation_time_metrics, seconds per call) -> our phase names.
# Nested: C++ compile includes the precompiled header, which is reported apart and subtracted.
INDUCTOR_TIMERS = (("lower", "GraphLowering.run"), ("codegen", "GraphLowering.codegen"),
                   ("precompiled_header", "aoti_precompile_header"), ("cxx_compile_link", "AotCodeCompiler.compile"))


class Phases:
    """Named durations of one action, in the order they first ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - started)

    def split_inductor(self, torch: Any, total: str) -> None:
        """Split the phase `total` (one aoti_compile_and_package call, in a process that ran no other) into
        inductor's own steps; what they do not cover (tracing, packaging) stays under `total`."""
        metrics = getattr(getattr(torch._dynamo, "utils", None), "compilation_time_metrics", None) or {}
        found = {ours: sum(metrics.get(theirs, ())) for ours, theirs in INDUCTOR_TIMERS}
        if not any(found.values()):
            return  # another torch's names: the total alone is still true
        found["cxx_compile_link"] = max(0.0, found["cxx_compile_link"] - found["precompiled_header"])
        covered = sum(found.values())
        remaining = self.seconds.get(total, 0.0) - covered
        for name, seconds in found.items():
            self.add(name, seconds)
        self.seconds[total] = max(0.0, remaining)

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in self.seconds.items()}

    def line(self) -> str:
        return "phases: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.seconds.items())

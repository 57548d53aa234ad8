"""What every action shares: its context, phase timings, event reporting, and error handling."""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aotbuild import layout
from aotbuild.cache.layered import LayeredStore, open_layered
from aotbuild.cache.local import LocalStore, OverlayStore
from aotbuild.errors import ActionError, AotbuildError, InfraError, Location, NeedsGpuError, StepError, TargetError
from aotbuild.hashing import canonical_json
from aotbuild.workspace import settings


# Inductor's own timers (torch._dynamo.utils.compilation_time_metrics, seconds per call) -> our phase names.
# Nested: C++ compile includes the precompiled header, which is reported apart and subtracted.
INDUCTOR_TIMERS = (("lower", "GraphLowering.run"), ("codegen", "GraphLowering.codegen"),
                   ("precompiled_header", "aoti_precompile_header"), ("cxx_compile_link", "AotCodeCompiler.compile"))


@dataclass
class Phases:
    """Named durations of one action, in the order they first ran."""

    seconds: dict[str, float] = field(default_factory=dict)

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
        self.seconds[total] = max(0.0, self.seconds.get(total, 0.0) - sum(found.values()))
        for name, seconds in found.items():
            self.add(name, seconds)

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in self.seconds.items()}

    def line(self) -> str:
        return "phases: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.seconds.items())


def location(spec: dict[str, Any], fld: str | None = None) -> Location:
    """Where the target was declared, from the `where` its spec files carry, for errors raised in actions."""
    where = spec.get("where") or {}
    return Location(where.get("file"), where.get("line"), spec["label"], fld)


@dataclass
class ActionContext:
    """One action's view of the world. Actions run with aot-out/ as their working directory."""

    action: str
    out_dir: Path
    root: Path
    target_dir: Path
    spec: dict[str, Any]
    store: LayeredStore
    events: Path | None
    started: float
    durable: bool = True  # False: outputs are not fsynced one by one; engine/cache_hits.py syncs them at once
    phases: Phases = field(default_factory=Phases)
    terminal: int = 2  # where the user sees warnings: stderr as the action started, before it went to the log
    extra: dict[str, Any] = field(default_factory=dict)  # more for its event (where an executor ran it)

    def warn(self, text: str) -> None:
        """A warning on the terminal (ninja shows it after the edge) and in the log."""
        os.write(self.terminal, f"warning: {text}\n".encode())
        if self.terminal != 2:
            print(f"warning: {text}", file=sys.stderr, flush=True)

    @property
    def label(self) -> str:
        return self.spec["label"]

    @property
    def log(self) -> Path:
        """Where this action's output (Python's and native code's) goes: <target>/<action>.log."""
        return self.target_dir / f"{self.action}.log"

    def read_json(self, name: str) -> dict[str, Any]:
        return json.loads((self.target_dir / name).read_text())

    def toolchain(self) -> dict[str, Any]:
        return json.loads((self.out_dir / layout.TOOLCHAIN_FILE).read_text())

    def check_toolchain(self, torch_version: str) -> None:
        """Before storing anything computed with torch: the keys must describe the torch that computed it."""
        expected = self.toolchain()["export"]
        running = {"torch": torch_version, "python": ".".join(map(str, sys.version_info[:3]))}
        if running != {k: expected[k] for k in running}:
            raise InfraError(f"this action runs torch {running['torch']} on Python {running['python']}, but "
                             f"toolchain.json says torch {expected['torch']} on Python {expected['python']}; "
                             "run `aotbuild build` (not plain ninja) to refresh it")

    def require_gpu(self, device: str) -> None:
        """Before computing anything on `device`: a CUDA one must be here, of the arch the keys name."""
        if not device.startswith("cuda"):
            return
        toolchain = self.toolchain()
        here = toolchain["host"]["gpu_arch"]
        if here is None:
            raise NeedsGpuError(self.label, self.action)
        if toolchain["cuda"]["gpu_arch"] != here:
            raise InfraError(f"{settings.GPU_ARCH_VAR}={toolchain['cuda']['gpu_arch']} but this machine's GPUs are "
                             f"{here}: its CUDA artifacts would be keyed for another arch; unset the variable here")

    def report(self, outcome: str, **extra: Any) -> None:
        """Append one event line for the CLI's summary (O_APPEND keeps concurrent small writes whole)."""
        if self.events is None:
            return
        record = {"label": self.label, "action": self.action, "outcome": outcome,
                  "seconds": round(time.monotonic() - self.started, 3),
                  "hits": self.store.counters.hits, "misses": self.store.counters.misses,
                  "corrupt": self.store.counters.corrupt, "remote": self.store.remote_report(),
                  "phases": self.phases.rounded(), "worker": settings.worker_pid(os.environ), **self.extra, **extra}
        with open(self.events, "ab", buffering=0) as events:  # one write() each
            events.write(canonical_json(record) + b"\n")


def open_store(env: Mapping[str, str], out_dir: Path) -> LayeredStore:
    """The cache as the CLI found it: local (or read-only behind an overlay in aot-out/), then any remote."""
    from aotbuild.cache.access import overlay_dir, recorded_root

    root = recorded_root(env, out_dir)
    local = OverlayStore(overlay_dir(out_dir), root) if settings.cache_read_only(env) else LocalStore(root)
    return open_layered(env, local)


def make_context(action: str, spec_path: str) -> ActionContext:
    env = settings.environ()
    out_dir = Path.cwd()
    spec_file = out_dir / spec_path
    # Never write through a symlink out of aot-out/ (the CLI removes such links; plain ninja does not).
    real = os.path.realpath(spec_file.parent)
    if real != os.path.join(os.path.realpath(out_dir), os.path.relpath(spec_file.parent, out_dir)):
        raise InfraError(f"{spec_file.parent} leads out of aot-out/ through a symlink (to {real}); "
                         "aotbuild does not write through it: remove the link, or run `aotbuild build`")
    return ActionContext(action=action, out_dir=out_dir, root=out_dir.parent, target_dir=spec_file.parent,
                         spec=json.loads(spec_file.read_text()),
                         store=open_store(env, out_dir), events=settings.events_file(env),
                         started=time.monotonic())


def run_action(action: str, body: Callable[[ActionContext], str]) -> None:
    """Entry point shared by actions: `body` returns its outcome. Everything torch and the compiler print goes
    to <target>/<action>.log; a failure is one clear message naming that log."""
    if len(sys.argv) != 2:
        sys.exit(f"usage: python -m aotbuild.actions.{action} <target-dir>/<spec>.json")
    try:
        ctx = make_context(action, sys.argv[1])
    except AotbuildError as e:  # nowhere safe to log to: say it on the terminal
        sys.exit(f"error: {action} {sys.argv[1]}: {e}")
    ctx.phases.add("startup", _seconds_since_process_start())
    log = ctx.log
    ctx.terminal = terminal = _redirect_output(log)
    faulthandler.enable()  # a crash in native code (a segfault in a runtime) still leaves a traceback in the log
    try:
        outcome = body(ctx)
    except Exception as e:  # noqa: BLE001 - every failure must reach the user, with its log
        print(ctx.phases.line(), flush=True)
        traceback.print_exc()
        sys.stderr.flush()
        message = (e.message if isinstance(e, ActionError) else str(e) if isinstance(e, AotbuildError)
                   else f"{type(e).__name__}: {e}")
        first = message.strip().splitlines()[0] if message.strip() else type(e).__name__
        code = e.exit_code if isinstance(e, AotbuildError) else 1
        # Long enough for verify's one-line summary of several failed checks.
        ctx.report("failed", message=first[:2500], log=str(log), exit_code=code,
                   in_build_file=isinstance(e, TargetError))
        step = e.step if isinstance(e, StepError) else action
        os.write(terminal, f"error: {ctx.label}: {step} failed: {message.strip()}\n  full log: {log}\n".encode())
        sys.exit(code)
    print(ctx.phases.line(), flush=True)
    ctx.report(outcome)


def _seconds_since_process_start() -> float:
    """From this process's creation (or fork, in a warm worker) to now; Linux /proc, 0 elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        ticks = int(stat[stat.rfind(b")") + 2:].split()[19])  # field 22, starttime
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _redirect_output(log: Path) -> int:
    """Point fds 1 and 2 (Python's and native code's output alike) at `log`; returns a dup of the old stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.dup(2)
    log.unlink(missing_ok=True)  # a fresh file: O_TRUNC would follow a symlink planted in its place
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return terminal

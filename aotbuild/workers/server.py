"""The warm worker: a fork server that imports torch and prepares inductor once, then forks a child per action."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from aotbuild.fsutil import replace_unsynced, unlink_quiet
from aotbuild.workers.child import run_child, send
from aotbuild.workers.client import WARM_FAILED_SUFFIX

IDLE_VAR = "AOTBUILD_WORKER_IDLE_S"
DEFAULT_IDLE_S = 10.0
MAX_REQUEST = 1 << 24
# Imported before forking; whatever an action imports beyond these it imports itself (correct, only slower).
PRELOAD = (
    "torch", "torch.export", "torch._dynamo", "torch._functorch.aot_autograd", "torch._inductor",
    "torch._inductor.compile_fx", "torch._inductor.lowering", "torch._inductor.graph", "torch._inductor.scheduler",
    "torch._inductor.codecache", "torch._inductor.cpp_builder", "torch._inductor.codegen.cpp",
    "torch._inductor.codegen.cpp_wrapper_cpu", "torch._inductor.package", "torch._export.serde.serialize",
    "torch.fx.experimental.symbolic_shapes", "torch.utils._pytree",
    # Not the action modules themselves: each runs as __main__, as `python -m` would run it.
    "aotbuild.actions.runtime", "aotbuild.actions.dependencies", "aotbuild.actions.reference_io",
    "aotbuild.actions.example_inputs", "aotbuild.actions.model_loader", "aotbuild.actions.interface",
    "aotbuild.actions.graph_hash", "aotbuild.actions.signature_check", "aotbuild.actions.isa_probe",
)


def _bind(path: str) -> socket.socket:
    """Listen at `path`; the client that started us holds the start lock, so a file there is a dead server's."""
    unlink_quiet(Path(path))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(512)
    return sock


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    """A byte that carries the client's fds, then the request's JSON on one line, as client._send writes them."""
    _, fds, _, _ = socket.recv_fds(conn, 1, 3)
    with conn.makefile("rb") as f:  # the client sends nothing after it: nothing is read ahead
        line = f.readline(MAX_REQUEST)
    if not line.endswith(b"\n"):
        raise ConnectionError(f"a request cut short or over {MAX_REQUEST} bytes")
    return json.loads(line), fds


class Server:
    """Single-threaded (forking a process with threads is unsafe). A bare one (no torch) serves at once; when an
    action needs torch it forks a warm one, which imports it and renames its socket over the bare one's."""

    def __init__(self, path: str, listener: socket.socket, startup_dir: str, predecessor: int | None) -> None:
        self.path = path
        self.startup_dir = startup_dir
        self.predecessor = predecessor  # a warm server's bare parent; None in a bare server
        # A bare server's children write to this pipe when they import torch: then a warm one is wanted.
        self.wanted_r, self.wanted_w = os.pipe() if predecessor is None else (None, None)
        self.listener = listener
        self.idle_s = float(os.environ.get(IDLE_VAR, DEFAULT_IDLE_S))
        self.running: dict[int, socket.socket] = {}  # child pid -> its client's connection
        self.last_active = time.monotonic()
        self.inode = os.stat(path).st_ino  # to remove only our own socket file when idle
        self.warm_pid: int | None = None  # the warm successor this bare server forked, while it is starting
        self.warming = False  # it has forked one (which may have died since)

    def serve(self, conn: socket.socket) -> None:
        try:
            request, fds = _read_request(conn)
        except (OSError, ValueError) as e:
            print(f"bad request: {e}", file=sys.stderr, flush=True)
            conn.close()
            return
        if request.get("warm"):  # the CLI knows torch work is coming (client.prewarm)
            conn.close()
            self.want_warm()
            return
        try:
            gone = conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except OSError as e:  # BlockingIOError: still there
            gone = not isinstance(e, BlockingIOError)
        if gone:  # it gave up waiting (a wedged start) and ran the action itself
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        # While a warm successor starts, an action reaching `import torch` hands itself over to it (a cache hit
        # never does, so it runs here at once). A client retrying after a failed start asks not to.
        hand_off = self.warm_pid is not None and request.get("hand_off", True)
        pid = os.fork()
        if pid == 0:
            run_child(request, fds, conn, self.listener, self.startup_dir, self.wanted_w,
                      self.inode if hand_off else None)  # never returns
        with contextlib.suppress(OSError):  # also done by the child; here too, so the client's first signal finds it
            os.setpgid(pid, pid)
        for fd in fds:
            os.close(fd)
        self.running[pid] = conn
        send(conn, {"pid": pid})

    def reap(self) -> None:
        """Tell each finished child's client how it ended (a child reports its own exit first; a killed one
        cannot). Also reaps the warm successor and the ISA probe child, which have no client."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.warm_pid and not self.handed_off():
                # The warm successor died before taking over (its preload failed): nobody to hand off to.
                # Clients waiting for it read this file and run their action here instead.
                self.warm_pid = None
                replace_unsynced(Path(self.path + WARM_FAILED_SUFFIX), str(self.inode).encode())
            conn = self.running.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            send(conn, {"signal": -code} if code < 0 else {"exit": code})
            conn.close()
            self.last_active = time.monotonic()

    def accept_pending(self) -> None:
        self.listener.setblocking(False)
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(True)
            self.serve(conn)
            self.last_active = time.monotonic()

    def loop(self) -> None:
        """Serve until idle for idle_s with no action running (or handed off to a warm successor), then exit."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD wakes the selector
        watched = [f for f in (self.listener, wake_r, self.wanted_r) if f is not None]
        while True:
            if self.predecessor is not None and os.getppid() == self.predecessor:
                # The bare server still runs actions of this build: not idle (its exit reparents us).
                self.last_active = time.monotonic()
            idle_left = self.idle_s - (time.monotonic() - self.last_active)
            # A bare server whose warm successor still starts is not idle: the actions it handed over wait for
            # that successor at this socket path, and an exit now would start a second bare server for them.
            if not self.running and idle_left <= 0 and self.warm_pid is None:
                break
            if self.warming and self.handed_off():
                break
            timeout = max(idle_left, 0.05) if not self.running else 1.0
            for ready in select.select(watched, [], [], min(timeout, 0.5) if self.warming else timeout)[0]:
                if ready is self.listener:
                    self.accept_pending()
                else:  # a signal's byte (there is one, so no read blocks), or a child that imported torch
                    os.read(ready, 4096)
                    if ready == self.wanted_r:
                        self.want_warm()
            self.reap()
        self.shutdown()

    def handed_off(self) -> bool:
        """A warm server took the socket path over: new clients go there."""
        try:
            return os.stat(self.path).st_ino != self.inode
        except OSError:
            return False

    def want_warm(self) -> None:
        """Torch is needed: a bare server forks its warm successor, once. That one imports torch, then takes the
        socket path over; this bare one serves until then and exits after its own actions end."""
        if self.predecessor is not None or self.warming:
            return
        self.warming = True
        bare = os.getpid()
        self.warm_pid = os.fork()
        if self.warm_pid != 0:
            return
        try:
            self.listener.close()
            for conn in self.running.values():
                conn.close()
            preload()
            # Bound at a new path renamed over the bare one's: clients connect here from then on, while those
            # queued at the old socket are still served there.
            tmp = f"{self.path}.{os.getpid()}.tmp"
            listener = _bind(tmp)
            os.rename(tmp, self.path)
            print(f"pid {os.getpid()} warm", file=sys.stderr, flush=True)
            # Our pid, not getppid() read now: a parent that exited meanwhile reads as pid 1 (or a subreaper),
            # which would count as a predecessor still running, and this server would never go idle.
            Server(self.path, listener, self.startup_dir, predecessor=bare).loop()
        finally:
            os._exit(0)

    def shutdown(self) -> None:
        """Idle: stop taking new clients (they start a new server), serve any already queued, then exit."""
        if not self.handed_off():
            unlink_quiet(Path(self.path))
        self.accept_pending()
        while self.running:
            time.sleep(0.05)
            self.reap()
        self.listener.close()
        if self.predecessor is not None:  # warm: the inductor cache dir preload made for it
            shutil.rmtree(os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)


def preload() -> None:
    """torch as a compile imports it (through the staging links), then the modules actions use; before anything
    starts OpenMP threads or CUDA, so a forked child may use both."""
    from aotbuild.actions import staging

    # torch.cuda.is_available()/device_count() arm CUDA's fork guard (every forked child then fails its first
    # CUDA call, even inductor's device probe in a CPU compile) unless they ask NVML instead of the driver.
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(str(staging.BASE), "workers", f"inductor-{os.getpid()}")
    with staging.torch_imported_through_link():
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError as e:  # an older torch lacks one: the action imports what it needs itself
                print(f"preload: {name}: {e}", file=sys.stderr, flush=True)
    _warm_inductor()
    import torch

    if torch.cuda.is_initialized():
        raise RuntimeError("CUDA was initialized while preloading: forked actions could not use it")
    pid = os.fork()  # whether a forked child would be refused CUDA: it reports torch's own flag (no CUDA init)
    if pid == 0:
        os._exit(1 if torch.cuda._is_in_bad_fork() else 0)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        raise RuntimeError("CUDA's fork guard was armed while preloading: forked actions could not use CUDA")


def _warm_inductor() -> None:
    """Inductor's setup of a machine (ISA probe, precompiled headers) while the server serves; in a child: both
    run threads and compilers, and a process with threads must not fork the actions."""
    if os.fork() != 0:
        return  # reaped with the actions' children (an unknown pid there)
    # Inductor builds the probe libraries in its cache dir: one of our own, which the server's idle exit
    # (it removes its own) cannot pull from under a probe still running.
    scratch = os.environ["TORCHINDUCTOR_CACHE_DIR"] + "-isa"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = scratch
    try:
        from aotbuild.actions import isa_probe, precompiled_headers, staging

        def probe() -> None:
            isa_probe.remember(staging.BASE)
            isa_probe.load_probes_without_torch()
            isa_probe.probe_concurrently()

        for step, run in (("CPU ISA probe", probe),
                          ("precompiled headers", precompiled_headers.build_cpu_headers)):
            try:
                with staging.using_temp_space():  # `cache gc` leaves the headers' dir alone meanwhile
                    run()
            except Exception as e:  # noqa: BLE001 - only a head start: each compile can still do it itself
                print(f"preload: {step}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(0)


def main(argv: list[str]) -> None:
    listener = _bind(argv[0])
    print(f"pid {os.getpid()} bare", file=sys.stderr, flush=True)
    Server(argv[0], listener, sys.path[0], predecessor=None).loop()


if __name__ == "__main__":
    main(sys.argv[1:])

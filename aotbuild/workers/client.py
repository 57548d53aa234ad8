"""The command ninja runs for an action (stdlib only, under -S): hand it to a warm worker, exit with its status."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

WORKERS_VAR = "AOTBUILD_WORKERS"  # the same name as settings.WORKERS_VAR (this file imports nothing of aotbuild)
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = f"/tmp/aotbuild-{os.getuid()}"
START_TIMEOUT_S = 60.0  # a server binds its socket before importing torch: this is only a missed start
# A server that has not forked our action by then is wedged (its import never ends): run the action here.
# It checks that we are still connected before forking, so the action never runs twice.
WEDGED_S = 300.0
# A warm server replaces its bare parent within seconds (importing torch and inductor); one that has not
# by then is not coming: the action then runs at the bare server, importing torch itself.
HAND_OFF_WAIT_S = 120.0
# Beside the socket: the inode of a bare server whose warm successor died starting (nothing to wait for).
WARM_FAILED_SUFFIX = ".warm-failed"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# What the shell between ninja and this client sets for itself (the CLI that warms a server up front sees
# other values): torch reads none of them.
SHELL_VARS = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})


class Unavailable(Exception):
    """No worker could be reached or started: run the action here instead."""


def socket_path(environ: dict[str, str]) -> str:
    """One server per interpreter, aotbuild checkout and environment: torch reads variables when imported.
    aotbuild's own variables are read by each action, not at import, so builds differing only there share one."""
    relevant = sorted((k, v) for k, v in environ.items() if not k.startswith("AOTBUILD_") and k not in SHELL_VARS)
    key = hashlib.sha256(json.dumps([sys.executable, PACKAGE_ROOT, relevant]).encode()).hexdigest()[:20]
    return os.path.join(BASE, "workers", f"{key}.sock")


def _private_dirs() -> None:
    """/tmp is shared: our dirs must be ours and closed to others, or another user could answer as a worker."""
    for path in (BASE, os.path.join(BASE, "workers")):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise Unavailable(f"{path} is not a private directory of this user")


def _connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return sock
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None


def connect_or_start(path: str, environ: dict[str, str] | None = None) -> socket.socket:
    """Connect to the server at `path`, started first if none listens (one starter at a time) in `environ`."""
    if (sock := _connect(path)) is not None:
        return sock
    _private_dirs()
    fd = os.open(path + ".start.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if (sock := _connect(path)) is not None:  # another client may have started it while we waited
            return sock
        log = os.open(path + ".log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        server = subprocess.Popen([sys.executable, "-m", "aotbuild.workers.server", path], cwd=PACKAGE_ROOT,
                                  env=environ, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        os.close(log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while (sock := _connect(path)) is None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise Unavailable(f"no worker listened within {START_TIMEOUT_S:.0f} s (see {path}.log)")
            time.sleep(0.01)
        return sock
    finally:
        os.close(fd)


def _send(sock: socket.socket, request: dict, fds: list[int]) -> None:
    """One request as the server reads it: a byte that carries `fds`, then its JSON on one line."""
    socket.send_fds(sock, [b"\0"], fds)
    sock.sendall(json.dumps(request).encode() + b"\n")


def prewarm(environ: dict[str, str]) -> bool:
    """Have the server for `environ` (ninja's actions') import torch now; best effort: whether it was asked."""
    if environ.get(WORKERS_VAR, "1") == "0":
        return False
    try:
        with connect_or_start(socket_path(environ), environ) as sock:
            _send(sock, {"warm": True}, [])
        return True
    except (Unavailable, OSError):
        return False


def _reply(replies: io.BufferedReader) -> dict | None:
    """The server's next word: one JSON object per line; None when it closed the connection."""
    line = replies.readline()
    return json.loads(line) if line.strip() else None


def run_once(argv: list[str], path: str, forwarded: list[int], hand_off: bool = True) -> dict | None:
    """One attempt; the worker's final word ({"exit": n}, {"signal": n}, or {"hand_off": inode}: run it again
    at the warm server replacing the one at that inode), None if it vanished mid-action."""
    with connect_or_start(path) as sock:
        _send(sock, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "hand_off": hand_off}, [0, 1, 2])
        replies = sock.makefile("rb")
        sock.settimeout(WEDGED_S)
        try:
            started = _reply(replies)
        except TimeoutError as e:
            raise Unavailable(f"the worker at {path} did not start the action within {WEDGED_S:.0f} s") from e
        sock.settimeout(None)
        if started is None or "pid" not in started:
            # The child writes its own last word on this connection: a quick one (a failure at once, a
            # hand-off) can come before the server's word that it started.
            return started

        def forward(signum: int, _frame: object) -> None:
            forwarded.append(signum)
            with contextlib.suppress(ProcessLookupError):  # the action's process group: it and its compilers
                os.killpg(started["pid"], signum)

        for signum in SIGNALS:
            signal.signal(signum, forward)
        try:
            return _reply(replies)
        finally:
            for signum in SIGNALS:
                signal.signal(signum, signal.SIG_DFL)


def _wait_for_successor(path: str, inode: int) -> None:
    """Until a warm server replaced the bare one at `inode`, the path is gone, its start failed, or time is up."""
    deadline = time.monotonic() + HAND_OFF_WAIT_S
    while time.monotonic() < deadline:
        try:
            if os.stat(path).st_ino != inode:
                return
            with open(path + WARM_FAILED_SUFFIX) as f:
                if f.read() == str(inode):
                    return
        except FileNotFoundError:  # no socket: gone; no file: nothing failed
            if not os.path.exists(path):
                return
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    if os.environ.get(WORKERS_VAR, "1") == "0":
        os.execv(sys.executable, [sys.executable, "-m", *argv])
    try:
        path = socket_path(dict(os.environ))
        forwarded: list[int] = []
        for then in ("; running it again", " again; giving up"):
            final = run_once(argv, path, forwarded)
            if final is not None and "hand_off" in final:
                # The action needs torch and a warm server is starting: run it there (at most once more), or at
                # whatever server is there after the wait, told not to hand off again.
                _wait_for_successor(path, final["hand_off"])
                final = run_once(argv, path, forwarded, hand_off=False)
            if forwarded:  # stopped on purpose (ninja or the CLI was interrupted): never retried
                return 128 + forwarded[0]
            if final is not None and "exit" in final:
                return final["exit"]
            why = f"was killed by signal {final['signal']}" if final else "vanished"
            print(f"aotbuild: the worker running `{' '.join(argv)}` {why}{then}", file=sys.stderr, flush=True)
            time.sleep(0.1)
        return 1
    except (Unavailable, OSError) as e:
        print(f"aotbuild: no warm worker ({e}); running the action in its own process", file=sys.stderr, flush=True)
        os.execv(sys.executable, [sys.executable, "-m", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""One forked action: the child of a warm server becomes the process `python -m <module>` would have been."""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import signal
import socket
import sys
import tempfile
import threading
import traceback


def send(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):  # the client is gone (interrupted): nobody to tell
        conn.sendall(json.dumps(message).encode() + b"\n")


def _exit_code(e: SystemExit) -> int:
    """As the interpreter maps sys.exit's argument: None is 0, an int itself, anything else printed and 1."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


def _die_with_client(conn: socket.socket) -> None:
    """The client waits on this connection until we exit; if it goes away, it was killed (the CLI's second
    interrupt, or ninja killed): die as the action would have died with it, with everything it started."""
    with contextlib.suppress(OSError):
        while conn.recv(1024):
            pass
    os.killpg(os.getpid(), signal.SIGKILL)


def _become(request: dict, fds: list[int], startup_dir: str) -> None:
    for target, fd in enumerate(fds):  # the client's stdin, stdout and stderr
        os.dup2(fd, target)
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ["AOTBUILD_WORKER_PID"] = str(os.getppid())  # settings.WORKER_PID_VAR: the action reports it
    tempfile.tempdir = None  # recomputed from this action's TMPDIR
    sys.argv = list(request["argv"])  # the module name first; runpy replaces it with the module's path
    # `python -m` puts its working directory on the path; the server's was its own (preloading put the
    # staging site before it, as a compile's own import does).
    sys.path[sys.path.index(startup_dir)] = request["cwd"]


class HandOff(BaseException):
    """Raised at this action's `import torch` in a bare server whose warm successor is starting: the action
    stops (its own handlers let a BaseException pass, its `with` blocks clean up) and its client runs it
    again at the warm server. Actions may be run again: ninja reruns them too."""


class _TorchWanted:
    """An import hook that finds nothing itself: at `import torch` it tells a bare server, once, that a warm
    server pays off, or it hands the action over while a warm one starts."""

    def __init__(self, fd: int | None, hand_off: bool) -> None:
        self.fd = fd
        self.hand_off = hand_off

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name != "torch":
            return
        if self.hand_off:
            self.hand_off = False
            raise HandOff
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.fd, b"t")
            self.fd = None


def run_child(request: dict, fds: list[int], conn: socket.socket, listener: socket.socket, startup_dir: str,
              torch_wanted: int | None, hand_off_from: int | None = None) -> None:
    """In the forked child; never returns. `hand_off_from`: the bare server's socket inode, when an action
    needing torch is to be handed over to the warm server about to replace it there."""
    code = 1
    last_word: dict = {}
    try:
        os.setpgid(0, 0)  # a group of its own: a forwarded signal reaches the action and its compilers
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        listener.close()
        _become(request, fds, startup_dir)
        if (torch_wanted is not None or hand_off_from is not None) and "torch" not in sys.modules:
            sys.meta_path.insert(0, _TorchWanted(torch_wanted, hand_off_from is not None))
        threading.Thread(target=_die_with_client, args=(conn,), daemon=True).start()
        try:
            runpy.run_module(request["argv"][0], run_name="__main__", alter_sys=True)
            code = 0
        except HandOff:
            code, last_word = 0, {"hand_off": hand_off_from}
        except SystemExit as e:
            code = _exit_code(e)
        except BaseException:  # noqa: BLE001 - what an uncaught exception does in a process of its own (code 1)
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        send(conn, last_word or {"exit": code})
    finally:
        os._exit(code)

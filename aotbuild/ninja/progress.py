"""The live progress line on a terminal: elapsed time, actions done, and the targets each running action works on."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from aotbuild.interrupts import forwarded
from aotbuild.text import plural

# ninja's own line shows one edge at a time, and a total that shrinks as restat prunes edges. So ninja runs on
# a pseudo-terminal (only to one does it print a status as each edge starts) with NINJA_STATUS set to counters
# we parse: %s started, %f finished edges, then the description (\x1d never appears in one).
NINJA_STATUS = "\x1d%s %f\x1d"
_STATUS = re.compile(rb"\r\x1d(\d+) (\d+)\x1d(.*?)\x1b\[K")
# An edge whose description is a verb and a label ("compile //m:a", as rules/ describe theirs) is an action
# on a target; others (spec files, re-planning) are bookkeeping, neither shown nor counted.
_ACTION = re.compile(r"(\w+) (//\S*)")
REDRAW_S = 0.5


def elapsed_text(seconds: float) -> str:
    """'7s', '1m05s', '1h02m'."""
    minutes, s = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s" if minutes else f"{s}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _gerund(verb: str) -> str:
    """'compile' -> 'compiling', 'export' -> 'exporting', 'verify' -> 'verifying'."""
    return (verb[:-1] if verb.endswith("e") and not verb.endswith("ee") else verb) + "ing"


@dataclass
class Progress:
    """What ninja has started and finished so far, from its status prints, split out of its terminal output."""

    started: int = 0
    finished: int = 0
    done: int = 0  # aotbuild actions finished (spec files and re-planning are not worth counting)
    running: Counter = field(default_factory=Counter)  # description -> how many edges with it run
    where: Mapping[str, str] = field(default_factory=dict)  # label -> the cluster node its action runs on
    _pending: bytes = b""  # the start of a status print, to complete with the next chunk
    _after_status: bool = False

    def status(self, started: int, finished: int, description: str) -> None:
        """One status print: ninja prints one as each edge starts (`started` went up) and as it ends."""
        if started > self.started:
            self.started = started
            self.running[description] += 1
        elif finished > self.finished:
            self.finished = finished
            self.running -= Counter({description: 1})  # keeps positive counts only
            if _ACTION.fullmatch(description):
                self.done += 1

    def line(self, elapsed: float, width: int) -> str:
        """'[1m05s] 3 actions done · compiling //m:a, //m:b · exporting //m:c', cut to `width` columns."""
        parts = [f"[{elapsed_text(elapsed)}] {plural(self.done, 'action')} done"]
        by_verb: dict[str, list[str]] = {}
        for description in self.running.elements():
            action = _ACTION.fullmatch(description)
            if action:
                node = self.where.get(action[2])
                by_verb.setdefault(action[1], []).append(f"{action[2]} on {node}" if node else action[2])
        parts += [f"{_gerund(verb)} {', '.join(sorted(labels))}" for verb, labels in sorted(by_verb.items())]
        text = " · ".join(parts)
        return text if len(text) <= width else text[:max(0, width - 1)] + "…"

    def feed(self, data: bytes) -> bytes:
        """Returns the text to show (newlines normalized); keeps an incomplete status print for later."""
        data = self._pending + data
        keep = data.rfind(b"\r\x1d")
        if keep != -1 and _STATUS.match(data, keep) is None:
            data, self._pending = data[:keep], data[keep:]
        elif data.endswith(b"\r"):  # perhaps the start of a status print, or of a \r\n
            data, self._pending = data[:-1], b"\r"
        else:
            self._pending = b""
        pieces = _STATUS.split(data)  # text, started, finished, description, text, ...
        shown = []
        for i in range(0, len(pieces), 4):
            text = pieces[i]
            if text and self._after_status:
                # ninja ends its status line with a newline before other output; our line is redrawn instead.
                text = text.removeprefix(b"\r\n")
                self._after_status = False
            shown.append(text)
            if i + 3 < len(pieces):
                self.status(int(pieces[i + 1]), int(pieces[i + 2]), pieces[i + 3].decode(errors="replace"))
                self._after_status = True
        return b"".join(shown).replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest.replace(b"\r\n", b"\n")


def run(cmd: list[str], cwd: Path, env: Mapping[str, str], pass_fds: tuple[int, ...], out: TextIO,
        where: Mapping[str, str] | None = None) -> int:
    """ninja's exit code, run on a pseudo-terminal with the progress line drawn on `out`; a signal stops all."""
    master, slave = pty.openpty()  # of width 0, which ninja takes as no width: it never shortens a line
    with open(master, "rb", buffering=0) as terminal:  # closed however this ends
        try:
            proc = subprocess.Popen(cmd, env={**env, "NINJA_STATUS": NINJA_STATUS}, pass_fds=pass_fds, cwd=cwd,
                                    stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        finally:
            os.close(slave)
        with forwarded(proc):
            return _show(proc, terminal, out, where or {})


def _show(proc: subprocess.Popen, terminal: BinaryIO, out: TextIO, where: Mapping[str, str]) -> int:
    progress = Progress(where=where)
    started = time.monotonic()
    columns = shutil.get_terminal_size().columns
    drawn = ""

    def draw(text: bytes) -> None:
        nonlocal drawn
        line = progress.line(time.monotonic() - started, columns - 1)
        if text:
            out.write("\r\x1b[K" + text.decode(errors="replace"))
            drawn = ""
        if line != drawn:
            out.write("\r\x1b[K" + line)
            drawn = line
        out.flush()

    while True:
        chunk = b""  # silent for REDRAW_S: the line is redrawn for the time alone
        if select.select([terminal], [], [], REDRAW_S)[0]:
            try:
                chunk = terminal.read(65536)
            except OSError:  # EIO: every writer of the terminal has closed it
                break
            if not chunk:
                break
        draw(progress.feed(chunk))
    draw(progress.flush())
    out.write("\r\x1b[K")  # the summary that follows says what happened, with the time
    out.flush()
    return proc.wait()

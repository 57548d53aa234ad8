"""What a re-plan may change under a no-op stamp without changing what ninja would do.

Every re-plan (a BUILD file edited, or only touched) rewrites plan.json, and tells ninja's log that the
generator edge (build.ninja | plan.json: aot_plan <every BUILD file>) is current: it appends that edge's
lines to .ninja_log (ninja/runner.restat). It touches build.ninja when its text is unchanged. When the
re-plan rewrote no ninja file, the graph ninja reads is the one stamped, and those are the only differences.
ninja's decision then depends on them in one way only: whether the generator edge is dirty. For a restat
edge that is the mtime its log entry records against the newest of its inputs (ninja's RecomputeOutputDirty).
So a stamp still holds when:
  - build.ninja's bytes are the stamped ones, and no other ninja file, nor ninja, nor .ninja_deps moved;
  - .ninja_log is the stamped log with whole lines appended, each for an output of the generator edge;
  - every node whose mtime moved is an input or output of the generator edge, which no other edge reads;
  - the last log entry of each generator output is no older than the newest generator input.
An edit needing no action (a tag) is then a no-op build: a re-plan and this check, no ninja.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence

from aotbuild import layout

LogPrefix = tuple[int, int]  # size, crc32 of .ninja_log's bytes


def read_bytes(path: str, out_fd: int) -> bytes:
    """A file's bytes (relative to aot-out/), b"" when it is absent."""
    try:
        fd = os.open(path, os.O_RDONLY, dir_fd=out_fd)
    except FileNotFoundError:
        return b""
    with os.fdopen(fd, "rb") as f:
        return f.read()


def prefix_of(log: bytes) -> LogPrefix:
    return len(log), zlib.crc32(log)


def manifest_crc(out_fd: int) -> int:
    """build.ninja's crc32: a re-plan that found its text unchanged only touches it."""
    return zlib.crc32(read_bytes(layout.NINJA_FILE, out_fd))


def only_generator_lines_appended(log: bytes, stamped: LogPrefix, outputs: Sequence[str]) -> bool:
    """Whether `log` is the stamped log followed by whole lines, each recording an output in `outputs`."""
    size, crc = stamped
    if size == 0 or len(log) < size or zlib.crc32(log[:size]) != crc:
        return False
    written = appended_outputs(log[size:])
    names = {o.encode("utf-8", "surrogateescape") for o in outputs}
    return written is not None and all(name in names for name in written)


def appended_outputs(tail: bytes) -> list[bytes] | None:
    """The output of each whole line of `tail`, lines appended to .ninja_log (v7: start, end, mtime, output,
    hash); None if one is no such line, or the last is still being written (ninja would read it differently)."""
    if tail and not tail.endswith(b"\n"):
        return None
    written = []
    for line in tail[:-1].split(b"\n") if tail else ():
        fields = line.split(b"\t")
        if len(fields) != 5:
            return None
        written.append(fields[3])
    return written


def _last_entry_mtime(log: bytes, output: str) -> int | None:
    """The mtime that the last line of .ninja_log (v7: start, end, mtime, output, hash) records for `output`."""
    key = b"\t" + output.encode("utf-8", "surrogateescape") + b"\t"
    at = log.rfind(key)
    if at < 0:
        return None
    fields = log[log.rfind(b"\n", 0, at) + 1:log.find(b"\n", at)].split(b"\t")
    if len(fields) != 5 or fields[3] != key[1:-1]:
        return None
    try:
        return int(fields[2])
    except ValueError:
        return None


def generator_current(log: bytes, outputs: Sequence[str], inputs: Sequence[str], out_fd: int) -> bool:
    """Whether ninja would find the generator edge clean: each output exists and has a log entry no older than
    the newest input (all inputs counted, order-only too: more inputs can only make it dirty)."""
    newest = max((os.stat(path, dir_fd=out_fd).st_mtime_ns for path in inputs), default=0)
    for output in outputs:
        os.stat(output, dir_fd=out_fd)  # FileNotFoundError: missing, so dirty
        recorded = _last_entry_mtime(log, output)
        if recorded is None or recorded < newest:
            return False
    return True

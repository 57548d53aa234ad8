"""ninja's deps log as ninja 1.13 loads it (src/deps_log.cc, format v4): path ids, whether the next ninja that
writes to it recompacts it, and which outputs the records appended after a known size are for.

A recompaction keeps only the deps of outputs that the manifest ninja was started with makes by a `deps`
edge: a ninja run on a few packages' ninja files alone (engine/scoped_run.py) would drop every other
package's recorded deps, and the next full build would run all their exports again. Such a run is made only
where ninja will not recompact.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from aotbuild.ninja import logs

# ninja's DepsLog::Load: recompact once there are more than this many deps records, and more than
# COMPACTION_RATIO times as many as outputs with deps.
MIN_COMPACTION_RECORDS = 1000
COMPACTION_RATIO = 3


def recompacts(total: int, unique: int) -> bool:
    """Whether a ninja writing to a deps log of `total` deps records for `unique` outputs rewrites it first
    (DepsLog::Load's needs_recompaction_)."""
    return total > MIN_COMPACTION_RECORDS and total > unique * COMPACTION_RATIO


@dataclass(frozen=True)
class Scan:
    names: list[str]  # the paths of the path records read
    outputs: list[int]  # the output id of each deps record read, in order


def scan(data: bytes, start: int = 0, first_id: int | None = 0) -> Scan | None:
    """Read a deps log's records from byte `start` (0, or a record boundary after `first_id` path records;
    None: a number not known, so ids are not checked). None for another format, or where ninja would find
    damage (it would truncate the log there)."""
    names: list[str] = []
    head = len(logs.DEPS_LOG_HEADER) + 4
    if start == 0 and data:
        if data[:head] != logs.DEPS_LOG_HEADER + struct.pack("<i", logs.DEPS_LOG_VERSION):
            return None
        start = head
    outputs: list[int] = []
    size_of, int_at = struct.Struct("<I").unpack_from, struct.Struct("<i").unpack_from
    pos, end = start, len(data)
    while pos < end:
        if pos + 4 > end:
            return None
        (size,) = size_of(data, pos)
        is_deps, size = size >> 31, size & 0x7FFFFFFF
        body = pos + 4
        if size > logs.MAX_RECORD or body + size > end or size % 4 or size < 4:
            return None
        if is_deps:
            count = size // 4 - 3
            if count < 0:
                return None
            if count and first_id is not None:
                ids = struct.unpack_from(f"<{count}i", data, body + 12)
                if min(ids) < 0 or max(ids) >= first_id + len(names):
                    return None
            outputs.append(int_at(data, body)[0])
        else:
            if first_id is not None and size_of(data, body + size - 4)[0] != (~(first_id + len(names))) & 0xFFFFFFFF:
                return None
            names.append(data[body:body + size - 4].rstrip(b"\0").decode("utf-8", "surrogateescape"))
        pos = body + size
    return Scan(names, outputs)

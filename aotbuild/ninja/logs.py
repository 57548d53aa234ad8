"""The one module that touches ninja's private state (.ninja_log, .ninja_deps), behind the version gate."""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aotbuild.fsutil import replace_unsynced

BUILD_LOG = ".ninja_log"
DEPS_LOG = ".ninja_deps"
BUILD_LOG_HEADER = b"# ninja log v7\n"
DEPS_LOG_HEADER = b"# ninjadeps\n"
DEPS_LOG_VERSION = 4
MAX_RECORD = (1 << 19) - 1  # ninja's kMaxRecordSize

_M64 = (1 << 64) - 1
_SEED = 0xBDD89AA982704029
_SECRET = (0x2D358DCCAA6C78A5, 0x8BB84B93962EACC9, 0x4B33A62ED433D4A3)


# The ninja release aotbuild is tested with (pyproject.toml pins it): with any other, every shortcut around ninja
# is off (no-op stamp, cache pass), as their proofs assume this release's behaviour.
TESTED_RELEASE = "1.13"
TESTED_PIN = "ninja>=1.13,<1.14"
VERSION_FILE = "ninja-version"  # in the builddir: the version `refusal` found, and for which binary


class FormatError(Exception):
    """A ninja, or a log on disk, that this module does not know how to extend."""


def refusal(binary: str, builddir: Path | None = None) -> str | None:
    """The version gate: None for a ninja of the tested range, else why every shortcut is off. With
    `builddir`, the version is kept there for that very file (path, size, mtime, inode): asking costs a process."""
    try:
        st = os.stat(binary)
    except OSError as e:
        return f"cannot ask {binary} for its version: {e.strerror}"
    key = f"{binary}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0"
    try:
        kept = (builddir / VERSION_FILE).read_text() if builddir is not None else ""
    except (OSError, UnicodeError):
        kept = ""
    if kept.startswith(key):
        version = kept[len(key):]
    else:
        try:
            version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            version = ""
        if builddir is not None and builddir.is_dir():
            replace_unsynced(builddir / VERSION_FILE, (key + version).encode())
    if version.split(".")[:2] == TESTED_RELEASE.split("."):
        return None
    return (f"ninja {version or '(no version)'} is outside the tested range ({TESTED_PIN}): "
            "the no-op stamp and the cache pass are off")


def _mix(a: int, b: int) -> int:
    r = a * b
    return (r & _M64) ^ (r >> 64)


def rapidhash(data: bytes) -> int:
    """rapidhash (ninja's third_party/rapidhash.h, fast and unrolled variants agree), ninja's command hash."""
    n = len(data)
    seed = _SEED ^ _mix(_SEED ^ _SECRET[0], _SECRET[1]) ^ n

    def r64(i: int) -> int:
        return int.from_bytes(data[i:i + 8], "little")

    def r32(i: int) -> int:
        return int.from_bytes(data[i:i + 4], "little")

    if n <= 16:
        if n >= 4:
            last = n - 4
            a = (r32(0) << 32) | r32(last)
            delta = (n & 24) >> (n >> 3)
            b = (r32(delta) << 32) | r32(last - delta)
        elif n > 0:
            a, b = (data[0] << 56) | (data[n >> 1] << 32) | data[n - 1], 0
        else:
            a = b = 0
    else:
        p, i = 0, n
        if i > 48:
            see1 = see2 = seed
            while i >= 48:
                seed = _mix(r64(p) ^ _SECRET[0], r64(p + 8) ^ seed)
                see1 = _mix(r64(p + 16) ^ _SECRET[1], r64(p + 24) ^ see1)
                see2 = _mix(r64(p + 32) ^ _SECRET[2], r64(p + 40) ^ see2)
                p, i = p + 48, i - 48
            seed ^= see1 ^ see2
        if i > 16:
            seed = _mix(r64(p) ^ _SECRET[2], r64(p + 8) ^ seed ^ _SECRET[1])
            if i > 32:
                seed = _mix(r64(p + 16) ^ _SECRET[2], r64(p + 24) ^ seed)
        a, b = r64(p + i - 16), r64(p + i - 8)
    r = (a ^ _SECRET[1]) * (b ^ seed)
    return _mix((r & _M64) ^ _SECRET[0] ^ n, (r >> 64) ^ _SECRET[1])


def check_path(path: str) -> str:
    """A path as ninja's node keeps it: refuse what ninja would canonicalize differently or the logs could not
    hold (tabs, newlines, '.' and '..' segments, doubled slashes)."""
    if (not path or any(c in path for c in "\t\n\r\0") or "//" in path or path.endswith("/")
            or any(part in (".", "..") for part in path.split("/")[1:]) or path.startswith("./")):
        raise FormatError(f"path {path!r} is not canonical")
    return path


@dataclass(frozen=True)
class Finished:
    """One edge done outside ninja: its outputs (ninja's node paths), evaluated command, log mtime, and for
    deps edges the dependencies with each output's mtime (ninja records deps for every output)."""

    outputs: tuple[str, ...]
    command: str
    mtime_ns: int
    deps: tuple[str, ...] | None = None
    output_mtimes_ns: tuple[int, ...] = ()


def check_logs(builddir: Path) -> dict[str, int]:
    """The deps log's path ids (path -> id); FormatError for a log of another version, or a damaged deps log
    (ninja would truncate it, and records appended after the damage would be lost or misread)."""
    first = b""
    with contextlib.suppress(FileNotFoundError), open(builddir / BUILD_LOG, "rb") as f:
        first = f.readline()
    if first and first != BUILD_LOG_HEADER:
        raise FormatError(f"{builddir / BUILD_LOG}: unknown build log version {first[:40]!r}")
    path = builddir / DEPS_LOG
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    head = len(DEPS_LOG_HEADER)
    if not data:
        return {}
    if data[:head] != DEPS_LOG_HEADER or data[head:head + 4] != struct.pack("<i", DEPS_LOG_VERSION):
        raise FormatError(f"{path}: unknown deps log signature or version")
    ids: dict[str, int] = {}
    pos, end = head + 4, len(data)
    while pos < end:
        if pos + 4 > end:
            raise FormatError(f"{path}: truncated record at byte {pos}")
        (size,) = struct.unpack_from("<I", data, pos)
        is_deps, size = size >> 31, size & 0x7FFFFFFF
        body = pos + 4
        if size > MAX_RECORD or body + size > end or size % 4:
            raise FormatError(f"{path}: bad record at byte {pos}")
        if is_deps:
            count = size // 4 - 3
            if count < 0 or any(i < 0 or i >= len(ids) for i in struct.unpack_from(f"<{count}i", data, body + 12)):
                raise FormatError(f"{path}: deps record names an unknown path at byte {pos}")
        else:
            raw = data[body:body + size - 4].rstrip(b"\0")
            (checksum,) = struct.unpack_from("<I", data, body + size - 4)
            name = raw.decode("utf-8", "surrogateescape")
            if not raw or checksum != (~len(ids)) & 0xFFFFFFFF or name in ids:
                raise FormatError(f"{path}: bad path record at byte {pos}")
            ids[name] = len(ids)
        pos = body + size
    return ids


def append(binary: str, builddir: Path, finished: list[Finished]) -> None:
    """Record `finished` edges as ninja 1.13 would (build log v7, deps log v4), deps first: ninja re-runs an edge
    whose command is not logged. Only appends: ninja reads an output's last entry and recompacts the files."""
    why = refusal(binary, builddir)
    if why is not None:
        raise FormatError(why)
    ids = check_logs(builddir)
    records = bytearray()

    def node(path: str) -> int:
        if path not in ids:  # a path record: the path padded to 4 bytes, then its id's complement
            raw = path.encode("utf-8", "surrogateescape")
            raw += b"\0" * (-len(raw) % 4)
            if len(raw) + 4 > MAX_RECORD:
                raise FormatError(f"path too long for the deps log: {path[:80]}...")
            records.extend(struct.pack("<I", len(raw) + 4) + raw + struct.pack("<I", (~len(ids)) & 0xFFFFFFFF))
            ids[path] = len(ids)
        return ids[path]

    for edge in finished:
        if edge.deps is None:
            continue
        size = 4 * (3 + len(edge.deps))  # a deps record: the output's id, its mtime (8 bytes), each dependency's id
        if size > MAX_RECORD:
            raise FormatError(f"too many dependencies for one deps record: {edge.outputs[0]}")
        for output, mtime in zip(edge.outputs, edge.output_mtimes_ns, strict=True):
            records += struct.pack(f"<IiQ{len(edge.deps)}i", size | 0x80000000, node(output), mtime,
                                   *[node(d) for d in edge.deps])
    lines = [f"0\t0\t{edge.mtime_ns}\t{out}\t{rapidhash(edge.command.encode('utf-8', 'surrogateescape')):x}\n"
             for edge in finished for out in edge.outputs]
    builddir.mkdir(parents=True, exist_ok=True)
    _append(builddir / DEPS_LOG, DEPS_LOG_HEADER + struct.pack("<i", DEPS_LOG_VERSION), bytes(records))
    _append(builddir / BUILD_LOG, BUILD_LOG_HEADER, "".join(lines).encode("utf-8", "surrogateescape"))


def _append(path: Path, header: bytes, data: bytes) -> None:
    """`data` at the end of a log, after its `header` where the log is new or empty."""
    if data:
        with open(path, "ab") as f:  # opened at its end: tell() is its size
            f.write((header if f.tell() == 0 else b"") + data)

"""Where an AOTInductor model library keeps its constants, and its GNU build-id as ld computes it (pure Python)."""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

START, END = "_binary_constants_bin_start", "_binary_constants_bin_end"  # inductor's symbols around the blob
_NOBITS, _NOTE, _GNU_BUILD_ID = 8, 7, 3
# Written by ld after it hashed the file for --build-id, so never part of the hash.
_UNHASHED = (".symtab", ".strtab", ".shstrtab")


class Section(NamedTuple):
    name: str
    type: int
    addr: int
    offset: int
    size: int
    link: int
    header: int  # file offset of its section header


def _cstr(data: bytes | bytearray, offset: int) -> str:
    end = data.index(b"\0", offset)
    return bytes(data[offset:end]).decode(errors="replace")


def sections(data: bytes | bytearray) -> list[Section]:
    """The section headers of a 64-bit little-endian ELF file (the only kind inductor builds on x86-64 and arm64)."""
    if data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01":
        raise ValueError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    entsize, count, names = struct.unpack_from("<HHH", data, 0x3A)
    if entsize != 64 or not 0 < names < count or shoff + count * 64 > len(data):
        raise ValueError("section headers out of range")
    raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * 64) for i in range(count)]
    strtab = raw[names][4]
    found = [Section(_cstr(data, strtab + r[0]), r[1], r[3], r[4], r[5], r[6], shoff + i * 64)
             for i, r in enumerate(raw)]
    if any(s.type != _NOBITS and s.offset + s.size > len(data) for s in found):
        raise ValueError("a section lies past the end of the file")
    return found


def _symbols(data: bytes | bytearray, secs: list[Section], wanted: set[str]) -> dict[str, tuple[int, int]]:
    """{name: (value, section index)} of `wanted` names, from .symtab or else .dynsym."""
    found: dict[str, tuple[int, int]] = {}
    for table in (s for name in (".symtab", ".dynsym") for s in secs if s.name == name):
        strings = secs[table.link].offset
        for at in range(table.offset, table.offset + table.size, 24):
            name_at, _, _, index, value, _ = struct.unpack_from("<IBBHQQ", data, at)
            name = _cstr(data, strings + name_at) if name_at else ""
            if name in wanted:
                found.setdefault(name, (value, index))
    return found


def constants_range(data: bytes | bytearray) -> tuple[int, int]:
    """(file offset, size) of the constants blob: the bytes between inductor's two symbols, in one section."""
    secs = sections(data)
    found = _symbols(data, secs, {START, END})
    if set(found) != {START, END}:
        raise ValueError(f"no {START}/{END} symbols: not a library with its weights inside")
    (start, index), (end, other) = found[START], found[END]
    if index != other or not 0 < index < len(secs):
        raise ValueError("the constants symbols lie in different sections")
    sec = secs[index]
    if sec.type == _NOBITS or not sec.addr <= start <= end <= sec.addr + sec.size:
        raise ValueError(f"the constants symbols do not bound bytes of section {sec.name}")
    return start - sec.addr + sec.offset, end - start


def build_id_range(data: bytes | bytearray) -> tuple[int, int] | None:
    """(file offset, size) of the GNU build-id's descriptor, or None."""
    for sec in sections(data):
        at, end = sec.offset, sec.offset + sec.size
        while sec.type == _NOTE and at + 12 <= end:
            namesz, descsz, kind = struct.unpack_from("<III", data, at)
            desc = at + 12 + (namesz + 3) // 4 * 4
            if kind == _GNU_BUILD_ID and data[at + 12:at + 12 + namesz] == b"GNU\0":
                return desc, descsz
            at = desc + (descsz + 3) // 4 * 4
    return None


def ld_build_id(data: bytes | bytearray) -> bytes:
    """GNU ld's --build-id=sha1 of the file (bfd's elf_checksum_contents, checked against ld 2.40): the ELF header
    with e_phoff and e_shoff zeroed, the program headers, then each section's header with sh_offset zeroed and
    its contents (none for NOBITS, empty and unhashed sections; the note holding the build-id as zeros)."""
    view = memoryview(data)
    h = hashlib.sha1()
    header = bytearray(view[:64])
    struct.pack_into("<QQ", header, 0x20, 0, 0)
    h.update(header)
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    entsize, count = struct.unpack_from("<HH", data, 0x36)
    h.update(view[phoff:phoff + entsize * count])
    build_id = build_id_range(data)
    for sec in sections(data):
        raw = bytearray(view[sec.header:sec.header + 64])
        struct.pack_into("<Q", raw, 0x18, 0)
        h.update(raw)
        if sec.type == _NOBITS or sec.size == 0 or sec.name in _UNHASHED:
            continue
        holds_id = build_id is not None and sec.type == _NOTE and sec.offset <= build_id[0] < sec.offset + sec.size
        h.update(bytes(sec.size) if holds_id else view[sec.offset:sec.offset + sec.size])
    return h.digest()

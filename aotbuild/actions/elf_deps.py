"""A shared library's DT_NEEDED entries, read in pure Python: does a model library link a shared C++ runtime?"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

_PT_DYNAMIC = 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB = 0, 1, 5
# Shared C++ runtimes an AOTInductor library may use: GNU's, or LLVM's (clang with -stdlib=libc++).
SHARED_CXX_RUNTIMES = ("libstdc++.so", "libc++.so")


def needed_libraries(path: Path) -> list[str]:
    """The DT_NEEDED names of a 64-bit, little- or big-endian ELF file, in order."""
    # Mapped, not read: a model library embeds its weights, and only its headers and dynamic section are needed.
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise ValueError(f"{path} is not an ELF file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _needed(data, path)


def _needed(data: mmap.mmap, path: Path) -> list[str]:
    if data[4] != 2:  # torch builds for 64-bit platforms only
        raise ValueError(f"{path} is not a 64-bit ELF file")
    endian = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(f"{endian}Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(f"{endian}HH", data, 0x36)
    dyn = f"{endian}qQ"
    segments = []  # (p_type, p_offset, p_vaddr, p_filesz)
    for i in range(phnum):
        header = struct.unpack_from(f"{endian}IIQQQQQQ", data, phoff + i * phentsize)
        segments.append(tuple(header[f] for f in (0, 2, 3, 5)))
    dynamic = next((s for s in segments if s[0] == _PT_DYNAMIC), None)
    if dynamic is None:
        return []  # statically linked: needs nothing
    entries, strtab_vaddr = [], None
    for pos in range(dynamic[1], dynamic[1] + dynamic[3], struct.calcsize(dyn)):
        tag, value = struct.unpack_from(dyn, data, pos)
        if tag == _DT_NULL:
            break
        if tag == _DT_NEEDED:
            entries.append(value)
        elif tag == _DT_STRTAB:
            strtab_vaddr = value
    if strtab_vaddr is None:
        raise ValueError(f"{path} has a dynamic section without a string table")
    strtab = next((offset + strtab_vaddr - vaddr for _, offset, vaddr, size in segments
                   if vaddr <= strtab_vaddr < vaddr + size), None)
    if strtab is None:
        raise ValueError(f"{path}: address {strtab_vaddr:#x} lies in no segment")
    names = []
    for start in (strtab + off for off in entries):
        end = data.find(b"\0", start)
        if end < 0:
            raise ValueError(f"{path}: a string at offset {start:#x} has no terminating NUL")
        names.append(data[start:end].decode())
    return names


def links_shared_cxx_runtime(path: Path) -> bool:
    return any(name.startswith(SHARED_CXX_RUNTIMES) for name in needed_libraries(path))

"""Read a shared library's DT_NEEDED entries (pure Python, no readelf), to check how it links the C++ runtime.

Why: a compiler wrapper that links libstdc++ statically produces AOTInductor libraries that load, then crash
inside std::regex when the process already holds the shared libstdc++ (torch does). Such a library has no
`NEEDED libstdc++.so.6`; catching that after the compile turns a segfault on load into a clear build error.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

_PT_DYNAMIC = 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB = 0, 1, 5
# Shared C++ runtimes an AOTInductor library may use: GNU's, or LLVM's (clang with -stdlib=libc++).
SHARED_CXX_RUNTIMES = ("libstdc++.so", "libc++.so")


class ElfError(ValueError):
    """Not an ELF shared object this reader understands."""


def needed_libraries(path: Path) -> list[str]:
    """The DT_NEEDED names of a 32- or 64-bit, little- or big-endian ELF file, in order."""
    # Mapped, not read: a model library embeds its weights, and only its headers and dynamic section are needed.
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise ElfError(f"{path} is not an ELF file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _needed(data, path)


def _needed(data: mmap.mmap, path: Path) -> list[str]:
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        phoff, phentsize, phnum = (struct.unpack_from(f"{endian}Q", data, 0x20)[0],
                                   *struct.unpack_from(f"{endian}HH", data, 0x36))
        phdr, dyn = f"{endian}IIQQQQQQ", f"{endian}qQ"
    else:
        phoff, phentsize, phnum = (struct.unpack_from(f"{endian}I", data, 0x1C)[0],
                                   *struct.unpack_from(f"{endian}HH", data, 0x2A))
        phdr, dyn = f"{endian}IIIIIIII", f"{endian}iI"
    segments = []  # (p_type, p_offset, p_vaddr, p_filesz)
    for i in range(phnum):
        fields = struct.unpack_from(phdr, data, phoff + i * phentsize)
        if is64:
            p_type, _flags, offset, vaddr, _paddr, filesz = fields[:6]
        else:
            p_type, offset, vaddr, _paddr, filesz = fields[:5]
        segments.append((p_type, offset, vaddr, filesz))
    dynamic = next((s for s in segments if s[0] == _PT_DYNAMIC), None)
    if dynamic is None:
        return []  # statically linked: needs nothing
    entries, strtab_vaddr = [], None
    step = struct.calcsize(dyn)
    for pos in range(dynamic[1], dynamic[1] + dynamic[3], step):
        tag, value = struct.unpack_from(dyn, data, pos)
        if tag == _DT_NULL:
            break
        if tag == _DT_NEEDED:
            entries.append(value)
        elif tag == _DT_STRTAB:
            strtab_vaddr = value
    if strtab_vaddr is None:
        raise ElfError(f"{path} has a dynamic section without a string table")
    strtab = _file_offset(segments, strtab_vaddr, path)
    return [_string(data, strtab + off, path) for off in entries]


def _string(data: mmap.mmap, start: int, path: Path) -> str:
    end = data.find(b"\0", start)
    if end < 0:
        raise ElfError(f"{path}: a string at offset {start:#x} has no terminating NUL")
    return data[start:end].decode()


def _file_offset(segments: list[tuple[int, int, int, int]], vaddr: int, path: Path) -> int:
    for _type, offset, seg_vaddr, filesz in segments:
        if seg_vaddr <= vaddr < seg_vaddr + filesz:
            return offset + vaddr - seg_vaddr
    raise ElfError(f"{path}: address {vaddr:#x} lies in no segment")


def links_shared_cxx_runtime(path: Path) -> bool:
    return any(name.startswith(SHARED_CXX_RUNTIMES) for name in needed_libraries(path))

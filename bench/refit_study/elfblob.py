"""Pure-Python ELF64-LE reader: where the AOTI constants blob lies in a model .so, and its GNU build-id note."""
import struct


def _sections(d):
    if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    shoff, = struct.unpack_from("<Q", d, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
    secs = []
    for i in range(shnum):
        name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", d, shoff + i * shentsize)
        secs.append(dict(name=name, type=typ, flags=flags, addr=addr, offset=off, size=size, link=link,
                         entsize=entsize))
    strtab = secs[shstrndx]
    for s in secs:
        s["name"] = _cstr(d, strtab["offset"] + s["name"])
    return secs


def _cstr(d, off):
    return d[off:d.index(b"\0", off)].decode()


def symbols(d, secs, wanted):
    """{name: (value, size, section index)} for `wanted` names, from .symtab if present else .dynsym."""
    found = {}
    for tab in (".symtab", ".dynsym"):
        for s in secs:
            if s["name"] != tab:
                continue
            strs = secs[s["link"]]["offset"]
            for off in range(s["offset"], s["offset"] + s["size"], 24):
                nm, info, other, shndx, value, size = struct.unpack_from("<IBBHQQ", d, off)
                name = _cstr(d, strs + nm)
                if name in wanted and name not in found:
                    found[name] = (value, size, shndx, tab)
    return found


def locate_blob(d):
    """(file offset, length, section name, symbol table) of _binary_constants_bin_start.._end."""
    secs = _sections(d)
    syms = symbols(d, secs, {"_binary_constants_bin_start", "_binary_constants_bin_end"})
    (start, _, idx, tab), (end, _, idx2, _) = syms["_binary_constants_bin_start"], syms["_binary_constants_bin_end"]
    sec = secs[idx]
    if idx != idx2 or not (sec["addr"] <= start <= end <= sec["addr"] + sec["size"]) or sec["type"] == 8:  # NOBITS
        raise ValueError("constants symbols not inside one PROGBITS section")
    return start - sec["addr"] + sec["offset"], end - start, sec["name"], tab


def build_id(d):
    """(file offset, length) of the GNU build-id descriptor, or None."""
    for s in _sections(d):
        if s["type"] == 7:  # SHT_NOTE
            off, endn = s["offset"], s["offset"] + s["size"]
            while off < endn:
                namesz, descsz, typ = struct.unpack_from("<III", d, off)
                name_off = off + 12
                desc_off = name_off + (namesz + 3) // 4 * 4
                if typ == 3 and d[name_off:name_off + namesz] == b"GNU\0":
                    return desc_off, descsz
                off = desc_off + (descsz + 3) // 4 * 4
    return None


def ld_sha1_build_id(d, skip=(".symtab", ".strtab", ".shstrtab")):
    """Recompute GNU ld's --build-id=sha1 (bfd elf_checksum_contents), as checked against ld 2.40's output:
    SHA-1 over the ELF header with e_phoff = e_shoff = 0, every program header, then per section its header with
    sh_offset = 0 and its contents (none for NOBITS or empty sections, the note holding the build-id all zeros,
    and none for .symtab/.strtab/.shstrtab, which ld had not yet written when it hashed)."""
    import hashlib
    h = hashlib.sha1()
    eh = bytearray(d[:64])
    struct.pack_into("<QQ", eh, 0x20, 0, 0)
    h.update(eh)
    phoff, = struct.unpack_from("<Q", d, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", d, 0x36)
    h.update(d[phoff:phoff + phentsize * phnum])
    shoff, = struct.unpack_from("<Q", d, 0x28)
    bid = build_id(d)
    for k, s in enumerate(_sections(d)):
        raw = bytearray(d[shoff + k * 64: shoff + k * 64 + 64])
        struct.pack_into("<Q", raw, 0x18, 0)
        h.update(raw)
        if s["type"] == 8 or s["size"] == 0 or s["name"] in skip:
            continue
        if bid and s["type"] == 7 and s["offset"] <= bid[0] < s["offset"] + s["size"]:
            h.update(bytes(s["size"]))
        else:
            h.update(d[s["offset"]:s["offset"] + s["size"]])
    return h.digest()

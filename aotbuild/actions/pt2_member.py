"""One stored member of a torch .pt2 zip replaced by bytes of the same length: CRCs and serialization id redone."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

SERIALIZATION_ID = ".data/serialization_id"
_M64 = (1 << 64) - 1


def _hash_combine(seed: int, value: int) -> int:
    """c10::hash_combine on a 64-bit size_t."""
    return (seed ^ ((value + 0x9E3779B9 + ((seed << 6) & _M64) + (seed >> 2)) & _M64)) & _M64


def _crc_part(crcs: list[int]) -> bytes:
    """The last 20 digits of torch's serialization id: the CRC-32 of every record before it, combined in order."""
    combined = 0
    for crc in crcs:
        combined = _hash_combine(combined, crc)
    return b"%020d" % combined


def _set_crc(buf: bytearray, info: zipfile.ZipInfo, crc: int) -> int:
    """Write `crc` into the member's local header or data descriptor; returns where its data starts."""
    at = info.header_offset
    if buf[at:at + 4] != b"PK\x03\x04":
        raise ValueError(f"{info.filename}: no local header at {at}")
    if struct.unpack_from("<I", buf, at + 14)[0] == info.CRC:  # with a data descriptor (torch's) it reads 0
        struct.pack_into("<I", buf, at + 14, crc)
    name_len, extra_len = struct.unpack_from("<HH", buf, at + 26)
    data = at + 30 + name_len + extra_len
    if info.flag_bits & 0x08:
        descriptor = data + info.compress_size
        descriptor += 4 if buf[descriptor:descriptor + 4] == b"PK\x07\x08" else 0
        if struct.unpack_from("<I", buf, descriptor)[0] != info.CRC:
            raise ValueError(f"{info.filename}: its data descriptor is not where its size says")
        struct.pack_into("<I", buf, descriptor, crc)
    return data


def _central_directory(buf: bytearray) -> int:
    end = buf.rfind(b"PK\x05\x06")
    if end < 0:
        raise ValueError("no end of central directory")
    (offset,) = struct.unpack_from("<I", buf, end + 16)
    if offset == 0xFFFFFFFF:  # zip64: the real offset is in the zip64 end record
        locator = buf.rfind(b"PK\x06\x07", 0, end)
        (record,) = struct.unpack_from("<Q", buf, locator + 8)
        (offset,) = struct.unpack_from("<Q", buf, record + 48)
    return offset


def replace_member(package: bytes, name: str, old: bytes, new: bytes) -> bytearray:
    """`package` with member `name` (stored, holding `old`, as long as `new`) holding `new`; the serialization id
    updated as torch's writer computes it. ValueError where the archive is not laid out as torch writes it."""
    buf = bytearray(package)
    try:
        with zipfile.ZipFile(io.BytesIO(package)) as z:
            infos = z.infolist()
            ids = [i for i in infos if i.filename.endswith(SERIALIZATION_ID)]
            if len(ids) != 1 or ids[0] is not infos[-1]:
                raise ValueError("the serialization id is not the archive's one last member")
            old_id = z.read(ids[0])
    except zipfile.BadZipFile as e:
        raise ValueError(str(e)) from e
    info = next((i for i in infos if i.filename == name), None)
    if info is None or info.compress_type != zipfile.ZIP_STORED or not info.file_size == len(old) == len(new):
        raise ValueError(f"{name}: not a stored member of {len(new)} bytes")
    if info.CRC != zlib.crc32(old):
        raise ValueError(f"{name}: holds other bytes than the base library")
    crcs = [i.CRC for i in infos[:-1]]
    if len(old_id) != 40 or old_id[20:] != _crc_part(crcs):
        raise ValueError("the serialization id is not the one torch's writer computes")
    crcs[infos.index(info)] = crc = zlib.crc32(new)
    new_id = old_id[:20] + _crc_part(crcs)
    changed = {name: (crc, new), ids[0].filename: (zlib.crc32(new_id), new_id)}
    for member in (info, ids[0]):
        data = _set_crc(buf, member, changed[member.filename][0])
        buf[data:data + member.file_size] = changed[member.filename][1]
    at, done = _central_directory(buf), 0
    for _ in infos:  # each central header repeats its member's CRC
        if buf[at:at + 4] != b"PK\x01\x02":
            raise ValueError(f"no central directory header at {at}")
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", buf, at + 28)
        listed = bytes(buf[at + 46:at + 46 + name_len]).decode()
        if listed in changed:
            struct.pack_into("<I", buf, at + 16, changed[listed][0])
            done += 1
        at += 46 + name_len + extra_len + comment_len
    if done != 2:
        raise ValueError("the central directory does not list both members")
    return buf

"""In-place rewrite of one stored member of a torch .pt2 (PyTorchStreamWriter zip) with same-length bytes,
fixing its CRC-32 (local header, data descriptor, central directory) and torch's .data/serialization_id."""
import struct, zipfile, zlib

M64 = (1 << 64) - 1

def hash_combine(seed, value):  # c10::hash_combine on 64-bit size_t
    return (seed ^ ((value + 0x9E3779B9 + ((seed << 6) & M64) + (seed >> 2)) & M64)) & M64

def crc_part(infos):
    """Second half of serialization_id: hash_combine over the CRC-32 of each record in write order
    (the id record itself, written last, is excluded)."""
    c = 0
    for i in infos:
        if not i.filename.endswith(".data/serialization_id"):
            c = hash_combine(c, i.CRC)
    return c

def _patch_crc_fields(buf, info, crc):
    """Set the CRC-32 of `info` in its local header, its data descriptor (if any) and central directory."""
    lh = info.header_offset
    assert buf[lh:lh + 4] == b"PK\x03\x04"
    if struct.unpack_from("<I", buf, lh + 14)[0] == info.CRC:  # with a data descriptor (torch's) it stays 0
        struct.pack_into("<I", buf, lh + 14, crc)
    fnlen, exlen = struct.unpack_from("<HH", buf, lh + 26)
    data = lh + 30 + fnlen + exlen
    if info.flag_bits & 0x08:  # data descriptor after the data: [sig] crc sizes
        dd = data + info.compress_size
        if buf[dd:dd + 4] == b"PK\x07\x08":
            dd += 4
        old = struct.unpack_from("<I", buf, dd)[0]
        assert old == info.CRC, "data descriptor CRC not where expected"
        struct.pack_into("<I", buf, dd, crc)
    return data

def replace_member(pt2_bytes, name, new):
    """Bytes of the .pt2 with member `name` replaced by `new` (same length, stored) and the id fixed."""
    import io
    buf = bytearray(pt2_bytes)
    z = zipfile.ZipFile(io.BytesIO(pt2_bytes))
    infos = z.infolist()
    info = z.getinfo(name)
    assert info.compress_type == 0 and info.file_size == len(new), "member must be stored and keep its length"
    crc = zlib.crc32(new)
    data = _patch_crc_fields(buf, info, crc)
    assert bytes(buf[data:data + info.file_size]) == z.read(name)
    buf[data:data + len(new)] = new
    info.CRC = crc  # for the id computed below
    # the serialization id record
    sid = next(i for i in infos if i.filename.endswith(".data/serialization_id"))
    old_id = z.read(sid.filename)
    new_id = old_id[:20] + b"%020d" % crc_part(infos)
    sdata = _patch_crc_fields(buf, sid, zlib.crc32(new_id))
    buf[sdata:sdata + len(new_id)] = new_id
    # central directory CRCs: each central header repeats the CRC at +16; find them by signature + name
    cd_off = struct.unpack_from("<I", buf, buf.rfind(b"PK\x05\x06") + 16)[0]
    if cd_off == 0xFFFFFFFF:  # zip64 end of central directory
        loc = buf.rfind(b"PK\x06\x07")
        z64 = struct.unpack_from("<Q", buf, loc + 8)[0]
        cd_off = struct.unpack_from("<Q", buf, z64 + 48)[0]
    p = cd_off
    fixed = {}
    for i in infos:
        assert buf[p:p + 4] == b"PK\x01\x02"
        fnlen, exlen, cmlen = struct.unpack_from("<HHH", buf, p + 28)
        fn = bytes(buf[p + 46:p + 46 + fnlen]).decode()
        if fn == name:
            struct.pack_into("<I", buf, p + 16, crc); fixed[fn] = 1
        elif fn == sid.filename:
            struct.pack_into("<I", buf, p + 16, zlib.crc32(new_id)); fixed[fn] = 1
        p += 46 + fnlen + exlen + cmlen
    assert len(fixed) == 2
    return bytes(buf), old_id, new_id

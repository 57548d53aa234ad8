"""A .pt2 member replaced in place equals the archive torch's own writer makes with the new bytes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from aotbuild.actions import pt2_member

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

LIBRARY = "data/aotinductor/model/abc.wrapper.so"


def archive(path: Path, library: bytes) -> bytes:
    """Written by torch's PyTorchFileWriter, as AOTInductor packages are: data descriptors, 64-byte alignment,
    the serialization id last."""
    writer = torch._C.PyTorchFileWriter(str(path))
    for name, data in (("data/aotinductor/model/abc.wrapper.cpp", b"// code\n" * 50), (LIBRARY, library),
                       ("archive_format", b"pt2")):
        writer.write_record(name, data, len(data))
    writer.write_end_of_file()
    return path.read_bytes()


OLD, NEW = bytes(range(256)) * 40, bytes(reversed(range(256))) * 40


def test_the_replaced_member_gives_the_writers_own_archive(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    base, fresh = archive(tmp_path / "model.pt2", OLD), archive(tmp_path / "other" / "model.pt2", NEW)
    name = f"model/{LIBRARY}"
    replaced = pt2_member.replace_member(base, name, OLD, NEW)
    assert replaced == fresh
    with zipfile.ZipFile(tmp_path / "other" / "model.pt2") as z:
        assert z.read(name) == NEW and z.testzip() is None


@pytest.mark.parametrize("case", ["wrong old bytes", "other length", "no such member", "id tampered"])
def test_what_it_cannot_redo_exactly_is_a_value_error(tmp_path: Path, case: str) -> None:
    base = archive(tmp_path / "model.pt2", OLD)
    name, old, new = f"model/{LIBRARY}", OLD, NEW
    if case == "wrong old bytes":
        old = NEW
    elif case == "other length":
        old, new = OLD, NEW + b"x"
    elif case == "no such member":
        name = "model/data/aotinductor/model/other.so"
    else:
        at = base.rindex(b"PK\x03\x04")  # the serialization id, last; its digits follow its header
        base = base[:at] + base[at:].replace(b"0", b"1", 1)
    with pytest.raises(ValueError):
        pt2_member.replace_member(base, name, old, new)

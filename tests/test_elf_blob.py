"""The constants blob and GNU build-id of a shared library linked here like AOTInductor links one (no torch)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from aotbuild.actions import elf_blob

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ and GNU ld")

WEIGHTS_S = """\t.section\t.lrodata, "a"
\t.balign 64
\t.globl\t_binary_constants_bin_start
_binary_constants_bin_start:
{bytes}
.globl\t_binary_constants_bin_end
_binary_constants_bin_end:
"""
WRAPPER = "extern const unsigned char _binary_constants_bin_start[];\n" \
          "const unsigned char *constants() { return _binary_constants_bin_start; }\n"


def link(directory: Path, blob: bytes) -> bytes:
    """A library with `blob` between inductor's symbols, linked with a sha1 build-id in one fixed directory (as
    aotbuild's staging dir), so two blobs give libraries that differ only in the blob and the build-id."""
    directory.mkdir(exist_ok=True)
    (directory / "weights.S").write_text(WEIGHTS_S.format(bytes="\n".join(f"\t.byte {b}" for b in blob)))
    (directory / "wrapper.cpp").write_text(WRAPPER)
    subprocess.run(["g++", "-shared", "-fPIC", "-O1", "-Wl,--build-id=sha1", "-o", "model.so", "wrapper.cpp",
                    "weights.S"], cwd=directory, check=True, capture_output=True)
    return (directory / "model.so").read_bytes()


BLOB_A = bytes(range(256)) * 8
BLOB_B = bytes(reversed(range(256))) * 8


@pytest.fixture(scope="module")
def libraries(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    where = tmp_path_factory.mktemp("elf") / "stage"
    return link(where, BLOB_A), link(where, BLOB_B)


def test_the_blob_is_found_between_the_symbols(libraries: tuple[bytes, bytes]) -> None:
    for data, blob in zip(libraries, (BLOB_A, BLOB_B)):
        start, size = elf_blob.constants_range(data)
        assert size == len(blob) and data[start:start + size] == blob


def test_the_build_id_is_ld_sha1_of_the_file(libraries: tuple[bytes, bytes]) -> None:
    for data in libraries:
        start, size = elf_blob.build_id_range(data)
        assert size == 20 and elf_blob.ld_build_id(data) == data[start:start + 20]


def test_patching_the_blob_and_the_build_id_gives_the_library_linked_with_the_other_blob(
        libraries: tuple[bytes, bytes]) -> None:
    a, b = libraries
    assert len(a) == len(b) and a != b
    patched = bytearray(a)
    start, size = elf_blob.constants_range(a)
    patched[start:start + size] = BLOB_B
    where, length = elf_blob.build_id_range(a)
    patched[where:where + length] = elf_blob.ld_build_id(patched)
    assert bytes(patched) == b


def test_a_changed_byte_outside_the_note_changes_the_build_id(libraries: tuple[bytes, bytes]) -> None:
    data = bytearray(libraries[0])
    start, _ = elf_blob.constants_range(data)
    data[start] ^= 1
    assert elf_blob.ld_build_id(data) != elf_blob.ld_build_id(libraries[0])


def test_what_is_not_a_model_library_is_a_value_error(tmp_path: Path, libraries: tuple[bytes, bytes]) -> None:
    (tmp_path / "plain.cpp").write_text("int f() { return 1; }\n")
    subprocess.run(["g++", "-shared", "-fPIC", "-o", "plain.so", "plain.cpp"], cwd=tmp_path, check=True)
    bad = {"not ELF": b"MZ" + bytes(100), "no symbols": (tmp_path / "plain.so").read_bytes(),
           "truncated": libraries[0][:len(libraries[0]) // 2]}
    for what, data in bad.items():
        with pytest.raises(ValueError):
            elf_blob.constants_range(data)
            pytest.fail(what)

"""Tests for the local content-addressed store and action cache."""

from __future__ import annotations

import multiprocessing
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aotbuild.cache.local import BLOB_MODE, LocalStore
from aotbuild.errors import CacheError
from aotbuild.hashing import sha256_bytes, sha256_file

REPO = Path(__file__).resolve().parents[1]
KEY = "ab" + "0" * 62
OTHER_KEY = "cd" + "1" * 62


def _corrupt(path: Path, offset: int = 0) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_put_get_bytes_roundtrip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    data = b"hello cache"
    digest = store.put_bytes(data)
    assert digest == sha256_bytes(data)
    assert store.get_bytes(digest) == data
    assert store.contains("cas", digest)
    path = store.blob_path(digest)
    assert path == tmp_path / "cache" / "v1" / "cas" / digest[:2] / digest
    assert stat.S_IMODE(path.stat().st_mode) == BLOB_MODE


def test_put_file_roundtrip_streams_large_file(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * (1 << 20) + 17))
    store = LocalStore(tmp_path / "cache")
    digest = store.put_file(src)
    assert digest == sha256_file(src)
    assert store.get_bytes(digest) == src.read_bytes()
    assert stat.S_IMODE(store.blob_path(digest).stat().st_mode) == BLOB_MODE
    assert list((tmp_path / "cache" / "v1" / "tmp").iterdir()) == []
    assert store.put_bytes(src.read_bytes()) == digest


def test_put_written_stores_what_the_writer_wrote_in_pieces(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    pieces = [os.urandom(1 << 20) for _ in range(5)] + [b"tail"]

    def write(f) -> None:
        for piece in pieces:
            f.write(memoryview(piece))  # torch.save hands over buffers, not bytes
        f.flush()

    digest = store.put_written(write)
    assert digest == sha256_bytes(b"".join(pieces))
    assert store.get_bytes(digest) == b"".join(pieces)
    assert stat.S_IMODE(os.stat(store.blob_path(digest)).st_mode) == BLOB_MODE
    assert store.put_written(write) == digest  # an existing sound copy is kept
    assert list((tmp_path / "cache" / "v1" / "tmp").iterdir()) == []


@pytest.mark.parametrize("how", ["seek back and overwrite", "write around the wrapper", "seek to the end"])
def test_put_written_digests_the_file_written_whatever_order_the_writer_used(tmp_path: Path, how: str) -> None:
    """The digest is taken while the bytes pass; a writer that goes back (a zip's header patched at the end)
    or writes through the descriptor must still get the digest of what the file holds."""
    store = LocalStore(tmp_path / "cache")

    def write(f) -> None:
        f.write(b"header--" + os.urandom(1 << 16))
        if how == "seek back and overwrite":
            f.seek(0)
            f.write(b"HEADER")
        elif how == "write around the wrapper":
            f.flush()
            os.write(f.fileno(), b"more")
        else:
            f.seek(0, os.SEEK_END)
            f.write(b"tail")

    digest = store.put_written(write)
    assert digest == sha256_bytes(store.blob_path(digest).read_bytes())
    assert store.get_bytes(digest) is not None


def test_put_written_leaves_nothing_when_the_writer_fails(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")

    def write(f) -> None:
        f.write(b"half a program")
        raise OSError(28, "No space left on device")

    with pytest.raises(CacheError, match="cannot store the program in cache .*No space left"):
        store.put_written(write, "the program")
    assert list((tmp_path / "cache" / "v1" / "tmp").iterdir()) == []
    assert not (tmp_path / "cache" / "v1" / "cas").exists()


def test_nothing_created_until_first_write(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    assert store.get_bytes(KEY) is None
    assert store.blob_path(KEY) is None
    assert not store.contains("cas", KEY)
    assert store.get_action(KEY) is None
    assert store.stats()["cas_entries"] == 0
    assert store.verify() == []
    assert store.gc(max_bytes=0) == []
    assert not (tmp_path / "cache").exists()


def test_put_is_idempotent(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    digest = store.put_bytes(b"same")
    path = store.blob_path(digest)
    inode = path.stat().st_ino
    assert store.put_bytes(b"same") == digest
    src = tmp_path / "f"
    src.write_bytes(b"same")
    assert store.put_file(src) == digest
    assert path.stat().st_ino == inode  # not rewritten
    assert list((tmp_path / "v1" / "tmp").iterdir()) == []  # the redundant copy was discarded
    assert store.stats()["cas_entries"] == 1


@pytest.mark.parametrize("reader", ["get_bytes", "blob_path"])
def test_corrupt_blob_is_a_miss_and_removed(tmp_path: Path, reader: str) -> None:
    store = LocalStore(tmp_path)
    digest = store.put_bytes(b"payload bytes")
    path = store.blob_path(digest)
    _corrupt(path, 3)
    assert getattr(store, reader)(digest) is None
    assert not path.exists()
    assert store.counters.corrupt == [f"cas/{digest}"]
    # A later put repairs it.
    store.put_bytes(b"payload bytes")
    assert store.get_bytes(digest) == b"payload bytes"


def test_put_replaces_corrupt_existing_blob(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    digest = store.put_bytes(b"x" * 100)
    _corrupt(store.blob_path(digest))
    assert store.put_bytes(b"x" * 100) == digest
    assert store.counters.corrupt == [f"cas/{digest}"]
    assert store.get_bytes(digest) == b"x" * 100


def test_verify_reports_and_removes_corrupt_entries(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    good = store.put_bytes(b"good")
    bad = store.put_bytes(b"bad!")
    store.put_action(KEY, {"blobs": [good]})
    store.put_action(OTHER_KEY, {"x": 1})
    _corrupt(store.blob_path(bad))
    ac_path = tmp_path / "v1" / "ac" / OTHER_KEY[:2] / OTHER_KEY
    ac_path.write_bytes(ac_path.read_bytes().replace(b'"x":1', b'"x":2'))
    assert sorted(store.verify()) == sorted([f"cas/{bad}", f"ac/{OTHER_KEY}"])
    assert store.verify() == []
    assert store.get_bytes(good) == b"good"
    assert store.get_action(KEY) == {"blobs": [good]}
    assert store.stats()["cas_entries"] == 1 and store.stats()["ac_entries"] == 1


def test_action_roundtrip_and_counters(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    digest = store.put_bytes(b"out")
    value = {"blobs": [digest], "meta": {"z": [1, 2.5, "é"], "a": None}}
    assert store.get_action(KEY) is None
    store.put_action(KEY, value)
    assert store.get_action(KEY) == value
    store.put_action(KEY, {"v": 2})  # last writer wins
    assert store.get_action(KEY) == {"v": 2}
    assert (store.counters.hits, store.counters.misses) == (2, 1)


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe", b'{"sha256": "00", "payload": {}}', b"[1]"])
def test_corrupt_action_is_a_miss_and_removed(tmp_path: Path, content: bytes) -> None:
    store = LocalStore(tmp_path)
    store.put_action(KEY, {"a": 1})
    path = tmp_path / "v1" / "ac" / KEY[:2] / KEY
    path.write_bytes(content)
    assert store.get_action(KEY) is None
    assert not path.exists()
    assert store.counters.corrupt == [f"ac/{KEY}"]
    assert store.counters.misses == 1


def test_action_moved_to_another_key_is_corrupt(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_action(KEY, {"a": 1})
    dest = tmp_path / "v1" / "ac" / OTHER_KEY[:2] / OTHER_KEY
    dest.parent.mkdir(parents=True)
    os.replace(tmp_path / "v1" / "ac" / KEY[:2] / KEY, dest)
    assert store.get_action(OTHER_KEY) is None
    assert store.counters.corrupt == [f"ac/{OTHER_KEY}"]


def test_action_with_missing_blob_is_a_miss(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    present = store.put_bytes(b"present")
    missing = sha256_bytes(b"never stored")
    store.put_action(KEY, {"blobs": [present, missing]})
    assert store.get_action(KEY) is None
    assert store.counters.misses == 1 and store.counters.corrupt == []
    store.put_bytes(b"never stored")
    assert store.get_action(KEY) == {"blobs": [present, missing]}


def test_action_hit_refreshes_entry_and_blob_mtimes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    digest = store.put_bytes(b"blob")
    store.put_action(KEY, {"blobs": [digest]})
    blob = store.blob_path(digest)
    entry = tmp_path / "v1" / "ac" / KEY[:2] / KEY
    for p in (blob, entry):
        os.utime(p, (1000, 1000))
    assert store.get_action(KEY) is not None
    assert blob.stat().st_mtime > 1000 and entry.stat().st_mtime > 1000


@pytest.mark.parametrize("bad", ["../" + "a" * 61, "A" * 64, "a" * 63, "a" * 65, "a/" + "b" * 62, "", "g" * 64])
def test_invalid_keys_are_rejected(tmp_path: Path, bad: str) -> None:
    store = LocalStore(tmp_path)
    for call in (
        lambda: store.get_bytes(bad),
        lambda: store.blob_path(bad),
        lambda: store.contains("cas", bad),
        lambda: store.get_action(bad),
        lambda: store.put_action(bad, {}),
        lambda: store.put_action(KEY, {"blobs": [bad]}),
        lambda: store.lock(bad),
    ):
        with pytest.raises(CacheError):
            call()
    assert list(tmp_path.iterdir()) == []


def test_unserializable_action_value(tmp_path: Path) -> None:
    with pytest.raises(CacheError):
        LocalStore(tmp_path).put_action(KEY, {"x": object()})


def test_stale_temp_files_are_ignored_and_collected(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    digest = store.put_bytes(b"real")
    shard = tmp_path / "v1" / "cas" / digest[:2]
    old_tmp = shard / f".{digest}.abc123.tmp"
    young_tmp = shard / f".{digest}.def456.tmp"
    tmpdir_old = tmp_path / "v1" / "tmp" / ".put.xyz.tmp"
    tmpdir_old.parent.mkdir(parents=True, exist_ok=True)
    for p in (old_tmp, young_tmp, tmpdir_old):
        p.write_bytes(b"partial write")
    now = time.time()
    os.utime(old_tmp, (now - 7200, now - 7200))
    os.utime(tmpdir_old, (now - 7200, now - 7200))
    assert store.stats()["cas_entries"] == 1
    assert store.stats()["cas_bytes"] == 4
    assert store.verify() == []
    assert store.gc(now=now) == []
    assert not old_tmp.exists() and not tmpdir_old.exists()
    assert young_tmp.exists()
    assert store.get_bytes(digest) == b"real"


def _aged_blobs(store: LocalStore, count: int, size: int) -> list[str]:
    """Blobs of `size` bytes whose mtimes run 1000, 2000, ... (oldest first)."""
    digests = []
    for i in range(count):
        d = store.put_bytes(bytes([i]) * size)
        os.utime(store.blob_path(d), (1000.0 * (i + 1), 1000.0 * (i + 1)))
        digests.append(d)
    return digests


def test_gc_evicts_oldest_first_to_budget(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    digests = _aged_blobs(store, 5, 100)
    store.put_action(KEY, {"n": 1})
    ac_size = store.stats()["ac_bytes"]
    os.utime(tmp_path / "v1" / "ac" / KEY[:2] / KEY, (2500.0, 2500.0))
    removed = store.gc(max_bytes=300 + ac_size, now=10_000.0)
    assert removed == [f"cas/{digests[0]}", f"cas/{digests[1]}"]
    stats = store.stats()
    assert stats["cas_bytes"] + stats["ac_bytes"] <= 300 + ac_size
    removed = store.gc(max_bytes=250, now=10_000.0)
    assert removed == [f"ac/{KEY}", f"cas/{digests[2]}"]
    assert [store.contains("cas", d) for d in digests] == [False, False, False, True, True]


def test_gc_max_age(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    digests = _aged_blobs(store, 4, 10)
    removed = store.gc(max_age_s=2500.0, now=5000.0)  # older than mtime 2500
    assert removed == [f"cas/{digests[0]}", f"cas/{digests[1]}"]
    assert store.gc(max_age_s=2500.0, now=5000.0) == []
    assert store.gc() == []  # no limits: nothing to do


_HOLDER = """
import sys, time
from pathlib import Path
from aotbuild.cache.local import LocalStore
lock = LocalStore(Path(sys.argv[1])).lock(sys.argv[2])
lock.acquire()
Path(sys.argv[3]).write_text("held")
time.sleep(60)
"""


def test_gc_skips_entries_whose_lock_is_held(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    digests = _aged_blobs(store, 3, 100)
    signal = tmp_path / "held"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(store.root), digests[0], str(signal)], env=env
    )
    try:
        deadline = time.monotonic() + 30
        while not signal.exists():
            assert holder.poll() is None, "lock holder exited early"
            assert time.monotonic() < deadline, "lock holder never signalled"
            time.sleep(0.02)
        removed = store.gc(max_bytes=200, now=10_000.0)
        assert removed == [f"cas/{digests[1]}"]  # the oldest is locked; the next oldest goes instead
        assert store.contains("cas", digests[0]) and store.contains("cas", digests[2])
    finally:
        holder.kill()
        holder.wait()
    assert store.gc(max_bytes=100, now=10_000.0) == [f"cas/{digests[0]}"]


def test_gc_skips_entries_locked_in_this_process(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_action(KEY, {"a": 1})
    with store.lock(KEY):
        assert store.gc(max_bytes=0) == []
    assert store.gc(max_bytes=0) == [f"ac/{KEY}"]


CONCURRENT_DATA = bytes(range(256)) * 8192  # 2 MiB: big enough for writes to overlap


def _concurrent_writer(root: str, src: str, barrier: object, index: int) -> None:
    store = LocalStore(Path(root))
    barrier.wait()  # type: ignore[attr-defined]
    for round_ in range(5):
        digest = store.put_bytes(CONCURRENT_DATA)
        assert store.put_file(Path(src)) == digest
        store.put_action(KEY, {"blobs": [digest], "writer": index, "round": round_})
        value = store.get_action(KEY)
        assert value is not None and value["blobs"] == [digest]
        assert store.get_bytes(digest) == CONCURRENT_DATA
        with store.lock(KEY, timeout=30):
            store.put_action(OTHER_KEY, {"writer": index})


def test_concurrent_writers_of_one_entry(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    src = tmp_path / "src.bin"
    src.write_bytes(CONCURRENT_DATA)
    root = tmp_path / "cache"
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_concurrent_writer, args=(str(root), str(src), barrier, i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = LocalStore(root)
    assert store.verify() == []
    digest = sha256_bytes(CONCURRENT_DATA)
    assert store.get_bytes(digest) == CONCURRENT_DATA
    value = store.get_action(KEY)
    assert value is not None and value["blobs"] == [digest] and value["round"] == 4
    assert store.get_action(OTHER_KEY)["writer"] in range(4)
    assert store.stats()["cas_entries"] == 1 and store.stats()["ac_entries"] == 2
    assert store.counters.corrupt == []

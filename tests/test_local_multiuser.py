"""Another local user plants symlinks where aotbuild cleans: in /tmp/aotbuild-<uid> (the compiler temp space)
and in a group-shared cache directory. The other user is real: a forked child that drops to uid 65534
(`nobody`) with os.setuid, so the suite must run as root (CI does); elsewhere these tests skip."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aotbuild.actions import staging
from aotbuild.cache import compiler_temp
from aotbuild.cache.local import LocalStore
from aotbuild.errors import InfraError

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to act as a second user with os.setuid")


def as_other_user(fn: Callable[[], None]) -> None:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            fn()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the other user's setup failed"


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A stand-in for /tmp: world-writable and sticky, outside pytest's private (0700) tmp dirs."""
    path = Path(tempfile.mkdtemp(prefix="aotbuild-multiuser-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def victim_docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("thesis.txt", ".draft.tmp", "a" * 64):
        (docs / name).write_text("precious")
        old = time.time() - 30 * 86400
        os.utime(docs / name, (old, old))
    return docs


def _intact(docs: Path) -> bool:
    return sorted(p.name for p in docs.iterdir()) == sorted(["thesis.txt", ".draft.tmp", "a" * 64])


def test_planted_compiler_temp_symlink_is_refused(shared_tmp: Path, victim_docs: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    base = shared_tmp / f"aotbuild-{os.getuid()}"
    monkeypatch.setattr(staging, "BASE", base)
    monkeypatch.setattr(compiler_temp, "BASE", base)

    def plant() -> None:
        base.mkdir(mode=0o755)
        os.symlink(victim_docs, base / "tmp")

    as_other_user(plant)
    store = LocalStore(tmp_path / "cache")
    with pytest.raises(InfraError, match="owned by uid 65534"):
        compiler_temp.collect(store, max_bytes=0, max_age_s=0)
    with pytest.raises(InfraError):
        staging._set_tmpdir()
    assert _intact(victim_docs)


def test_a_symlinked_temp_space_inside_our_own_base_is_refused(shared_tmp: Path, victim_docs: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/tmp/aotbuild-<uid> is ours, but its tmp is a symlink (planted while an older aotbuild left the base
    open to others): never followed."""
    base = shared_tmp / f"aotbuild-{os.getuid()}"
    base.mkdir(mode=0o700)
    os.symlink(victim_docs, base / "tmp")
    monkeypatch.setattr(staging, "BASE", base)
    monkeypatch.setattr(compiler_temp, "BASE", base)
    with pytest.raises(InfraError, match="symlink"):
        compiler_temp.collect(LocalStore(tmp_path / "cache"), max_bytes=0, max_age_s=0)
    assert _intact(victim_docs)


def _shared_cache(shared_tmp: Path) -> LocalStore:
    """A group-shared cache: every directory writable by the other user, as a setgid group dir would be."""
    store = LocalStore(shared_tmp / "cache")
    store.put_bytes(b"an entry")
    for d in [store.root, *[p for p in store.root.rglob("*") if p.is_dir()]]:
        d.chmod(0o777)
    return store


def test_shared_cache_temp_dir_swapped_for_a_symlink(shared_tmp: Path, victim_docs: Path) -> None:
    store = _shared_cache(shared_tmp)
    (store.base / "tmp").mkdir(mode=0o777, exist_ok=True)
    (store.base / "tmp").chmod(0o777)

    def swap() -> None:
        os.rmdir(store.base / "tmp")
        os.symlink(victim_docs, store.base / "tmp")

    as_other_user(swap)
    store.gc(max_bytes=0, max_age_s=60)
    assert _intact(victim_docs)


def test_shared_cache_shard_swapped_for_a_symlink(shared_tmp: Path, victim_docs: Path) -> None:
    store = _shared_cache(shared_tmp)
    shard = store.base / "cas" / "aa"

    def swap() -> None:
        os.symlink(victim_docs, shard)  # holds a file named like an entry of this shard

    as_other_user(swap)
    store.gc(max_bytes=0)
    assert _intact(victim_docs) and store.stats()["cas_entries"] == 0  # our own entry was evicted


def test_a_symlink_at_a_predictable_temp_name_is_not_written_through(shared_tmp: Path, victim_docs: Path) -> None:
    store = _shared_cache(shared_tmp)
    key = "b" * 64
    shard = store.base / "ac" / key[:2]
    shard.mkdir(parents=True, mode=0o777)
    shard.chmod(0o777)
    temp = shard / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"  # fsutil's temp name for this writer

    as_other_user(lambda: os.symlink(victim_docs / "thesis.txt", temp))
    store.put_action(key, {"blobs": []})
    assert (victim_docs / "thesis.txt").read_text() == "precious" and store.get_action(key) == {"blobs": []}

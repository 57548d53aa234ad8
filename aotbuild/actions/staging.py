"""Where AOTInductor compiles: fixed paths, so artifacts are byte-identical (docs/how-it-works.md)."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import filelock

from aotbuild.cache.compiler_temp import BASE, temp_lock_path
from aotbuild.errors import InfraError
from aotbuild.planning.toolchain import cpu_isa

KEY_CHARS = 24  # enough to never collide in one machine's /tmp, short enough for readable compiler lines


def _own_private_dir(path: Path) -> None:
    """/tmp is shared: the base dir must be ours, private and no symlink, or another user could swap it."""
    with suppress(FileExistsError):  # what is there is checked below
        path.mkdir(mode=0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise InfraError(f"{path} is not a directory owned by this user; remove it and build again")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours, but opened up (an older aotbuild, a umask): close it before use


def _torch_dir() -> Path:
    spec = importlib.util.find_spec("torch")  # locates without importing
    if spec is None or spec.origin is None or "torch" in sys.modules:
        raise InfraError("torch must be importable, and not yet imported, when staging a compile")
    return Path(spec.origin).parent


def _link_torch(torch_dir: Path) -> Path:
    """Make BASE/torch-<build>/torch (<build>: a digest of version.py) lead to an installed torch of this build;
    returns the dir to import from. A link to another venv's copy stays; one whose target is gone is replaced."""
    link_dir = BASE / f"torch-{hashlib.sha256((torch_dir / 'version.py').read_bytes()).hexdigest()[:16]}"
    link_dir.mkdir(mode=0o700, exist_ok=True)
    link = link_dir / "torch"
    current = Path(os.readlink(link)) if link.is_symlink() else None
    if current is None or not (current / "version.py").is_file():
        tmp = link_dir / f".torch.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(torch_dir, tmp)
        os.replace(tmp, link)
    return link_dir


def _prepare_import() -> None:
    """BASE ours, torch importable through its link, and what inductor reads once at import: precompiled headers
    under $TMPDIR, line tables off (they embed source paths; on only if the user asked: the variable is in the key)."""
    _own_private_dir(BASE)
    if "torch" not in sys.modules:  # else a warm worker imported it through the link already
        sys.path.insert(0, str(_link_torch(_torch_dir())))
    _set_tmpdir()
    os.environ.setdefault("AOT_INDUCTOR_ENABLE_LINE_TABLES", "0")


@contextmanager
def torch_imported_through_link() -> Iterator[None]:
    """Import torch as a compile would, for a warm worker: the actions it forks then see the same paths."""
    _prepare_import()
    import torch  # noqa: F401

    yield


@contextmanager
def using_temp_space() -> Iterator[None]:
    """Hold BASE/tmp (the precompiled headers) in use: shared among compiles, which never wait on each other;
    `cache gc` takes it exclusively, without waiting, and leaves the space alone when it cannot."""
    fd = os.open(temp_lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock; so does the kernel if the process is killed


def _set_tmpdir() -> None:
    """$TMPDIR holds the precompiled headers (on every compiler line): one fixed, private dir per user."""
    from aotbuild.cache.private_dirs import open_private

    tmp = BASE / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    fd = open_private(str(BASE.parent), (BASE.name, tmp.name))  # ours, no symlink: else InfraError
    if fd is not None:
        os.close(fd)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = None  # recomputed from it


@contextmanager
def staging_dir(cache_root: Path, key: str) -> Iterator[Path]:
    """A clean staging dir for `key`, with the environment inductor reads set; yields where to write the .pt2.
    Entered before torch is imported (or in a warm worker, which imported it through the link)."""
    _prepare_import()
    fixed = BASE / "k" / key[:KEY_CHARS]
    fixed.parent.mkdir(exist_ok=True)
    # Two builds with different cache roots may compile one key at once; they take turns on its dir.
    with filelock.FileLock(str(fixed) + ".lock"):
        # Fresh: a used inductor dir adds a second copy of the compile-command comments packaged in the .pt2.
        shutil.rmtree(fixed, ignore_errors=True)
        (fixed / "stage").mkdir(parents=True)
        seeds = cache_root / "inductor-seed" / cpu_isa().replace(":", "-")
        _copy_probes(seeds, fixed / "inductor")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(fixed / "inductor")
        try:
            with using_temp_space():
                yield fixed / "stage"
            _copy_probes(fixed / "inductor", seeds)
        finally:
            shutil.rmtree(fixed, ignore_errors=True)


def _copy_probes(src: Path, dst: Path) -> None:
    """Copy inductor's ISA-probe dirs (two-character names; ~8 s to build again) that `dst` lacks, each through
    a temp dir and a rename, so a reader never sees half a probe."""
    if not src.is_dir():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for probe in src.iterdir():
        if len(probe.name) == 2 and probe.is_dir() and not (dst / probe.name).exists():
            tmp = dst / f".{probe.name}.{os.getpid()}.tmp"
            shutil.copytree(probe, tmp)
            try:
                os.rename(tmp, dst / probe.name)
            except OSError:  # another compile put it there first
                shutil.rmtree(tmp, ignore_errors=True)

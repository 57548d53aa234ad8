"""Where AOTInductor compiles, chosen so that artifacts are byte-identical across checkouts, virtualenvs
and cache roots, while compiles still share the precompiled headers that make them fast.

Inductor bakes literal paths into what it generates, and never resolves symlinks:
- its cache dir, into kernel names and the .so: each compile key gets a fresh, fixed dir
  /tmp/aotbuild-<uid>/k/<key>/inductor (a warm one would gain a second copy of the compile-command
  comments that are packaged into the .pt2). It is seeded with inductor's CPU-ISA probes, kept in the cache
  root per ISA: without them every compile would build and run six probe programs again (~8 s);
- $TMPDIR, where the precompiled headers live (their path is on the compiler line), and torch's include
  dirs: /tmp/aotbuild-<uid>/root and /site are symlinks to the cache root in use and to the site-packages
  torch is imported from. Every compile sees the same paths, and the headers persist in the cache root.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from aotbuild.errors import InfraError
from aotbuild.planning.toolchain import cpu_isa

BASE = Path("/tmp") / f"aotbuild-{os.getuid()}"
KEY_CHARS = 24  # enough to never collide in one machine's /tmp, short enough for readable compiler lines


def _own_private_dir(path: Path) -> None:
    """/tmp is shared: the base dir must be ours, private and no symlink, or someone else could swap what
    inductor compiles. Fail closed."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise InfraError(f"{path} is not a directory owned by this user; remove it and build again")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours, but opened up (an older aotbuild, a umask): close it before use


# Set once in a warm worker (aotbuild.workers.server), which imported torch through BASE/site before forking
# its actions: where that link must point for them.
_preimported_site: Path | None = None


def _torch_site() -> Path:
    if "torch" in sys.modules and _preimported_site is not None:
        return _preimported_site
    spec = importlib.util.find_spec("torch")  # locates without importing
    if spec is None or spec.origin is None or "torch" in sys.modules:
        raise InfraError("torch must be importable, and not yet imported, when staging a compile")
    return Path(spec.origin).parent.parent


def _relink(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


@contextmanager
def _shared_links(cache_root: Path) -> Iterator[None]:
    """Point BASE/root and BASE/site where this compile needs them, and keep them so until it ends.

    A readers-writer lock: compiles that agree on both links (one cache, one virtualenv: the usual case)
    hold it shared and run side by side; one that needs them elsewhere waits for those to finish."""
    want = {"root": cache_root.resolve(), "site": _torch_site()}
    fd = os.open(BASE / "links.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if any(not (BASE / n).is_symlink() or Path(os.readlink(BASE / n)) != t for n, t in want.items()):
            fcntl.flock(fd, fcntl.LOCK_EX)  # not atomic, so the links are set only while holding it
            for name, target in want.items():
                _relink(BASE / name, target)
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock; so does the kernel if the process is killed


@contextmanager
def torch_imported_through_site() -> Iterator[None]:
    """Import torch as a compile would (through BASE/site, with inductor's import-time settings), for a warm
    worker: the actions it forks then see the same paths, so they produce the same bytes. Holds the links'
    lock for the duration (shared once BASE/site is right) and yields with torch imported."""
    global _preimported_site
    _own_private_dir(BASE)
    site = _torch_site()
    fd = os.open(BASE / "links.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _relink(BASE / "site", site)
        fcntl.flock(fd, fcntl.LOCK_SH)
        sys.path.insert(0, str(BASE / "site"))
        # Read once, at import: precompiled headers under $TMPDIR, line tables off (as staging_dir sets them).
        os.environ["TMPDIR"] = str(BASE / "root" / "tmp")
        os.environ.setdefault("AOT_INDUCTOR_ENABLE_LINE_TABLES", "0")
        import torch  # noqa: F401

        _preimported_site = site
        yield
    finally:
        os.close(fd)


@contextmanager
def staging_dir(cache_root: Path, key: str) -> Iterator[Path]:
    """A clean staging dir for `key`, with the environment inductor reads set; yields where to write the .pt2.

    Must be entered before torch is imported: inductor reads these variables once, and torch must be
    imported through BASE/site."""
    _own_private_dir(BASE)
    (cache_root / "tmp").mkdir(parents=True, exist_ok=True)
    fixed = BASE / "k" / key[:KEY_CHARS]
    fixed.parent.mkdir(exist_ok=True)
    # Two builds with different cache roots may compile one key at once; they take turns on its dir.
    with filelock.FileLock(str(fixed) + ".lock"), _shared_links(cache_root):
        shutil.rmtree(fixed, ignore_errors=True)
        (fixed / "stage").mkdir(parents=True)
        seeds = cache_root / "inductor-seed" / cpu_isa().replace(":", "-")
        _copy_probes(seeds, fixed / "inductor")
        sys.path.insert(0, str(BASE / "site"))
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(fixed / "inductor")
        os.environ["TMPDIR"] = str(BASE / "root" / "tmp")
        # Line tables embed source paths; off unless the user asked for them (the variable is in the key).
        os.environ.setdefault("AOT_INDUCTOR_ENABLE_LINE_TABLES", "0")
        try:
            yield fixed / "stage"
            _copy_probes(fixed / "inductor", seeds)
        finally:
            shutil.rmtree(fixed, ignore_errors=True)


def _copy_probes(src: Path, dst: Path) -> None:
    """Copy inductor's ISA-probe dirs (two-character names; per-graph output dirs have long ones) that `dst`
    lacks, each through a temp dir and a rename, so a reader never sees half a probe."""
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

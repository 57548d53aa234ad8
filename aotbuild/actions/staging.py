"""Where AOTInductor compiles, chosen so that artifacts are byte-identical across checkouts and cache roots.

Inductor bakes literal paths into what it generates: its cache dir (into kernel names and the .so), and
$TMPDIR (the precompiled-header path on the compiler command line). It never resolves symlinks. So each
compile key gets a fixed literal directory /tmp/aotbuild-<uid>/<key>/ whose `root` symlink points at the
cache root in use: the paths inductor sees are the same everywhere, while the precompiled headers persist
in the cache. Inductor's per-graph dir is fresh each time, because a warm one gains a second copy of the
compile-command comments that are packaged into the .pt2.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from ..errors import InfraError

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
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise InfraError(f"{path} is not a private directory owned by this user; remove it and build again")


@contextmanager
def staging_dir(cache_root: Path, key: str) -> Iterator[Path]:
    """Hold the machine-wide lock for `key` and yield a clean staging dir; sets the env vars inductor reads.

    Must be entered before torch is imported: inductor reads these variables once."""
    _own_private_dir(BASE)
    fixed = BASE / key[:KEY_CHARS]
    # Two builds with different cache roots may compile one key at once; they take turns on the fixed path.
    with filelock.FileLock(str(fixed) + ".lock"):
        shutil.rmtree(fixed, ignore_errors=True)
        (fixed / "stage").mkdir(parents=True)
        (cache_root / "tmp").mkdir(parents=True, exist_ok=True)
        os.symlink(cache_root.resolve(), fixed / "root")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(fixed / "inductor")
        os.environ["TMPDIR"] = str(fixed / "root" / "tmp")
        # Line tables embed source paths; off unless the user asked for them (the variable is in the key).
        os.environ.setdefault("AOT_INDUCTOR_ENABLE_LINE_TABLES", "0")
        try:
            yield fixed / "stage"
        finally:
            shutil.rmtree(fixed, ignore_errors=True)

"""Where AOTInductor compiles, chosen so that artifacts are byte-identical across checkouts and cache roots.

Inductor bakes literal paths into what it generates: its cache dir (into kernel names and the .so), $TMPDIR
(the precompiled-header path on the compiler command line) and torch's include dirs. It never resolves
symlinks. So each compile key gets a fixed literal directory /tmp/aotbuild-<uid>/<key>/ whose `root` symlink
points at the cache root in use and whose `site` symlink points at the site-packages torch is imported from:
the paths inductor sees are the same everywhere, while the precompiled headers persist in the cache. Inductor's per-graph dir is fresh each time, because a warm one gains a second copy of the
compile-command comments that are packaged into the .pt2.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import sys
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
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise InfraError(f"{path} is not a directory owned by this user; remove it and build again")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours, but opened up (an older aotbuild, a umask): close it before use


def _import_torch_through(link: Path) -> None:
    """Make `import torch` resolve through `link`, a symlink to the real site-packages: the compiler's
    -I .../torch/include paths, which end up in the .so, are then the same in every virtualenv."""
    spec = importlib.util.find_spec("torch")  # locates without importing
    if spec is None or spec.origin is None or "torch" in sys.modules:
        raise InfraError("torch must be importable, and not yet imported, when staging a compile")
    os.symlink(Path(spec.origin).parent.parent, link)
    sys.path.insert(0, str(link))


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
        _import_torch_through(fixed / "site")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(fixed / "inductor")
        os.environ["TMPDIR"] = str(fixed / "root" / "tmp")
        # Line tables embed source paths; off unless the user asked for them (the variable is in the key).
        os.environ.setdefault("AOT_INDUCTOR_ENABLE_LINE_TABLES", "0")
        try:
            yield fixed / "stage"
        finally:
            # The symlinks stay: torch, loaded through `site`, may still import lazily until exit.
            for scratch in ("stage", "inductor"):
                shutil.rmtree(fixed / scratch, ignore_errors=True)

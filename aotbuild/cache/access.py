"""How one build uses its cache: writable, under a lease that keeps `cache gc` off what it uses, or read-only."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from aotbuild import layout
from aotbuild.cache.local import LAYOUT
from aotbuild.fsutil import check_writable, write_if_changed
from aotbuild.hashing import pretty_json
from aotbuild.workspace import settings

LEASES = "leases"
# Entries used this long before a live build started still count as used by it (coarse file timestamps).
LEASE_SLACK_S = 2.0


def overlay_dir(out_dir: Path) -> Path:
    """Where a build with a read-only cache keeps what it had to build itself: inside aot-out/ only."""
    return out_dir / layout.STATE_DIR / "cache"


def record_root(out_dir: Path, root: Path) -> None:
    """Tell this build's actions (and plain ninja's, later) which cache root it resolved: beside the plan,
    not in an edge's command or inputs, since moving the cache changes no output."""
    write_if_changed(out_dir / layout.CACHE_ROOT_FILE, pretty_json({"root": str(root)}))


def recorded_root(env: Mapping[str, str], out_dir: Path) -> Path:
    """The cache root an action uses: the one the last build here recorded; before any build, the one the CLI
    would resolve without flags ($AOTBUILD_CACHE_DIR, WORKSPACE cache.dir from the plan, the default)."""
    try:
        return Path(json.loads((out_dir / layout.CACHE_ROOT_FILE).read_text())["root"])
    except FileNotFoundError:
        from aotbuild.planning.plan_index import read_plan

        plan = read_plan(out_dir)
        return settings.cache_dir(env, None, plan.cache_dir if plan else None, out_dir.parent)


@dataclass(frozen=True)
class CacheAccess:
    root: Path
    out_dir: Path
    writable: bool
    warning: str | None

    @classmethod
    def open(cls, root: Path, out_dir: Path) -> CacheAccess:
        try:
            (root / LAYOUT).mkdir(parents=True, exist_ok=True)
            check_writable(root / LAYOUT)
            return cls(root, out_dir, True, None)
        except OSError:
            return cls(root, out_dir, False, f"cache {root} cannot be written: using it read-only (hits are used, "
                                             f"anything missing is built into {overlay_dir(out_dir)} only)")

    def env(self) -> dict[str, str]:
        """What the actions need to know: a read-only cache is read through, never written."""
        return {} if self.writable else {settings.CACHE_READONLY_VAR: "1"}

    @contextlib.contextmanager
    def lease(self) -> Iterator[tuple[int, ...]]:
        """Hold a lease on the cache for the build; yields descriptors for ninja and the actions to inherit,
        so a lease stays live while any of them runs, even after the CLI itself is killed."""
        if not self.writable:
            yield ()
            return
        directory = self.root / LAYOUT / LEASES
        directory.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=directory, prefix="build-", suffix=".lease")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # The output dir lets gc keep what this workspace's targets last used, not only what was used since.
            os.write(fd, f"{os.getpid()} {time.time()} {self.out_dir}\n".encode())
            yield (fd,)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.close(fd)


@dataclass(frozen=True)
class LiveLeases:
    since: float | None  # start of the oldest running build (minus slack), None when none runs
    out_dirs: tuple[Path, ...]  # the output directories of the running builds


def live_leases(base: Path) -> LiveLeases:
    """The builds holding a lease on the cache at `base` (root/v1). A lease file whose lock can be taken
    belongs to a build that is gone: it is removed."""
    starts: list[float] = []
    out_dirs: list[Path] = []
    try:
        names = [name for name in os.listdir(base / LEASES) if name.endswith(".lease")]
    except FileNotFoundError:
        names = []
    for name in names:
        path = base / LEASES / name
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held: the build runs
            started = os.fstat(fd).st_mtime
            fields = os.read(fd, 4096).decode(errors="replace").rstrip("\n").split(" ", 2)
            with contextlib.suppress(ValueError, IndexError):
                started = min(started, float(fields[1]))
            starts.append(started)
            out_dirs.extend(Path(f) for f in fields[2:])
        else:
            # The build is gone; a new one never reuses a name (mkstemp), so removing it is safe.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        finally:
            os.close(fd)
    return LiveLeases(min(starts) - LEASE_SLACK_S if starts else None, tuple(out_dirs))

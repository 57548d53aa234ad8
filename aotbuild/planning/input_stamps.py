"""Content stamps: one file per input an action read, given a new mtime only when the input's content changed."""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from aotbuild import layout
from aotbuild.fsutil import atomic_write, create_if_missing
from aotbuild.hashing import sha256_bytes, sha256_file
from aotbuild.planning.file_state import FileState, signature
from aotbuild.planning.file_state import observe as observe_file

STAMP_DIR = f"{layout.STATE_DIR}/inputs"  # relative to aot-out/

# What this process hashed, by path: an export states its inputs before it runs and after, and a weights file of
# gigabytes must not be read twice. Trusted as the stamps are: the same signature, and not racily clean.
_hashed: dict[str, FileState] = {}


def file_key(path: str) -> str:
    """A file input: workspace-relative, or absolute for files outside the workspace."""
    return f"file:{path}"


def keys_for(files: Iterable[str], globs: Iterable[str] = (), env: Iterable[str] = ()) -> list[str]:
    return [file_key(f) for f in files] + [f"glob:{g}" for g in globs] + [f"env:{e}" for e in env]


def stamp_path(key: str) -> str:
    """The stamp of `key`, relative to aot-out/: named by a digest of the key (paths may hold any character)."""
    return f"{STAMP_DIR}/{key.partition(':')[0]}-{sha256_bytes(key.encode())[:32]}"


def glob_matches(root: Path, pattern: str) -> list[str]:
    """Workspace-relative files a `data:` glob matches now, sorted; aot-out/ never counts."""
    return sorted(Path(p).as_posix() for p in glob.glob(pattern, root_dir=root, recursive=True)
                  if not p.startswith(f"{layout.OUT_DIR}/") and os.path.isfile(root / p))


def observe(root: Path, key: str, environ: Mapping[str, str]) -> FileState:
    """The input's current state. A file's signature is taken before it is hashed: an edit in between moves
    the signature, so the next refresh hashes it again."""
    kind, _, what = key.partition(":")
    if kind == "env":
        value = environ.get(what)
        return FileState(None, None if value is None else sha256_bytes(value.encode()))
    if kind == "glob":
        return FileState(None, sha256_bytes("\n".join(glob_matches(root, what)).encode()))
    path = root / what  # an absolute `what` stays absolute
    now = time.time_ns()
    sig = signature(str(path))
    if sig is None:
        return FileState(None, None)
    known = _hashed.get(str(path))
    if known is not None and known.sig == sig and not known.racy:
        return known
    try:
        digest = sha256_file(path)
    except (FileNotFoundError, NotADirectoryError):
        return FileState(None, None)
    except IsADirectoryError:
        digest = "directory"
    seen = _hashed[str(path)] = observe_file(sig, digest, now)
    return seen


def _encode(key: str, seen: FileState) -> bytes:
    return json.dumps({"key": key, "sig": seen.sig, "digest": seen.digest, "racy": seen.racy}).encode()


def _read(stamp: Path) -> tuple[str, FileState] | None:
    try:
        data = json.loads(stamp.read_bytes())
        return data["key"], FileState(data["sig"], data["digest"], data["racy"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def input_of(stamp: Path) -> str | None:
    """What a stamp stands for, as people name it: a file's path, `glob:<pattern>` or `env:<name>`."""
    found = _read(stamp)
    return None if found is None else found[0].removeprefix("file:")


def ensure(out_dir: Path, observed: Mapping[str, FileState]) -> list[str]:
    """Stamps for the inputs an action read, as it observed them; returns their paths (relative to aot-out/).
    Only missing ones are created (first writer wins, dated now); `refresh` alone updates existing ones."""
    paths = [stamp_path(key) for key in observed]
    for path, (key, seen) in zip(paths, observed.items()):
        if not os.path.exists(out_dir / path):
            (out_dir / path).parent.mkdir(parents=True, exist_ok=True)
            create_if_missing(out_dir / path, _encode(key, seen))
    return paths


def refresh(root: Path, out_dir: Path, environ: Mapping[str, str]) -> list[str]:
    """Before ninja runs: bring every stamp up to date with its input; returns the keys whose content changed.
    Hashes only files whose signature moved or was racy; a stamp whose content is unchanged keeps its mtime."""
    directory = out_dir / STAMP_DIR
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    changed = []
    for name in names:
        if name.startswith("."):
            continue
        stamp = directory / name
        read = _read(stamp)
        if read is None:  # damaged: remove it; ninja re-runs every action that named it, which recreates it
            stamp.unlink(missing_ok=True)
            continue
        key, old = read
        if key.startswith("file:") and not old.racy and old.sig == signature(str(root / key.removeprefix("file:"))):
            continue
        new = observe(root, key, environ)
        if new == old:
            continue
        old_ns = os.stat(stamp).st_mtime_ns
        atomic_write(stamp, _encode(key, new), durable=False)
        if new.digest == old.digest:  # only the signature moved: ninja must not notice
            os.utime(stamp, ns=(old_ns, old_ns))
        else:  # ninja must notice: the new mtime is later than the old one even on a coarse clock
            changed.append(key)
            if os.stat(stamp).st_mtime_ns <= old_ns:
                os.utime(stamp, ns=(old_ns + 1_000_000, old_ns + 1_000_000))
    return changed

"""Content stamps: one small file per input an action read, rewritten (with a fresh mtime) only when the input's
content changed, so that ninja, which compares mtimes, judges every input by content.

An input is a file (a model source, a helper module, a weights file through its symlinks, a data file, a module
found outside the workspace, a module the model looked for and did not find), a glob over workspace files (the
list of names it matches), or an environment variable. The export's depfile names these stamps instead of the
inputs themselves, so `touch` rebuilds nothing while an edit with any mtime (`cp -p`, `touch -d`, a checkout
that keeps times) is seen. Like git's index, each stamp keeps the input's stat signature (mtime, ctime, size,
inode; ctime cannot be set back by users): `refresh`, before ninja runs, stats every input and hashes only
those whose signature moved, or whose last hash was too close to their last modification to trust
("racily clean"). Actions create missing stamps; only `refresh` changes existing ones. No torch.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aotbuild import layout
from aotbuild.fsutil import atomic_write, create_if_missing
from aotbuild.hashing import sha256_bytes, sha256_file
from aotbuild.planning.file_state import RACY_NS, signature

STAMP_DIR = f"{layout.STATE_DIR}/inputs"  # relative to aot-out/
FILE, GLOB, ENV = "file", "glob", "env"


@dataclass(frozen=True)
class Seen:
    """An input as observed: its stat signature (files only), a digest of its content, and whether that
    signature is too fresh to vouch for the content next time."""

    sig: list[int] | None
    digest: str | None
    racy: bool = False

    def to_json(self, key: str) -> bytes:
        return json.dumps({"key": key, "sig": self.sig, "digest": self.digest, "racy": self.racy}).encode()


def file_key(path: str) -> str:
    """A file input: workspace-relative, or absolute for files outside the workspace."""
    return f"{FILE}:{path}"


def glob_key(pattern: str) -> str:
    return f"{GLOB}:{pattern}"


def env_key(name: str) -> str:
    return f"{ENV}:{name}"


def stamp_path(key: str) -> str:
    """The stamp of `key`, relative to aot-out/: named by a digest of the key (paths may hold any character)."""
    kind = key.partition(":")[0]
    return f"{STAMP_DIR}/{kind}-{sha256_bytes(key.encode())[:32]}"


def glob_matches(root: Path, pattern: str) -> list[str]:
    """Workspace-relative files a `data:` glob matches now, sorted; aot-out/ never counts."""
    found = []
    for path in glob.glob(pattern, root_dir=root, recursive=True):
        if not path.startswith(f"{layout.OUT_DIR}/") and os.path.isfile(root / path):
            found.append(Path(path).as_posix())
    return sorted(found)


def observe(root: Path, key: str, environ: Mapping[str, str]) -> Seen:
    """The input's current state. A file's signature is taken before it is hashed: an edit in between moves
    the signature, so the next refresh hashes it again."""
    kind, _, what = key.partition(":")
    if kind == ENV:
        value = environ.get(what)
        return Seen(None, None if value is None else sha256_bytes(value.encode()))
    if kind == GLOB:
        return Seen(None, sha256_bytes("\n".join(glob_matches(root, what)).encode()))
    path = root / what  # an absolute `what` stays absolute
    now = time.time_ns()
    sig = signature(str(path))
    if sig is None:
        return Seen(None, None)
    known = _hashed.get(str(path))
    if known is not None and known.sig == sig and not known.racy:
        return known
    try:
        digest = sha256_file(path)
    except (FileNotFoundError, NotADirectoryError):
        return Seen(None, None)
    except IsADirectoryError:
        digest = "directory"
    seen = Seen(sig, digest, max(sig[0], sig[1]) >= now - RACY_NS)
    _hashed[str(path)] = seen
    return seen


# What this process hashed, by path: an export looks its inputs up before it runs and states them again after,
# and a weights file of gigabytes must not be read twice. Trusted only under git's rule, as the stamps are: the
# same signature, taken long enough after the last modification that an edit must have moved it.
_hashed: dict[str, Seen] = {}


def _read(stamp: Path) -> tuple[str, Seen] | None:
    try:
        data = json.loads(stamp.read_bytes())
        return data["key"], Seen(data["sig"], data["digest"], data["racy"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def input_of(stamp: Path) -> str | None:
    """What a stamp stands for, as people name it: a file's path, `glob:<pattern>` or `env:<name>`."""
    found = _read(stamp)
    if found is None:
        return None
    kind, _, what = found[0].partition(":")
    return what if kind == FILE else found[0]


def _create(stamp: Path, key: str, seen: Seen) -> None:
    """Create a missing stamp, first writer wins (two exports may create one at once): its mtime is the
    time of creation, never earlier, so no output already built is taken for newer than it."""
    stamp.parent.mkdir(parents=True, exist_ok=True)
    create_if_missing(stamp, seen.to_json(key))


def ensure(out_dir: Path, observed: Mapping[str, Seen]) -> list[str]:
    """Stamps for the inputs an action read, as the action observed them; returns their paths (relative to
    aot-out/). An existing stamp is left alone: if the action saw newer content than it holds, the next
    refresh finds the input's signature moved and its content different, and rewrites it then."""
    paths = []
    for key, seen in observed.items():
        path = stamp_path(key)
        if not os.path.exists(out_dir / path):
            _create(out_dir / path, key, seen)
        paths.append(path)
    return paths


def refresh(root: Path, out_dir: Path, environ: Mapping[str, str]) -> list[str]:
    """Before ninja runs: bring every stamp up to date with its input; returns the keys whose content changed.

    Stats each file input, hashes only those whose signature moved or was racy; a stamp whose content is
    unchanged keeps its mtime (ninja sees nothing), a changed one gets a fresh one."""
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
        if key.startswith(f"{FILE}:") and not old.racy and old.sig == signature(str(root / key[len(FILE) + 1:])):
            continue
        new = observe(root, key, environ)
        if new.digest != old.digest:
            _rewrite(stamp, key, new, None)
            changed.append(key)
        elif new != old:
            _rewrite(stamp, key, new, os.stat(stamp).st_mtime_ns)
    return changed


def _rewrite(stamp: Path, key: str, seen: Seen, keep_mtime_ns: int | None) -> None:
    """Replace a stamp; with `keep_mtime_ns`, ninja must not notice (the content is unchanged), else it must:
    the new mtime is then later than the old one even on a coarse clock."""
    old_ns = os.stat(stamp).st_mtime_ns
    atomic_write(stamp, seen.to_json(key), durable=False)
    if keep_mtime_ns is not None:
        os.utime(stamp, ns=(keep_mtime_ns, keep_mtime_ns))
    elif os.stat(stamp).st_mtime_ns <= old_ns:
        os.utime(stamp, ns=(old_ns + 1_000_000, old_ns + 1_000_000))


def keys_for(files: Iterable[str], globs: Iterable[str] = (), env: Iterable[str] = ()) -> list[str]:
    return [file_key(f) for f in files] + [glob_key(g) for g in globs] + [env_key(e) for e in env]

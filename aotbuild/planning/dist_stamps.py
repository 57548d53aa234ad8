"""One small file per installed distribution an export imported, holding only its name and version.

The export's depfile names these instead of the distributions' own METADATA: `pip install -e .` and
`.ci/setup` rewrite METADATA (new mtime, same version), which made ninja re-run every export. Each build
refreshes the stamps from the installed versions and rewrites only those whose version changed, so an
upgrade re-runs the exports that imported that distribution and a reinstall re-runs none. No torch.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from aotbuild import layout
from aotbuild.fsutil import create_if_missing, write_if_changed

STAMP_DIR = f"{layout.STATE_DIR}/dists"  # relative to aot-out/


def normalize(name: str) -> str:
    """PEP 503 normalized name: 'MarkupSafe' and 'markupsafe', 'typing_extensions' and 'typing-extensions' agree."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """normalized name -> version, from the `.dist-info` directory names on sys.path (first one wins, as for
    imports). Listing a few directories costs about a millisecond; reading every METADATA would cost tens."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist, _, version = name[: -len(".dist-info")].partition("-")
                if version:
                    found.setdefault(normalize(dist), version)
    return found


def version_of(name: str, installed: dict[str, str]) -> str | None:
    found = installed.get(normalize(name))
    if found is not None:
        return found
    import importlib.metadata  # only for the rare distribution without a .dist-info directory

    try:  # egg-info and other layouts the directory names do not spell out
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def stamp_path(name: str) -> str:
    """The stamp of distribution `name`, relative to aot-out/. Names come from installed distributions or
    checked cache payloads (cache/payloads.py): anything else is a bug, never a path to write."""
    normalized = normalize(name)
    if not _NAME.fullmatch(normalized):
        raise ValueError(f"not a distribution name: {name!r}")
    return f"{STAMP_DIR}/{normalized}"


def _content(name: str, version: str | None) -> bytes:
    return f"{normalize(name)}=={version if version is not None else '(not installed)'}\n".encode()


def _create(target: Path, data: bytes) -> None:
    """A missing stamp, first writer wins (two exports may create one at once). Its mtime is the time of
    creation, never earlier: a stamp recreated after deletion with a newer version must be newer than the
    outputs of every export that imported the older one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not create_if_missing(target, data):
        write_if_changed(target, data)


def write_stamps(out_dir: Path, names: list[str], installed: dict[str, str] | None = None) -> list[str]:
    """Stamp each distribution with its installed version (rewritten only on change); returns their paths.
    `installed` is installed_versions(), for a caller stamping many targets at once.

    Call it before writing the outputs whose depfile names the stamps: a dependency must not be newer."""
    if installed is None:
        installed = installed_versions()
    paths = []
    for name in names:
        path = stamp_path(name)
        target = out_dir / path
        data = _content(name, version_of(name, installed))
        if os.path.exists(target):
            write_if_changed(target, data)
        else:
            _create(target, data)
        paths.append(path)
    return paths


def refresh(out_dir: Path) -> None:
    """Before ninja runs: bring every existing stamp up to date with what is installed now."""
    try:
        with os.scandir(out_dir / STAMP_DIR) as it:
            # Only stamps this module wrote: a directory or link left there (once by a forged cache entry
            # naming "evil/stamp") is no stamp, and writing through it must never fail every later build.
            stamps = sorted(e.path for e in it if _NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return
    installed = installed_versions()
    for path in stamps:
        name = os.path.basename(path)
        write_if_changed(Path(path), _content(name, version_of(name, installed)))

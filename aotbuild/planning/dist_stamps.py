"""One stamp per installed distribution an export imported, holding its name and version, never its METADATA."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from aotbuild import layout
from aotbuild.fsutil import create_if_missing, write_if_changed

STAMP_DIR = f"{layout.STATE_DIR}/dists"  # relative to aot-out/
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


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
            dist, _, version = name.removesuffix(".dist-info").partition("-")
            if name.endswith(".dist-info") and version:
                found.setdefault(normalize(dist), version)
    return found


def stamp_path(name: str) -> str:
    """The stamp of distribution `name`, relative to aot-out/. Names come from installed distributions or
    checked cache payloads (cache/payloads.py): anything else is a bug, never a path to write."""
    normalized = normalize(name)
    if not _NAME.fullmatch(normalized):
        raise ValueError(f"not a distribution name: {name!r}")
    return f"{STAMP_DIR}/{normalized}"


def _content(name: str, installed: dict[str, str]) -> bytes:
    version = installed.get(normalize(name))
    if version is None:
        import importlib.metadata  # only for the rare distribution without a .dist-info directory (egg-info)

        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "(not installed)"
    return f"{normalize(name)}=={version}\n".encode()


def write_stamps(out_dir: Path, names: list[str], installed: dict[str, str] | None = None) -> list[str]:
    """Stamp each distribution with its installed version (rewritten only on change); returns their paths.
    Call it before writing the outputs whose depfile names the stamps: a dependency must not be newer."""
    installed = installed_versions() if installed is None else installed
    paths = [stamp_path(name) for name in names]
    for name, path in zip(names, paths):
        target, data = out_dir / path, _content(name, installed)
        if not os.path.exists(target):
            # First writer wins (two exports may create one at once), dated now: a stamp recreated with a newer
            # version must be newer than the outputs of every export that imported the older one.
            target.parent.mkdir(parents=True, exist_ok=True)
            if create_if_missing(target, data):
                continue
        write_if_changed(target, data)
    return paths


def refresh(out_dir: Path) -> None:
    """Before ninja runs: bring every existing stamp up to date with what is installed now."""
    try:
        with os.scandir(out_dir / STAMP_DIR) as it:
            # Only stamps this module wrote: a directory or link there (a forged cache entry's "evil/stamp") is
            # none, and writing through it must never fail every later build.
            stamps = sorted(e.path for e in it if _NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return
    installed = installed_versions()
    for path in stamps:
        write_if_changed(Path(path), _content(os.path.basename(path), installed))

"""What an export depended on (files read, absent, outside; variables; distributions): its depfile and key."""

from __future__ import annotations

import glob
import importlib.metadata
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aotbuild.errors import ActionError
from aotbuild.planning import dist_stamps, input_stamps
from aotbuild.workspace import settings

# An input of every export that imported a module from outside the workspace and the installations.
PYTHONPATH = "PYTHONPATH"
FILE_LISTS = ("files", "absent", "external")


def expand_data(root: Path, entries: list[str]) -> tuple[list[str], list[str]]:
    """A target's `data:` as (files, globs): plain paths (a missing one too) and each glob's matches now."""
    globs = sorted(entry for entry in entries if glob.has_magic(entry))
    files = {entry for entry in entries if entry not in globs}
    for pattern in globs:
        files.update(input_stamps.glob_matches(root, pattern))
    return sorted(files), globs


def distributions(by_module: Mapping[str, list[str]]) -> list[str]:
    """Installed distributions the process imported from (torch, its dependencies, the model's libraries)."""
    tops = {name.partition(".")[0] for name in list(sys.modules)}
    names = {dist for top in tops - set(sys.stdlib_module_names) for dist in by_module.get(top, [])}
    return sorted(names, key=str.lower)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def input_keys(deps: Mapping[str, list[str]]) -> list[str]:
    """The content-stamp keys of a dependency list (older entries lack the newer fields)."""
    files = [f for name in FILE_LISTS for f in deps.get(name, [])]
    return input_stamps.keys_for(files, deps.get("globs", []), deps.get("env", []))


def observed(root: Path, deps: Mapping[str, list[str]]) -> dict[str, input_stamps.FileState]:
    environ = settings.environ()
    return {key: input_stamps.observe(root, key, environ) for key in input_keys(deps)}


def state(root: Path, deps: dict[str, list[str]]) -> dict[str, Any]:
    """The current content of a dependency list: input digests (None where missing) and distribution versions."""
    seen = observed(root, deps)
    files = {rel: seen[input_stamps.file_key(rel)].digest for rel in deps["files"]}
    plain = {input_stamps.file_key(rel) for rel in deps["files"]}
    inputs = {key: s.digest for key, s in seen.items() if key not in plain}
    found: dict[str, Any] = {"files": files, "packages": {name: _version(name) for name in deps["packages"]}}
    if inputs:  # absent: the same key as before these inputs were tracked
        found["inputs"] = inputs
    return found


def depfile_paths(root: Path, out_dir: Path, deps: dict[str, list[str]], expected: dict[str, Any],
                  label: str, installed: dict[str, str] | None = None) -> list[str]:
    """Absolute paths for the depfile: a content stamp per input, a version stamp per distribution. A stamp
    created now must describe the content `expected` (state() as the key saw it), or the export saw other code."""
    seen = {k: s for k, s in observed(root, deps).items()
            if not os.path.exists(out_dir / input_stamps.stamp_path(k))}
    digests = {**{input_stamps.file_key(f): d for f, d in expected["files"].items()}, **expected.get("inputs", {})}
    for key, s in seen.items():
        if key in digests and s.digest != digests[key]:
            raise ActionError(label, "export", f"{key.partition(':')[2]} changed while the model was being "
                              "exported; build again")
    stamps = input_stamps.ensure(out_dir, seen) + [input_stamps.stamp_path(k) for k in input_keys(deps)
                                                  if k not in seen]
    dists = dist_stamps.write_stamps(out_dir, deps["packages"], installed)
    return [str(out_dir / s) for s in sorted(set(stamps))] + [str(out_dir / s) for s in dists]


def check_unchanged_since(root: Path, deps: Mapping[str, list[str]], started_ns: int, label: str) -> None:
    """Refuse an export whose inputs were edited while it ran (ccache's "file too new" rule): the digests
    taken now might not be of the code that was imported. ctime too: an edit that restores the mtime moves it."""
    absent = set(deps.get("absent", []))
    for rel in [*deps["files"], *deps.get("absent", []), *deps.get("external", [])]:
        try:
            st = os.stat(root / rel)
        except FileNotFoundError:
            if rel in absent:
                continue
            raise ActionError(label, "export", f"{rel} was removed while the model was being exported") from None
        if rel in absent or max(st.st_mtime_ns, st.st_ctime_ns) >= started_ns:
            raise ActionError(label, "export", f"{rel} changed while the model was being exported; build again")

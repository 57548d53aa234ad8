"""Before ninja runs: no foreign symlinks in aot-out/, and artifacts (no ninja outputs) that match their manifests."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aotbuild import rules
from aotbuild.cache import payloads
from aotbuild.engine.context import unlink_foreign_symlinks
from aotbuild.hashing import sha256_file
from aotbuild.layout import TargetPaths
from aotbuild.rules.compile import ARTIFACTS, MANIFEST
from aotbuild.workspace.labels import Label


def _drop_done_markers(target_dir: Path) -> None:
    """Remove the goals telling ninja the artifacts (no ninja nodes) were built or checked: it re-links them."""
    for kind in rules.kinds():
        if kind.goal == MANIFEST or MANIFEST in kind.inputs:
            (target_dir / kind.goal).unlink(missing_ok=True)


def repair_mismatched(target_dir: Path) -> list[Path]:
    """Remove (and return) the artifacts differing from manifest.json, and the markers: the next build redoes them."""
    try:
        artifacts = json.loads((target_dir / MANIFEST).read_text())["artifacts"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return []
    bad = []
    for art in artifacts.values():
        if not (isinstance(art, dict) and payloads.is_plain_name(art.get("file"))):
            bad = [target_dir / MANIFEST]  # not one aotbuild writes: rebuild
            break
        path = target_dir / art["file"]
        try:
            if path.is_symlink() or sha256_file(path) != art["sha256"]:
                bad.append(path)
        except FileNotFoundError:
            bad.append(path)
    for path in bad:
        path.unlink(missing_ok=True)
    if bad:
        _drop_done_markers(target_dir)
    return bad


def prepare(out_dir: Path, labels: list[Label], full: bool) -> list[str]:
    """Warnings for the user; under the workspace lock. `full` (`aotbuild test`, which trusts cached
    verifications) rehashes every artifact; otherwise only missing ones are noticed, a stat per file."""
    all_paths = [TargetPaths(label) for label in labels]
    warnings = unlink_foreign_symlinks(out_dir, [p.dir for p in all_paths])
    for paths in all_paths:
        target_dir = f"{out_dir}/{paths.dir}"
        # Two stats per target when both aliases are there (a manifest or not, nothing to drop then).
        if all(os.path.exists(f"{target_dir}/{paths.alias(ext)}") for ext in ARTIFACTS):
            if full:
                for path in repair_mismatched(Path(target_dir)):
                    warnings.append(f"{path} does not match the sha256 in its manifest.json (changed in place?); "
                                    "removed it, rebuilding")
        elif os.path.exists(f"{target_dir}/{MANIFEST}"):
            _drop_done_markers(Path(target_dir))
    return warnings

"""The workspace files an action ships to a node: chosen and hashed on the client, checked and laid out there."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aotbuild import layout
from aotbuild.actions import dependencies, trust
from aotbuild.cache import payloads
from aotbuild.errors import InfraError

Manifest = dict[str, dict[str, Any]]  # workspace-relative path -> {"sha256": digest, "mode": 0o644 | 0o755}
MODES = (0o644, 0o755)  # all a node reproduces: whether a file is executable, nothing else of its permissions
MAX_FILES = 20_000  # a manifest naming more is forged (or a workspace of generated sources nobody meant to ship)


class ManifestError(InfraError):
    """A manifest a node must not lay out: a name that is not a plain path inside the workspace, a bad digest or
    mode, or one path that is both a file and a directory."""


def known_files(root: Path, lists: list[dict[str, list[str]]], spec: dict[str, Any]) -> list[str]:
    """What the export reads as its recorded dependency lists know it, as the files are now: their files, the
    absent ones that exist now (a module added where an import looked), each `data:` glob's current matches,
    the declared weights and data. A node exporting with only these fails, or records a list whose state this
    checkout does not have (then the client's own action-cache lookup misses and it exports here)."""
    found = {f for deps in lists for f in (*deps["files"], *deps["absent"]) if not f.startswith("/")}
    data, _ = dependencies.expand_data(root, spec.get("data", []))
    found.update(data)
    if spec.get("weights"):
        found.add(spec["weights"])
    return sorted(f for f in found if _shippable(root, f))


def workspace_sources(root: Path, spec: dict[str, Any]) -> list[str]:
    """For an export no list knows yet: every workspace `.py` file an import could find (as input discovery
    counts them: no aot-out/, hidden directories or installed packages), and the declared weights and data."""
    found: set[str] = set()
    for directory, dirs, files in os.walk(root):  # never follows a symlinked directory
        rel_dir = os.path.relpath(directory, root)
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "site-packages")
                   and not (rel_dir == "." and d == layout.OUT_DIR)]
        found.update(os.path.normpath(os.path.join(rel_dir, f)) for f in files if f.endswith(".py"))
    return sorted({*(f for f in found if _shippable(root, f)), *known_files(root, [], spec)})


def _shippable(root: Path, rel: str) -> bool:
    """A regular file, inside the workspace once symlinks are resolved, with a name a manifest may carry."""
    if trust.unsafe_file(root, rel) is not None or not _plain_path(rel):
        return False
    try:
        return stat.S_ISREG(os.stat(root / rel).st_mode)
    except OSError:
        return False


def _plain_path(rel: Any) -> bool:
    try:
        payloads.workspace_path(rel, "path")
    except payloads.Invalid:
        return False
    return True


def build(root: Path, files: Iterable[str], put: Callable[[Path], str]) -> Manifest:
    """The manifest of `files`; `put` stores one file's bytes (into the local cache) and returns their digest,
    so what is shipped is exactly what was hashed even if the file changes afterwards."""
    manifest: Manifest = {}
    for rel in files:
        path = root / rel
        mode = 0o755 if os.stat(path).st_mode & stat.S_IXUSR else 0o644
        manifest[rel] = {"sha256": put(path), "mode": mode}
    return manifest


def check(manifest: Any) -> Manifest:
    """`manifest` as a node receives it: each name a plain relative path inside the workspace (no `..`, no
    absolute path, no hidden component, nothing under aot-out/), a digest, a known mode; no name both a file
    and a directory above another file."""
    if not isinstance(manifest, dict) or len(manifest) > MAX_FILES:
        raise ManifestError(f"manifest: expected a mapping of at most {MAX_FILES} files")
    for rel, entry in manifest.items():
        if not _plain_path(rel):
            raise ManifestError(f"manifest: {str(rel)[:200]!r} is not a relative path inside the workspace")
        try:
            payloads.check(entry, {"sha256": payloads.digest, "mode": payloads.natural}, rel)
        except payloads.Invalid as e:
            raise ManifestError(f"manifest: {e}") from None
        if entry["mode"] not in MODES:
            raise ManifestError(f"manifest: {rel}: mode {entry['mode']:o} is not one of 644, 755")
    dirs = {"/".join(rel.split("/")[:i]) for rel in manifest for i in range(1, rel.count("/") + 1)}
    if clash := sorted(dirs & set(manifest)):
        raise ManifestError(f"manifest: {clash[0]!r} is named as a file and as a directory")
    return manifest


def materialize(manifest: Any, root: Path, blob: Callable[[str], Path | None]) -> None:
    """Lay `manifest` out under the fresh, empty `root`: each file a copy of its verified blob (`blob`: the
    cache's path of a digest, None when unavailable). Copies, not links: a hard link moves the cache file's
    ctime, which another export on this node reading the same file would take for an edit."""
    real_root = os.path.realpath(root)
    for rel, entry in check(manifest).items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.path.realpath(dest.parent) != os.path.join(real_root, os.path.dirname(rel)).rstrip("/"):
            raise ManifestError(f"manifest: {rel!r} leads out of the scratch workspace")  # cannot happen: checked
        src = blob(entry["sha256"])
        if src is None:
            raise InfraError(f"manifest: {rel} (cas/{entry['sha256']}) is not in the remote cache")
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, entry["mode"])
        with open(src, "rb") as s, os.fdopen(fd, "wb") as d:
            while chunk := s.read(1 << 20):
                d.write(chunk)
        os.chmod(dest, entry["mode"])  # the umask may have taken bits off

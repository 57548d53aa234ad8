"""Manifests of the workspace files an action ships to a node: hashed on the client, checked and laid out there."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aotbuild.cache import payloads
from aotbuild.errors import InfraError

Manifest = dict[str, dict[str, Any]]  # workspace-relative path -> {"sha256": digest, "mode": 0o644 | 0o755}
MODES = (0o644, 0o755)  # all a node reproduces: whether a file is executable, nothing else of its permissions
MAX_FILES = 20_000  # a manifest naming more is forged (or a workspace of generated sources nobody meant to ship)


class ManifestError(InfraError):
    """A manifest a node must not lay out: a name that is not a plain path inside the workspace, a bad digest or
    mode, or one path that is both a file and a directory."""


def plain_path(rel: Any) -> bool:
    """A name a manifest may carry: a relative path inside the workspace, as the export-deps schema has it."""
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
        if not plain_path(rel):
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

"""A target's `data:` entries (workspace-relative paths and globs) as the files and globs its export reads."""

from __future__ import annotations

import glob
from pathlib import Path

from aotbuild.planning.input_stamps import glob_matches


def expand(root: Path, entries: list[str]) -> tuple[list[str], list[str]]:
    """(files, globs): plain paths as they are (a missing one is an input too: creating it re-runs the export),
    and for each glob the files it matches now, with the glob itself, whose list of matches is an input."""
    files: set[str] = set()
    globs = []
    for entry in entries:
        if glob.has_magic(entry):
            globs.append(entry)
            files.update(glob_matches(root, entry))
        else:
            files.add(entry)
    return sorted(files), sorted(globs)

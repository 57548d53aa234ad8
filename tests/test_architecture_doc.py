"""docs/architecture.md matches the tree: its module table names every module, and only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _modules_on_disk() -> set[str]:
    # Package markers are not modules of their own, except rules/__init__.py, which holds the registry.
    found = {p.relative_to(REPO).as_posix() for top in ("aotbuild", "rules") for p in (REPO / top).rglob("*.py")}
    return {m for m in found if m == "rules/__init__.py" or not m.endswith(("/__init__.py", "/__main__.py"))}


def _modules_in_doc() -> set[str]:
    named, folder = set(), None
    for line in (REPO / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or set(cells[0]) <= {"-", " "} and cells[0]:
            continue
        if cells[0] == "folder":
            continue
        if cells[0]:
            folder = cells[0].strip("`").rstrip("/")
        prefix = folder if folder in ("aotbuild", "rules") else f"aotbuild/{folder}"
        named |= {f"{prefix}/{name}" for name in re.findall(r"`([\w]+\.py)`", cells[1])}
    return named


def test_the_module_table_names_every_module_and_no_other() -> None:
    on_disk, in_doc = _modules_on_disk(), _modules_in_doc()
    assert in_doc - on_disk == set(), "docs/architecture.md names modules that do not exist"
    assert on_disk - in_doc == set(), "modules missing from docs/architecture.md's table"

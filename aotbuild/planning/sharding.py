"""`--shard K/N`: a deterministic share of the selected targets, so a CI matrix splits a workspace between jobs."""

from __future__ import annotations

import re

from aotbuild.errors import UserError
from aotbuild.workspace.labels import Label

_SHARD = re.compile(r"([0-9]+)/([0-9]+)")


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4): the second of four shards (numbered from 1, as in CI matrices)."""
    m = _SHARD.fullmatch(text.strip())
    if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UserError(f"--shard {text!r}: expected K/N with 1 <= K <= N, such as 1/4\n"
                        "  fix: give each CI job its own K and the same N")
    return int(m.group(1)), int(m.group(2))


def shard(labels: list[Label], index: int, count: int) -> list[Label]:
    """Every count-th label of the sorted selection, starting at index: balanced to one target, and the same
    on every machine that sees the same BUILD files (the selection does not depend on the cache or on timing)."""
    ordered = sorted(labels, key=str)
    return ordered[index - 1::count]

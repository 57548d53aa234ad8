"""Where a target was declared, from the `where` its spec files carry, for errors raised inside actions."""

from __future__ import annotations

from typing import Any

from aotbuild.errors import Location


def location(spec: dict[str, Any], field: str | None = None) -> Location:
    where = spec.get("where") or {}
    return Location(where.get("file"), where.get("line"), spec["label"], field)

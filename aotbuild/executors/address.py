"""Executor URLs (ray://HOST:PORT), checked before anything connects."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aotbuild.errors import UserError

# A host name or IPv4 address, then a port: what Ray Client's `ray.init("ray://...")` takes.
_RAY = re.compile(r"ray://([A-Za-z0-9.-]+):([0-9]{1,5})")


@dataclass(frozen=True)
class ExecutorUrl:
    host: str
    port: int

    def __str__(self) -> str:
        return f"ray://{self.host}:{self.port}"


def parse(text: str, source: str) -> ExecutorUrl:
    """`source` names where the URL came from (--executor, $AOTBUILD_EXECUTOR, WORKSPACE.aot.yaml's executor)."""
    m = _RAY.fullmatch(text.strip())
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise UserError(f"{source} {text[:200]!r}: expected ray://HOST:PORT, the Ray Client address of a cluster "
                        "(`ray start --head --ray-client-server-port=PORT`)\n"
                        "  fix: e.g. --executor ray://ray-head.internal:10001; '' turns the executor off")
    return ExecutorUrl(m.group(1), int(m.group(2)))

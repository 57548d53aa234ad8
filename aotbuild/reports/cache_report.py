"""`aotbuild cache stats` as a person reads it: a table of what the cache root holds, and the last build."""

from __future__ import annotations

from typing import Any

from aotbuild.reports import remote_summary
from aotbuild.text import human_bytes, plural, table


def stats_lines(stats: dict[str, Any], temp_bytes: int, last: dict[str, Any] | None) -> list[str]:
    """`stats` from LocalStore.stats(); `temp_bytes` the compiler temp space; `last` last-build.json, if any."""
    rows = [("artifacts, programs (cas/)", stats["cas_entries"], stats["cas_bytes"]),
            ("action results (ac/)", stats["ac_entries"], stats["ac_bytes"])]
    entries = sum(r[1] for r in rows)
    size = sum(r[2] for r in rows) + temp_bytes
    cells = [(what, str(n), human_bytes(b)) for what, n, b in rows]
    cells += [("compiler temp space", "-", human_bytes(temp_bytes)), ("total", str(entries), human_bytes(size))]
    out = [f"cache {stats['root']}", *table(("", "entries", "size"), cells)]
    if last is not None:
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(last["outcomes"].items(), key=lambda kv: -kv[1]))
        out += ["", f"last build: {plural(last['hits'], 'hit')}, {plural(last['misses'], 'miss')}, "
                    f"{plural(last['actions'], 'action')}, {plural(len(last['corrupt']), 'corrupt entry')}",
                f"  targets: {outcomes or 'none'}"]
        for line in remote_summary.lines(last["remote"]) if last.get("remote") else []:
            out.append(line.replace("aotbuild: remote cache", "last build: remote cache", 1))
    return out

"""What the build says about the remote cache: the URL check, and one summary of every action's remote use."""

from __future__ import annotations

from typing import Any

from aotbuild.errors import UserError
from aotbuild.text import plural

SCHEMES = ("http://", "https://", "s3://")
COUNTS = ("hits", "misses", "uploads", "requests", "bytes_down", "bytes_up")


def check_remote_url(url: str | None) -> str | None:
    """Refuse a URL no backend speaks before any action runs (the message leaves out all but the scheme)."""
    if url is not None and not url.lower().startswith(SCHEMES):
        scheme = url.split("://", 1)[0] if "://" in url else url.split(":", 1)[0]
        raise UserError(f"remote cache: unsupported URL scheme {scheme[:20]!r}\n"
                        "  fix: use http(s)://host/prefix (Bazel's HTTP cache protocol) or s3://bucket/prefix")
    return url


def summarize(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Totals over the actions that used the remote, and their warnings without repeats; None if none did."""
    reports = [e["remote"] for e in events if e.get("remote")]
    if not reports:
        return None
    total: dict[str, Any] = {k: sum(r.get(k, 0) for r in reports) for k in COUNTS}
    total["url"] = next((r["url"] for r in reports if r.get("url")), None)
    warnings = list(dict.fromkeys(w for r in reports for w in r.get("warnings", [])))
    # Once the remote is down every later action says so; the first says it best.
    down = [w for w in warnings if w.endswith("continuing without the remote cache")]
    total["warnings"] = [w for w in warnings if w not in down[1:]]
    return total


def lines(summary: dict[str, Any]) -> list[str]:
    """The build's remote-cache lines: the warnings, then one line of totals."""
    out = [f"warning: {w}" for w in summary["warnings"]]
    if summary["url"]:
        out.append(f"aotbuild: remote cache {summary['url']}: {plural(summary['hits'], 'hit')}, "
                   f"{plural(summary['misses'], 'miss')}, {plural(summary['uploads'], 'upload')}; "
                   f"{plural(summary['requests'], 'request')}, "
                   f"{summary['bytes_down'] / 1e6:.1f} MB down, {summary['bytes_up'] / 1e6:.1f} MB up")
    return out

"""Small pieces of text a person reads: counted nouns, byte sizes, aligned tables."""

from __future__ import annotations

from collections.abc import Sequence

IRREGULAR = {"entry": "entries", "miss": "misses", "corrupt entry": "corrupt entries"}


def plural(count: int, noun: str) -> str:
    """'1 target', '2 targets', '0 entries'."""
    return f"{count} {noun if count == 1 else IRREGULAR.get(noun, noun + 's')}"


def human_bytes(size: int) -> str:
    """1536 -> '1.5 KiB'; whole bytes below 1 KiB."""
    value, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others (numbers), two spaces between columns."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    return [line(header), *map(line, rows)]

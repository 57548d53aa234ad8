"""Spec files as real build outputs: one tiny edge per file, so ninja recreates any that are missing.

The spec's content is in the edge's command, so ninja itself notices a changed spec (its log keeps each
command's hash) and rewrites just that file; a deleted target directory or spec file is recreated by the next
build, plain `ninja` included. The command leaves an identical file untouched, and restat then keeps the
actions that read it up to date.
"""

from __future__ import annotations

import json
import shlex

from aotbuild.ninja.graph import Edge, Rule

NAME = "aot_spec"


def rule() -> Rule:
    write = "printf '%s\\n' $content > $out.tmp && if cmp -s $out.tmp $out; then rm -f $out.tmp; else mv -fT $out.tmp $out; fi"
    return Rule(NAME, write, "spec $out", restat=True)


def _text(content: dict) -> str:
    # Compact JSON is ASCII-escaped and one line.
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


def edge(path: str, content: dict) -> Edge:
    # Shell-quoted, then '$' doubled for ninja's own lexer.
    return Edge(NAME, (path,), variables=(("content", shlex.quote(_text(content)).replace("$", "$$")),))


def file_bytes(content: dict) -> bytes:
    """What the edge's command leaves in its output file (for writers that run it in-process)."""
    return (_text(content) + "\n").encode()

"""Spec files as real build outputs: one tiny edge per target writes all of its spec files, so ninja recreates
any that are missing.

The specs' content is in the edge's command, so ninja itself notices a changed spec (its log keeps each
command's hash) and reruns the edge; the command rewrites only the files whose content differs, and restat
(which ninja applies output by output) then keeps the actions that read an unchanged file up to date: a new
tolerance re-verifies without re-exporting. A deleted target directory or spec file is recreated by the next
build, plain `ninja` included.

One edge per target, not one per file: at 10,000 targets the three edges per target were 30,000 of the graph's
edges and 90,000 processes on a first build. The command runs in /bin/sh with builtins only (a file is read
back with `read`, compared with `[`, written with `printf`), so a first build forks one shell per target.
"""

from __future__ import annotations

import json
import shlex

from aotbuild.ninja.graph import Edge, Rule

NAME = "aot_spec"
# `$specs` is "path 'json' path 'json' ...", shell-quoted. Each spec is one line of JSON: a file is equal when its
# first line is that JSON and nothing follows it. Written in place: ninja deletes the outputs of an interrupted
# edge and reruns an edge its log does not record as finished, so a half-written file is never trusted.
_WRITE = ("set -- $specs; while [ $$# -gt 0 ]; do "
          "if ! { [ -f \"$$1\" ] && { IFS= read -r a && ! IFS= read -r b && [ -z \"$$b\" ] && [ \"$$a\" = \"$$2\" ]; } "
          "< \"$$1\"; }; then printf '%s\\n' \"$$2\" > \"$$1\" || exit 1; fi; shift 2; done")


def rule() -> Rule:
    return Rule(NAME, _WRITE, "spec $label", restat=True)


def _text(content: dict) -> str:
    # Compact JSON is ASCII-escaped and one line.
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


def edge(label: str, files: dict[str, dict]) -> Edge:
    """The edge writing one target's spec files (path relative to aot-out -> content)."""
    # Shell-quoted, then '$' doubled for ninja's own lexer.
    specs = " ".join(shlex.quote(part) for path, content in files.items() for part in (path, _text(content)))
    return Edge(NAME, tuple(files), variables=(("specs", specs.replace("$", "$$")), ("label", label)))


def file_bytes(content: dict) -> bytes:
    """What the edge's command leaves in each output file (for writers that run it in-process)."""
    return (_text(content) + "\n").encode()

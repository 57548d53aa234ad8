"""Spec files as ninja outputs: one edge per target picks its spec files out of its package's specs file."""

from __future__ import annotations

import json
import shlex

from aotbuild.ninja.graph import Edge, Rule

NAME = "aot_spec"
# Shell builtins only. `. ./$in` sets "$@" to "path json path json ..." for the edge's first output ($1); a file
# is equal when its one line is that JSON. Written in place: ninja deletes the outputs of an interrupted edge and
# reruns an edge its log does not record as finished, so a half-written file is never trusted.
_WRITE = ("set -- $out; . ./$in; while [ $$# -gt 0 ]; do "
          "if ! { [ -f \"$$1\" ] && { IFS= read -r a && ! IFS= read -r b && [ -z \"$$b\" ] && [ \"$$a\" = \"$$2\" ]; } "
          "< \"$$1\"; }; then printf '%s\\n' \"$$2\" > \"$$1\" || exit 1; fi; shift 2; done")
RULE = Rule(NAME, _WRITE, "spec $label", restat=True)


# Compact JSON is ASCII-escaped and one line. One encoder for all: json.dumps with options makes a new one per
# call, a fifth of the time of writing 30,000 specs.
_text = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def edge(label: str, paths: list[str], specs_file: str) -> Edge:
    """The edge writing one target's spec files (paths relative to aot-out) from its package's specs file."""
    return Edge(NAME, tuple(paths), (specs_file,), variables=(("label", label),))


def specs_text(header: str, specs_file: str, targets: list[dict[str, dict]]) -> str:
    """The package's specs file: for each target (its spec files, path -> content), a `case` branch keyed by its
    first spec file that sets "$@" to path and JSON pairs. No branch means the file is older than the edge."""
    lines = [f"# {header}\n# Sourced by the package's spec edges (aotbuild/ninja/spec_edges.py).\ncase $1 in\n"]
    for files in targets:
        pairs = " ".join(f"{shlex.quote(path)} {shlex.quote(_text(content))}" for path, content in files.items())
        lines.append(f"{shlex.quote(next(iter(files)))}) set -- {pairs};;\n")
    lines.append(f"*) echo \"aotbuild: {specs_file} has no specs for $1; run aotbuild plan\" >&2; exit 1;;\nesac\n")
    return "".join(lines)


def file_bytes(content: dict) -> bytes:
    """What the edge's command leaves in each output file (for writers that run it in-process)."""
    return (_text(content) + "\n").encode()

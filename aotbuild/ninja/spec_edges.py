"""Spec files as real build outputs: one tiny edge per target writes all of its spec files, so ninja recreates
any that are missing.

The specs' content is not in the ninja files: planning writes one specs file per package
(aot-out/.aotbuild/pkgs/<package>.specs, only when its content changes), a shell fragment holding every spec of
the package, and each target's spec edge reads it (its one input) and picks out its own entry. A changed
package specs file reruns the package's spec edges; each rewrites only the files whose content differs, and
restat (which ninja applies output by output) then keeps the actions that read an unchanged file up to date,
a sibling's change or a new tolerance included. A deleted target directory or spec file is recreated by the
next build, plain `ninja` included; a deleted specs file by its own edge, which runs `aotbuild plan`.

Out of the ninja files because ninja parses every byte of them on every run: the inlined JSON was half of the
16 MB that a no-op of 10,000 targets parsed. The command runs in /bin/sh with builtins only (the specs file is
sourced with `.`, a file is read back with `read`, compared with `[`, written with `printf`), so a first build
forks one shell per target. Each spec edge parses its whole package's specs file (about 750 bytes a target):
nothing for packages of tens of targets, about 20 ms an edge for a package of 1,000.
"""

from __future__ import annotations

import json
import shlex

from aotbuild.ninja.graph import Edge, Rule

NAME = "aot_spec"
# `. ./$in` sets "$@" to "path json path json ..." for the edge's first output ($1); each spec is one line of
# JSON: a file is equal when its first line is that JSON and nothing follows it. Written in place: ninja deletes
# the outputs of an interrupted edge and reruns an edge its log does not record as finished, so a half-written
# file is never trusted.
_WRITE = ("set -- $out; . ./$in; while [ $$# -gt 0 ]; do "
          "if ! { [ -f \"$$1\" ] && { IFS= read -r a && ! IFS= read -r b && [ -z \"$$b\" ] && [ \"$$a\" = \"$$2\" ]; } "
          "< \"$$1\"; }; then printf '%s\\n' \"$$2\" > \"$$1\" || exit 1; fi; shift 2; done")


def rule() -> Rule:
    return Rule(NAME, _WRITE, "spec $label", restat=True)


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

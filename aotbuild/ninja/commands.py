"""An edge's command exactly as ninja evaluates it (the string whose hash it keeps in .ninja_log).

Follows ninja 1.13's lexer ($$, $ , $:, $<newline>, $name, ${name}) and EdgeEnv: $in and $out are the explicit
paths, shell-quoted where needed; other variables come from the edge, then the rule, then the file scope.
Anything it cannot evaluate for certain raises Unevaluable: the caller then leaves the edge to ninja.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from aotbuild.ninja.graph import Edge, Rule

_SIMPLE = re.compile(r"[a-zA-Z0-9_-]+")
_BRACED = re.compile(r"\{([a-zA-Z0-9_.-]+)\}")
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_+\-./]*")
_RULE_BINDINGS = ("command", "description", "depfile", "deps", "pool", "restat", "generator")


class Unevaluable(Exception):
    """A command or path this module cannot evaluate exactly as ninja would."""


def shell_escape(path: str) -> str:
    """ninja's GetShellEscapedString: quote unless every character is known to be safe."""
    if _SHELL_SAFE.fullmatch(path):
        return path
    return "'" + path.replace("'", "'\\''") + "'"


def evaluate(text: str, lookup: Callable[[str], str]) -> str:
    """Expand one ninja value (`text` as written after `=`) with `lookup` for its variables."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if j + 1 >= n:
            raise Unevaluable(f"a lone '$' ends {text[:60]!r}")
        c = text[j + 1]
        if c in "$ :":
            out.append(c)
            i = j + 2
        elif c == "\n":
            i = j + 2
            while i < n and text[i] == " ":
                i += 1
        elif c == "{":
            m = _BRACED.match(text, j + 1)
            if m is None:
                raise Unevaluable(f"bad ${{...}} in {text[:60]!r}")
            out.append(lookup(m.group(1)))
            i = m.end()
        else:
            m = _SIMPLE.match(text, j + 1)
            if m is None:
                raise Unevaluable(f"bad $-escape in {text[:60]!r}")
            out.append(lookup(m.group(0)))
            i = m.end()
    return "".join(out)


def check_path(path: str) -> str:
    """A path as ninja's node keeps it: refuse what ninja would canonicalize differently or our logs could not
    hold (tabs, newlines, '.' and '..' segments, doubled slashes)."""
    if (not path or "\t" in path or "\n" in path or "\r" in path or "\0" in path or "//" in path
            or path.endswith("/") or any(part in (".", "..") for part in path.split("/")[1:])):
        raise Unevaluable(f"path {path!r} is not canonical")
    if path.startswith("./"):
        raise Unevaluable(f"path {path!r} is not canonical")
    return path


def command(rule: Rule, edge: Edge, file_scope: Mapping[str, str]) -> str:
    """`edge`'s command under `rule`, as ninja's Edge::EvaluateCommand returns it (rules here have no
    rspfile). `file_scope` holds the top-level variables of the build file."""
    if edge.rule != rule.name:
        raise Unevaluable(f"edge uses rule {edge.rule}, not {rule.name}")

    def scope(name: str) -> str:
        if name not in file_scope:
            raise Unevaluable(f"unknown variable ${name}")
        return file_scope[name]

    # Edge variables are evaluated when the file is parsed, in the file's scope.
    edge_vars = {k: evaluate(v, scope) for k, v in edge.variables if v is not None}
    rule_vars = {k: getattr(rule, k) for k in _RULE_BINDINGS}
    seen: set[str] = set()

    def lookup(name: str) -> str:
        if name == "in":
            return " ".join(shell_escape(check_path(p)) for p in edge.inputs)
        if name == "out":
            return " ".join(shell_escape(check_path(p)) for p in edge.outputs)
        if name in edge_vars:
            return edge_vars[name]
        if name in rule_vars and isinstance(rule_vars[name], str):
            if name in seen:
                raise Unevaluable(f"cycle through ${name}")
            seen.add(name)
            return evaluate(rule_vars[name], lookup)
        return scope(name)

    return evaluate(rule.command, lookup)

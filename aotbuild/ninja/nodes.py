"""What ninja stats on a run: the file nodes named by the build lines of a manifest and its subninjas, and the
dependencies recorded in .ninja_deps. Read from the files themselves, so it holds for any ninja text.

Only the syntax ninja 1.13 accepts in build, rule and subninja/include lines is read; a path holding a variable
(`$name`) cannot be known without evaluating the manifest, so it raises NodeError and the caller assumes
nothing (the no-op stamp, engine/noop_stamp.py, is then simply not written).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from aotbuild.ninja import logs

# One path token of a build line, escapes included ('$ ', '$:', '$$'), or one of the separators.
_TOKEN = re.compile(r"\|\||\|@|\||:|(?:[^$ :|\r\n]|\$[ :$])+|\$.?|[ \r\n]+")
_UNESCAPE = re.compile(r"\$([ :$])")
_SEPARATORS = ("|", "||", "|@")


class NodeError(Exception):
    """A manifest or deps log whose nodes cannot be listed without evaluating it."""


def canonical(path: str) -> str:
    """ninja's CanonicalizePath on '/' paths: '.' and empty components dropped ('a//b', a trailing '/'),
    'a/..' folded, leading '..' kept, and '.' for nothing left."""
    if "./" not in path and "//" not in path and not path.endswith(("/.", "/..", "/")) and path != "":
        return path
    absolute = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(part)
    return ("/" if absolute else "") + "/".join(parts) if parts or absolute else "."


def _paths(text: str, where: str) -> list[str]:
    """The path tokens and separators of one part of a build line, unescaped."""
    out = []
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token[0] in " \r\n":
            continue
        if token.startswith("$") and token[1:2] not in (" ", ":", "$"):
            raise NodeError(f"{where}: a path with a variable or an unknown escape ({text[:80]!r})")
        out.append(_UNESCAPE.sub(r"\1", token) if "$" in token else token)
    return out


def _split_outputs(line: str, where: str) -> tuple[str, str]:
    """'build a b: rule x' -> ('a b', 'rule x'): the first colon that is not escaped."""
    rest = line[len("build "):]
    if "$" not in rest:
        head, colon, tail = rest.partition(":")
    else:
        m = re.match(r"(?:[^$:]|\$.)*", rest)
        end = m.end() if m else 0
        head, colon, tail = rest[:end], rest[end:end + 1], rest[end + 1:]
    if not colon:
        raise NodeError(f"{where}: a build line without ':' ({line[:80]!r})")
    return head, tail


def _plain(rest: str) -> bool:
    """Whether the part of a build line after 'build ' splits on spaces as ninja reads it: no escapes, every
    separator between spaces, and no path that ninja would canonicalize ('./a', 'a/../b', 'a//b')."""
    if ("$" in rest or "/." in rest or "//" in rest or " ./" in rest or rest.startswith("./") or "/ " in rest
            or "/:" in rest or rest.endswith("/")):
        return False
    return "|" not in rest.replace(" || ", " ").replace(" |@ ", " ").replace(" | ", " ")


# One edge: (its outputs, implicit ones included; its rule, or "" where the edge binds `restat` or `deps`
# itself and its rule's settings no longer tell; its inputs: explicit, implicit, order-only and validations).
FileEdge = tuple[tuple[str, ...], str, tuple[str, ...]]

# A top-level statement that may name nodes or declare a rule, with the indented binding lines under it.
_BLOCK = re.compile(r"^(?:build|subninja|include|rule) [^\n]*(?:\n[ \t]+[^\n]*)*", re.M)
_COMMENT = re.compile(r"^[ ]*#[^\n]*(?:\n|\Z)", re.M)
_RESTAT_BINDING = re.compile(r"^[ \t]+restat[ \t]*=[ \t]*([^\r\n]*?)[ \t]*$", re.M)
_DEPS_BINDING = re.compile(r"^[ \t]+deps[ \t]*=", re.M)
# Bindings whose effect the stamp cannot see: a depfile read anew on every run (without `deps`), dyndep files.
_UNSEEN_BINDING = re.compile(r"^[ \t]+(?:depfile|dyndep)[ \t]*=", re.M)
_STATEMENT_WORDS = ("build ", "rule ", "subninja ", "include ")
RESTAT, DEPS = 1, 2  # a rule's flags


def _joined(text: str, where: str) -> str:
    """The text with comment lines dropped and `$`-newline continuations joined, as ninja's lexer reads them:
    a `#` line is a comment only where a statement or binding starts (after a continuation it is text), and
    a continuation skips the next line's leading spaces. A statement line continued right after a word (no
    space before the `$`) raises NodeError: ninja reads that as a word break or a joined word by context."""
    out: list[str] = []
    pending = ""
    for line in text.split("\n"):
        body = line.rstrip("\r")
        if not pending and body.lstrip(" ").startswith("#"):
            continue
        piece = body.lstrip(" ") if pending else body
        trailing = len(piece) - len(piece.rstrip("$"))
        if trailing % 2 == 1:  # an unescaped `$` ends the line: it goes on
            joined = pending + piece[:-1]
            if joined.startswith(_STATEMENT_WORDS) and not joined.endswith(" "):
                raise NodeError(f"{where}: a statement continued inside a word ({joined[:80]!r})")
            pending = joined
            continue
        out.append(pending + piece)
        pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def file_graph(text: str, where: str) -> tuple[list[FileEdge], dict[str, int], list[str]]:
    """(the build edges of one manifest file, in order; the rules it declares -> their RESTAT (a literal,
    non-empty `restat` binding) and DEPS flags; its subninja and include files). Paths are as ninja
    canonicalizes them, relative to the directory ninja runs in. A rule or edge binding a depfile without
    deps, or a dyndep file, raises NodeError: ninja reads those files anew on each run, and no stamp could
    see them."""
    if "$\n" in text or "$\r\n" in text:
        text = _joined(text, where)
    else:  # the usual case: no continuation, so every `#` line is a comment (one regex, in C)
        text = _COMMENT.sub("", text)
    edges: list[FileEdge] = []
    rules: dict[str, int] = {}
    includes = []
    for block in _BLOCK.findall(text):
        line, _, bindings = block.partition("\n")
        line = line.rstrip("\r")
        if bindings and _UNSEEN_BINDING.search(bindings) and (
                line.startswith("build ") or "dyndep" in bindings or not _DEPS_BINDING.search(bindings)):
            raise NodeError(f"{where}: a depfile without deps, or a dyndep file ({line[:80]!r})")
        if line.startswith("build "):
            outputs, rule, inputs = _build_line(line, where)
            if bindings and (_RESTAT_BINDING.search(bindings) or _DEPS_BINDING.search(bindings)):
                rule = ""  # the edge decides for itself: assume nothing
            edges.append((outputs, rule, inputs))
        elif line.startswith("rule "):
            value = _RESTAT_BINDING.search(bindings)
            restat = value is not None and value.group(1) != "" and "$" not in value.group(1)
            rules[line[5:].strip()] = (RESTAT if restat else 0) | (DEPS if _DEPS_BINDING.search(bindings) else 0)
        else:
            words = _paths(line.split(" ", 1)[1], where)
            if len(words) != 1:
                raise NodeError(f"{where}: cannot read {line[:80]!r}")
            includes.append(words[0])
    return edges, rules, includes


def _build_line(line: str, where: str) -> FileEdge:
    rest = line[6:]
    if _plain(rest):  # most lines: split, no tokenizer (a seventh of the time)
        head, colon, tail = rest.partition(":")
        words = tail.split()
        if not colon or not words:
            raise NodeError(f"{where}: a build line without ':' or a rule ({line[:80]!r})")
        outputs = [w for w in head.split() if w != "|"]
        inputs = [w for w in words[1:] if w not in _SEPARATORS]
        return tuple(outputs), words[0], tuple(inputs)
    head, tail = _split_outputs(line, where)
    rule_and_inputs = _paths(tail, where)
    if not rule_and_inputs:
        raise NodeError(f"{where}: a build line without a rule ({line[:80]!r})")
    outputs = [canonical(path) for path in _paths(head, where) if path not in _SEPARATORS]
    inputs = [canonical(path) for path in rule_and_inputs[1:] if path not in _SEPARATORS]
    return tuple(outputs), rule_and_inputs[0], tuple(inputs)


def recorded_dependencies(deps_log: Path) -> list[str]:
    """Every path that a record of .ninja_deps (ninja 1.13's format v4) names as a dependency, once each.
    Dead records are included: more paths than ninja looks at, never fewer. NodeError for another format."""
    return read_deps_log(deps_log)[0]


def read_deps_log(deps_log: Path) -> tuple[list[str], tuple[int, int]]:
    """recorded_dependencies, and the log's number of deps records and of outputs they are for (as ninja
    counts them to decide on a recompaction: ninja/deps_log.py)."""
    try:
        data = deps_log.read_bytes()
    except FileNotFoundError:
        return [], (0, 0)
    if not data:
        return [], (0, 0)
    head = len(logs.DEPS_LOG_HEADER)
    if data[:head] != logs.DEPS_LOG_HEADER or data[head:head + 4] != struct.pack("<i", logs.DEPS_LOG_VERSION):
        raise NodeError(f"{deps_log}: unknown deps log signature or version")
    names: list[str] = []
    used: set[int] = set()
    outputs: list[int] = []
    pos, end = head + 4, len(data)
    while pos + 4 <= end:
        (size,) = struct.unpack_from("<I", data, pos)
        is_deps, size = size >> 31, size & 0x7FFFFFFF
        body = pos + 4
        if size > logs.MAX_RECORD or body + size > end or size % 4:
            break  # a torn last record: ninja drops it too (and what it named is in no other record)
        if is_deps:
            if size < 12:
                raise NodeError(f"{deps_log}: bad deps record at byte {pos}")
            used.update(struct.unpack_from(f"<{size // 4 - 3}i", data, body + 12))
            outputs.append(struct.unpack_from("<i", data, body)[0])
        else:
            names.append(data[body:body + size - 4].rstrip(b"\0").decode("utf-8", "surrogateescape"))
        pos = body + size
    if any(i < 0 or i >= len(names) for i in used):
        raise NodeError(f"{deps_log}: a deps record names an unknown path")
    return [names[i] for i in sorted(used)], (len(outputs), len(set(outputs)))

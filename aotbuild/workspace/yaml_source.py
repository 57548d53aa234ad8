"""Load YAML into plain values while remembering the line each value came from, within hard bounds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from aotbuild.errors import Location, TargetError
from aotbuild.workspace.discovery import MAX_SOURCE_BYTES

_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers  # first character -> [(tag, regexp)], YAML 1.1's
_ANY_START = _IMPLICIT.get(None, [])


def _resolve(self: Any, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
    """SafeLoader's tag resolution without its path-resolver bookkeeping (aotbuild registers none); libyaml
    calls this once per value, so it was a fifth of the time of parsing."""
    if kind is yaml.ScalarNode:
        if implicit[0]:
            for tag, regexp in _IMPLICIT.get(value[0] if value else "", []) + _ANY_START:
                if regexp.match(value):
                    return tag
        return self.DEFAULT_SCALAR_TAG
    return self.DEFAULT_SEQUENCE_TAG if kind is yaml.SequenceNode else self.DEFAULT_MAPPING_TAG


# libyaml's C parser, which PyYAML's wheels carry, parses about ten times faster than the pure-Python one and
# still gives every node its start mark, so errors keep their line numbers. The fallback keeps aotbuild
# working on a PyYAML built without libyaml.
LOADER: type = (type("CLoader", (yaml.CSafeLoader,), {"resolve": _resolve}) if hasattr(yaml, "CSafeLoader")
                else yaml.SafeLoader)

# Aliases let a few hundred bytes name billions of nodes ("billion laughs"): cap what they may expand to.
MAX_ALIAS_NODES = 10_000
# Deeper data is no sensible BUILD file, and unbounded depth would exhaust Python's recursion limit.
MAX_DEPTH = 64


class Node(NamedTuple):
    """A YAML value and its 1-based line (collections hold Nodes); a NamedTuple, 3x faster to make than a dataclass."""

    value: Any
    line: int

    def plain(self) -> Any:
        """The value with every Node unwrapped, for data that is passed through as-is (kwargs, options)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def too_large(display: str, size: int) -> TargetError:
    return TargetError(Location(display), f"file is {size:,} bytes, over the limit of {MAX_SOURCE_BYTES:,} bytes "
                                          "for aotbuild's YAML files",
                       "split its targets into several packages (directories with their own BUILD.aot.yaml)")


def decode(data: bytes, display: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TargetError(Location(display), f"file is not UTF-8 text ({e.reason} at byte {e.start})",
                          "save it as UTF-8") from None


def load_yaml(path: Path, display: str) -> Node:
    """Parse one YAML file, refused before reading when too large; `display` is the path shown in errors."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(MAX_SOURCE_BYTES + 1)  # never more, even if the file grows after the fstat
    if max(size, len(data)) > MAX_SOURCE_BYTES:
        raise too_large(display, max(size, len(data)))
    return parse_yaml(decode(data, display), display)


def parse_yaml(text: str, display: str) -> Node:
    """Parse YAML text already read (and size-checked); every problem is a TargetError naming `display`."""
    loader = LOADER(text)
    try:
        root = loader.get_single_node()  # None for an empty file
        return Node({}, 1) if root is None else _Converter(loader, display).convert(root, 0, False)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise TargetError(Location(display, line), f"malformed YAML: {e.problem or e}",
                          "check indentation, colons and quoting on that line") from None
    except yaml.YAMLError as e:
        raise TargetError(Location(display), f"malformed YAML: {e}") from None
    except RecursionError:  # the pure-Python composer recurses once per nesting level
        raise TargetError(Location(display), "YAML nested too deeply", f"keep nesting under {MAX_DEPTH} levels"
                          ) from None
    finally:
        loader.dispose()


class _Converter:
    """Turns one composed document into Nodes, counting what aliases expand to."""

    def __init__(self, loader: Any, display: str) -> None:
        self.loader = loader
        self.display = display
        self.seen: set[int] = set()  # ids of composed nodes already converted: a second visit is an alias
        self.alias_nodes = 0

    def _error(self, node: yaml.Node, problem: str, fix: str | None = None) -> TargetError:
        return TargetError(Location(self.display, node.start_mark.line + 1), problem, fix)

    def convert(self, node: yaml.Node, depth: int, via_alias: bool) -> Node:
        if depth > MAX_DEPTH:
            raise self._error(node, f"YAML nested more than {MAX_DEPTH} levels deep",
                              "flatten the data, or load it from a Python module")
        kind = node.__class__
        if via_alias or kind is not yaml.ScalarNode and id(node) in self.seen:
            # The composer hands out the anchored node itself for every alias: meeting a collection twice
            # means an alias, and everything under it is a copy that counts against the cap.
            via_alias = True
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise self._error(node, f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} values "
                                        "(an alias bomb?)", "write the values out, or use `defaults:`")
        line = node.start_mark.line + 1
        if kind is yaml.ScalarNode:
            return Node(self._scalar(node), line)
        if not via_alias:
            self.seen.add(id(node))
        if kind is yaml.SequenceNode:
            return Node([self.convert(v, depth + 1, via_alias) for v in node.value], line)
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not yaml.ScalarNode:
                raise self._error(key_node, "keys must be strings, found a "
                                            f"{'mapping' if isinstance(key_node, yaml.MappingNode) else 'list'}")
            key = self._scalar(key_node)
            if not isinstance(key, str):
                raise self._error(key_node, f"keys must be strings, found {key!r}")
            if key in out:
                # PyYAML silently keeps the last duplicate; a build file must not hide a target that way.
                raise self._error(key_node, f"duplicate key '{key}' (first on line {out[key].line})")
            out[key] = self.convert(value_node, depth + 1, via_alias)
        return Node(out, line)

    def _scalar(self, node: yaml.Node) -> Any:
        tag, value = node.tag, node.value
        # What SafeConstructor would return, without its dispatch, for the two commonest kinds of scalar.
        if tag == "tag:yaml.org,2002:str":
            return value
        if tag == "tag:yaml.org,2002:int" and value.isdigit() and (value[0] != "0" or value == "0"):  # YAML 1.1: 010 is octal
            return int(value)
        return self.loader.construct_object(node, deep=True)

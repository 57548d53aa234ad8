"""Load YAML into plain values while remembering the line each value came from, within hard bounds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import Location, TargetError
from .file_state import MAX_SOURCE_BYTES

# libyaml's C parser, which PyYAML's wheels carry, parses about ten times faster than the pure-Python one and
# still gives every node its start mark, so errors keep their line numbers. The fallback keeps aotbuild
# working on a PyYAML built without libyaml.
LOADER: type = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

# Aliases let a few hundred bytes name billions of nodes ("billion laughs"): cap what they may expand to.
MAX_ALIAS_NODES = 10_000
# Deeper data is no sensible BUILD file, and unbounded depth would exhaust Python's recursion limit.
MAX_DEPTH = 64

_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class Node:
    """A YAML value with its 1-based line; mappings and sequences hold Nodes."""

    value: Any
    line: int

    def plain(self) -> Any:
        """The value with every Node unwrapped, for data that is passed through as-is (kwargs, options)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def too_large(display: str, size: int, limit: int = MAX_SOURCE_BYTES) -> TargetError:
    return TargetError(Location(display), f"file is {size:,} bytes, over the limit of {limit:,} bytes for "
                                          "aotbuild's YAML files",
                       "split its targets into several packages (directories with their own BUILD.aot.yaml)")


def decode(data: bytes, display: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TargetError(Location(display), f"file is not UTF-8 text ({e.reason} at byte {e.start})",
                          "save it as UTF-8") from None


def read_text(path: Path, display: str, limit: int = MAX_SOURCE_BYTES) -> str:
    """The file's text, refused before reading when it is larger than `limit` bytes."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(limit + 1)  # never more, even if the file grows after the fstat
    if max(size, len(data)) > limit:
        raise too_large(display, max(size, len(data)), limit)
    return decode(data, display)


def load_yaml(path: Path, display: str) -> Node:
    """Parse one YAML file; `display` is the path shown in errors (workspace-relative)."""
    return parse_yaml(read_text(path, display), display)


def parse_yaml(text: str, display: str) -> Node:
    loader = LOADER(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return Node({}, 1)
        return _Converter(loader, display).convert(root, 0, False)
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
        if not via_alias:
            # The composer hands out the anchored node itself for every alias: meeting a node twice means an
            # alias, and everything under it is a copy that counts against the cap.
            key = id(node)
            if key in self.seen:
                via_alias = True
            elif not isinstance(node, yaml.ScalarNode):
                self.seen.add(key)
        if via_alias:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise self._error(node, f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} values "
                                        "(an alias bomb?)", "write the values out, or use `defaults:`")
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Node] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
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
        if isinstance(node, yaml.SequenceNode):
            return Node([self.convert(v, depth + 1, via_alias) for v in node.value], line)
        return Node(self._scalar(node), line)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _STR_TAG:
            return node.value  # what SafeConstructor would return, without its dispatch
        return self.loader.construct_object(node, deep=True)

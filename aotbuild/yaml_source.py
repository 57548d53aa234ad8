"""Load YAML into plain values while remembering the line each value came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import Location, TargetError


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


def load_yaml(path: Path, display: str) -> Node:
    """Parse one YAML file; `display` is the path shown in errors (workspace-relative)."""
    text = path.read_text(encoding="utf-8")
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return Node({}, 1)
        return _convert(root, loader, display)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise TargetError(Location(display, line), f"malformed YAML: {e.problem or e}",
                          "check indentation, colons and quoting on that line") from None
    finally:
        loader.dispose()


def _convert(node: yaml.Node, loader: yaml.SafeLoader, display: str) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise TargetError(Location(display, key_node.start_mark.line + 1),
                                  f"keys must be strings, found {key!r}")
            if key in out:
                # PyYAML silently keeps the last duplicate; a build file must not hide a target that way.
                raise TargetError(Location(display, key_node.start_mark.line + 1),
                                  f"duplicate key '{key}' (first on line {out[key].line})")
            out[key] = _convert(value_node, loader, display)
        return Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(v, loader, display) for v in node.value], line)
    return Node(loader.construct_object(node, deep=True), line)

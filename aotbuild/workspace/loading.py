"""Loading a workspace: WORKSPACE.aot.yaml and BUILD.aot.yaml files parsed into targets (only when re-planning)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aotbuild import layout
from aotbuild.errors import LabelError, Location, TargetError
from aotbuild.workspace.discovery import WORKSPACE_FILE
from aotbuild.workspace.labels import Label, parse_pattern
from aotbuild.workspace.schema import Target, WorkspaceConfig, parse_build_file, parse_workspace
from aotbuild.workspace.yaml_source import load_yaml, parse_yaml


@dataclass
class Package:
    """One package as parsed: its targets, or why its BUILD file or some of its targets are unusable."""

    name: str
    targets: list[Target] = field(default_factory=list)
    broken: TargetError | None = None
    broken_targets: dict[Label, TargetError] = field(default_factory=dict)
    weights: set[str] = field(default_factory=set)  # every weights file named, found or not


def load_config(root: Path) -> WorkspaceConfig:
    return parse_workspace(load_yaml(root / WORKSPACE_FILE, WORKSPACE_FILE), WORKSPACE_FILE)


def load_package(root: Path, package: str, config: WorkspaceConfig, text: str | None = None) -> Package:
    """Never raises for the user's mistakes: a broken file or target is recorded, so the rest still builds."""
    file = layout.build_file(package)
    result = Package(package)
    try:
        _check_package_name(package, file)
        node = load_yaml(root / file, file) if text is None else parse_yaml(text, file)
        targets, errors = parse_build_file(node, file, package, config.defaults)
    except TargetError as e:
        result.broken = e
        return result
    result.broken_targets.update(errors)
    for target in targets:
        try:
            if target.weights:
                result.weights.add(target.weights)
                _check_weights(root, target)
            result.targets.append(target)
        except TargetError as e:
            result.broken_targets[target.label] = e
    return result


def _check_package_name(package: str, file: str) -> None:
    """A directory name becomes part of labels, ninja paths and shell commands: it must be a valid label."""
    try:
        parse_pattern(f"//{package}:all")
    except LabelError as e:
        raise TargetError(Location(file), f"the directory '{package}' is not a valid package name: {e}",
                          "rename it with letters, digits, '_', '-', '.' and '+' only") from None


def _check_weights(root: Path, target: Target) -> None:
    where = Location(target.build_file, target.line, target.label.name, "weights")
    path = root / target.weights
    if not path.is_file():
        raise TargetError(where, f"weights file '{target.weights}' does not exist",
                          "give a state_dict file path relative to the package directory")
    # A symlink may point anywhere; the resolved file must still live inside the workspace.
    if not path.resolve().is_relative_to(root.resolve()):
        raise TargetError(where, f"weights file '{target.weights}' resolves outside the workspace",
                          "copy the checkpoint into the workspace")

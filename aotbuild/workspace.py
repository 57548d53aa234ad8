"""The workspace on disk: root discovery, package discovery, and loading BUILD files into targets."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import layout
from .errors import Location, TargetError, UserError
from .labels import Label
from .schema import Target, WorkspaceConfig, parse_build_file, parse_workspace
from .yaml_source import load_yaml

WORKSPACE_FILE = "WORKSPACE.aot.yaml"
BUILD_FILE = "BUILD.aot.yaml"


def find_root(start: Path) -> Path:
    """The nearest ancestor of `start` (itself included) that holds WORKSPACE.aot.yaml."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / WORKSPACE_FILE).is_file():
            return directory
    raise UserError(f"no {WORKSPACE_FILE} in {start} or any parent directory\n"
                    f"  fix: create an (even empty) {WORKSPACE_FILE} at the root of your workspace")


def current_package(root: Path, cwd: Path) -> str | None:
    """cwd as a workspace-relative package path, for relative labels; None when cwd is outside the workspace."""
    try:
        rel = cwd.resolve().relative_to(root)
    except ValueError:
        return None
    return "" if rel == Path(".") else rel.as_posix()


@dataclass
class Workspace:
    """A loaded workspace: its config, every package, and the targets of each package that parsed."""

    root: Path
    config: WorkspaceConfig
    packages: list[str] = field(default_factory=list)
    targets: dict[str, list[Target]] = field(default_factory=dict)
    broken: dict[str, TargetError] = field(default_factory=dict)  # package -> why its BUILD file failed
    broken_targets: dict[Label, TargetError] = field(default_factory=dict)  # one bad target, siblings fine

    def build_files(self) -> list[str]:
        """Workspace-relative paths of every file the plan was made from."""
        return [WORKSPACE_FILE] + [layout.build_file(p) for p in self.packages]

    def all_targets(self) -> list[Target]:
        return [t for p in self.packages for t in self.targets.get(p, [])]


def load_config(root: Path) -> WorkspaceConfig:
    return parse_workspace(load_yaml(root / WORKSPACE_FILE, WORKSPACE_FILE), WORKSPACE_FILE)


def discover_packages(root: Path, ignore: tuple[str, ...] = ()) -> list[str]:
    """Every directory under root holding BUILD.aot.yaml, skipping outputs, hidden dirs and nested workspaces."""
    found = []
    ignored = set(ignore) | {layout.OUT_DIR}
    for dirpath, dirnames, filenames in os.walk(root):  # does not follow symlinks: nothing outside can sneak in
        rel = Path(dirpath).relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        if rel and WORKSPACE_FILE in filenames:
            dirnames[:] = []  # a nested workspace is its own world, as in Bazel
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__"
                             and (f"{rel}/{d}" if rel else d) not in ignored)
        if BUILD_FILE in filenames:
            found.append(rel)
    return found


def load_workspace(root: Path) -> Workspace:
    """Parse every package. A broken package is recorded, not fatal: builds that don't need it go on."""
    config = load_config(root)
    ws = Workspace(root, config, discover_packages(root, config.ignore))
    for package in ws.packages:
        file = layout.build_file(package)
        try:
            node = load_yaml(root / file, file)
            targets, errors = parse_build_file(node, file, package, config.defaults)
        except TargetError as e:
            ws.broken[package] = e
            continue
        ws.broken_targets.update(errors)
        ws.targets[package] = []
        for target in targets:
            try:
                _check_weights(root, target)
                ws.targets[package].append(target)
            except TargetError as e:
                ws.broken_targets[target.label] = e
    return ws


def _check_weights(root: Path, target: Target) -> None:
    if target.weights is None:
        return
    where = Location(target.build_file, target.line, target.label.name, "weights")
    path = root / target.weights
    if not path.is_file():
        raise TargetError(where, f"weights file '{target.weights}' does not exist",
                          "give a state_dict file path relative to the package directory")
    # A symlink may point anywhere; the resolved file must still live inside the workspace.
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise TargetError(where, f"weights file '{target.weights}' resolves outside the workspace",
                          "copy the checkpoint into the workspace") from None



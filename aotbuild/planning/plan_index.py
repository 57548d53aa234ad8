"""plan.json: what the ninja files hold and the state of the files they came from; read without YAML or torch."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from aotbuild import __version__, layout
from aotbuild.planning.file_state import FileState, stat_fields, verdict
from aotbuild.workspace.discovery import MAX_SOURCE_BYTES, WORKSPACE_FILE, discover_packages
from aotbuild.workspace.labels import Label

FORMAT = 3  # bumped whenever the index's shape changes: an older index is simply planned over


@dataclass(frozen=True)
class PackageEntry:
    """One package as planned: its BUILD file's state and what parsing it gave."""

    file: FileState
    targets: dict[str, dict[str, Any]]  # name -> {"tags": [...], "goals": {rule kind: path under aot-out}}
    broken: str | None = None  # the BUILD file itself is unusable: why
    broken_targets: dict[str, str] = field(default_factory=dict)  # name -> why that target is unusable
    watched: dict[str, list[int] | None] = field(default_factory=dict)  # weights path -> [dev, ino] or None
    # [path, written_state()] of its ninja and specs files: one deleted, emptied or damaged since is re-planned.
    written: list[Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "file": self.file.to_json()}

    @staticmethod
    def from_json(data: dict[str, Any]) -> PackageEntry:
        return PackageEntry(**{**data, "file": FileState(*data["file"])})


@dataclass(frozen=True)
class Plan:
    version: str
    python: str  # the interpreter the ninja files run actions with: another one means another torch
    ninja: str  # the ninja binary of the `ninja` package, so a no-op run need not import it
    cache_dir: str | None  # WORKSPACE.aot.yaml's cache.dir, so a no-op run needs no YAML parser
    ignore: list[str]  # WORKSPACE.aot.yaml's ignore
    workspace: FileState
    packages: dict[str, PackageEntry]  # package -> entry, sorted by package
    remote_cache: str | None  # WORKSPACE.aot.yaml's cache.remote
    remote_verify_keys: tuple[str, ...]  # WORKSPACE.aot.yaml's cache.verify_keys
    ninja_file: list[int] | None  # written_state() of build.ninja as the plan left it
    executor: str | None = None  # WORKSPACE.aot.yaml's executor
    # plan.json's bytes as read, whose lines (one per package) encode_plan reuses for entries still the same.
    encoded: bytes | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def from_json(data: dict[str, Any], encoded: bytes | None = None) -> Plan:
        if data.pop("format", None) != FORMAT:
            raise ValueError("another index format")
        return Plan(**{**data, "workspace": FileState(*data["workspace"]), "encoded": encoded,
                       "packages": {p: PackageEntry.from_json(e) for p, e in data["packages"].items()},
                       "remote_verify_keys": tuple(data["remote_verify_keys"])})

    @cached_property
    def targets(self) -> dict[str, dict[str, Any]]:
        """label -> {"package", "tags", "goals"}, for every target that parsed."""
        return {f"//{p}:{name}": {"package": p, **t} for p, e in self.packages.items()  # str(Label(p, name))
                for name, t in e.targets.items()}

    @cached_property
    def labels(self) -> list[Label]:
        """Every buildable target, without re-parsing label text (the planner already checked each name)."""
        return [Label(p, name) for p, e in self.packages.items() for name in e.targets]

    @cached_property
    def broken(self) -> dict[str, str]:
        """package -> error text, for BUILD files that are unusable as a whole."""
        return {p: e.broken for p, e in self.packages.items() if e.broken is not None}

    @cached_property
    def broken_targets(self) -> dict[str, str]:
        """label -> error text, for single targets that failed while their siblings parsed."""
        return {f"//{p}:{name}": text for p, e in self.packages.items() for name, text in e.broken_targets.items()}

    @property
    def build_files(self) -> list[str]:
        """Workspace-relative: WORKSPACE.aot.yaml, then every BUILD.aot.yaml."""
        return [WORKSPACE_FILE] + [layout.build_file(p) for p in self.packages]


def read_plan(out_dir: Path) -> Plan | None:
    try:
        data = (out_dir / layout.PLAN_FILE).read_bytes()
        return Plan.from_json(json.loads(data), data)
    except (FileNotFoundError, ValueError, KeyError, TypeError, IndexError):
        return None  # absent, or written by another aotbuild: plan again


_PACKAGES = b'"packages":{\n'


def encode_plan(plan: Plan, previous: Plan | None = None) -> bytes:
    """plan.json: compact JSON (every run reads it back) with a line per package entry, so that a re-plan encodes
    only the entries it changed and takes the others' lines from `previous` (2 MB cost 25 ms to encode)."""
    reuse = _lines_of(previous) if previous is not None else {}
    lines = []
    for package, entry in plan.packages.items():
        line = reuse.get(package) if previous is not None and previous.packages.get(package) is entry else None
        if line is None:
            line = (json.dumps(package) + ":" + json.dumps(entry.to_json(), separators=(",", ":"))).encode()
        lines.append(line)
    fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan) if f.name not in ("packages", "encoded")}
    fields.update(format=FORMAT, workspace=plan.workspace.to_json(), remote_verify_keys=list(plan.remote_verify_keys))
    return json.dumps(fields, separators=(",", ":")).encode()[:-1] + b"," + _PACKAGES + b",\n".join(lines) + b"\n}}"


def _lines_of(plan: Plan) -> dict[str, bytes]:
    """package -> its line in the plan.json `plan` was read from; empty where that file is not laid out so."""
    raw = plan.encoded or b""
    at = raw.find(_PACKAGES)
    lines = raw[at + len(_PACKAGES):-3].split(b",\n") if at >= 0 and raw.endswith(b"\n}}") else []
    found = {p: line for p, line in zip(plan.packages, lines) if line.startswith(json.dumps(p).encode() + b":")}
    return found if len(found) == len(lines) == len(plan.packages) else {}


@dataclass(frozen=True)
class Staleness:
    """What re-planning must do: everything (`full` says why), or the named packages only."""

    full: str | None = None
    packages: list[str] = field(default_factory=list)  # every package on disk now
    changed: list[str] = field(default_factory=list)  # new packages, and those whose BUILD file or weights changed
    removed: list[str] = field(default_factory=list)
    moved: dict[str, FileState] = field(default_factory=dict)  # build file -> new state; same content

    @property
    def current(self) -> bool:
        return self.full is None and not self.changed and not self.removed


def watch_state(path: str) -> list[int] | None:
    """What the plan depends on of a weights file: that it exists, and which file it is (a retargeted symlink
    may now leave the workspace). Its content is the export's input, tracked by ninja."""
    return stat_fields(path, "st_dev", "st_ino")


def written_state(path: Path | str) -> list[int] | None:
    """What a plan file looked like when the plan wrote it: [size, mtime_ns, inode]. Another state means it
    was deleted, emptied (a crash before its data reached the disk) or edited: it is written again."""
    return stat_fields(path, "st_size", "st_mtime_ns", "st_ino")


def staleness(plan: Plan | None, root: Path, out_dir: Path) -> Staleness:
    """Compare the index with the workspace: stats every BUILD file, hashes only those whose stat moved."""
    if plan is None:
        return Staleness("no plan yet")
    if plan.version != __version__ or plan.python != sys.executable:
        return Staleness("aotbuild or its interpreter changed")
    if not os.path.exists(plan.ninja) or not os.path.exists(out_dir / layout.NINJA_FILE):
        return Staleness("build.ninja or the ninja binary is missing")
    if plan.ninja_file is not None and plan.ninja_file != written_state(out_dir / layout.NINJA_FILE):
        return Staleness("build.ninja was changed or damaged since it was planned")
    prefix = f"{root}/"
    moved: dict[str, FileState] = {}
    changed, state = verdict(prefix + WORKSPACE_FILE, plan.workspace, MAX_SOURCE_BYTES)
    if changed:  # defaults, ignore and cache settings reach every package
        return Staleness(f"{WORKSPACE_FILE} changed")
    if state is not None:
        moved[WORKSPACE_FILE] = state
    packages = discover_packages(root, tuple(plan.ignore))
    stale = []
    for package in packages:
        entry = plan.packages.get(package)
        if entry is None:
            stale.append(package)
            continue
        file = layout.build_file(package)
        changed, state = verdict(prefix + file, entry.file, MAX_SOURCE_BYTES)
        if changed or any(watch_state(prefix + w) != seen for w, seen in entry.watched.items()) or any(
                written_state(out_dir / f) != seen for f, seen in entry.written or ()):
            stale.append(package)
        elif state is not None:
            moved[file] = state
    present = set(packages)
    removed = [p for p in plan.packages if p not in present]
    return Staleness(None, packages, stale, removed, moved)

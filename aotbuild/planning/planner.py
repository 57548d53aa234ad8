"""Planning: BUILD files -> per-package ninja and specs files, build.ninja and the plan index; incremental."""

from __future__ import annotations

import gc
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import ninja

from aotbuild import __version__, layout, rules
from aotbuild.errors import Location, TargetError
from aotbuild.fsutil import replace_if_changed_unsynced, replace_unsynced
from aotbuild.planning.file_state import FileState, read_state
from aotbuild.planning.ninja_files import (PACKAGES_DIR, package_file, package_ninja, package_specs_text, top_ninja,
                                          write_pools)
from aotbuild.planning.plan_index import PackageEntry, Plan, Staleness, encode_plan, watch_state, written_state
from aotbuild.workspace.discovery import MAX_SOURCE_BYTES, WORKSPACE_FILE, discover_packages
from aotbuild.workspace.schema import Package, WorkspaceConfig, load_package, parse_workspace
from aotbuild.workspace.yaml_source import decode, parse_yaml, too_large


def _text(file: str, state: FileState, data: bytes | None) -> str:
    """The text of a file as read_state read it; TargetError where it could not be read."""
    if data is None:
        if state.sig is None:
            raise TargetError(Location(file), "file disappeared while planning", "run the command again")
        assert state.digest is not None
        if state.digest.startswith("error:"):
            raise TargetError(Location(file), f"cannot read the file: {state.digest.removeprefix('error:')}")
        raise too_large(file, int(state.digest.removeprefix("size:")))
    return decode(data, file)


def plan_package(root: Path, out_dir: Path, package: str, config: WorkspaceConfig, python: str) -> PackageEntry:
    """Parse one package and write its specs file and ninja file; returns its index entry."""
    file = layout.build_file(package)
    state, data = read_state(f"{root}/{file}", MAX_SOURCE_BYTES)
    try:
        text = _text(file, state, data)
    except TargetError as e:
        loaded = Package(broken=e)
    else:
        loaded = load_package(root, package, config, text)
    ninja_file, specs_file = package_file(package), package_file(package, "specs")
    written = None
    if loaded.targets:
        replace_if_changed_unsynced(out_dir / specs_file, package_specs_text(package, loaded.targets).encode())
        replace_if_changed_unsynced(out_dir / ninja_file, package_ninja(package, loaded.targets, python).encode())
        written = [[f, written_state(out_dir / f)] for f in (ninja_file, specs_file)]
    else:
        (out_dir / ninja_file).unlink(missing_ok=True)
        (out_dir / specs_file).unlink(missing_ok=True)
    targets = {t.label.name: {"tags": list(t.tags), "device": t.device,
                              "goals": {k.name: k.goal_path(t.label) for k in rules.kinds()}}
               for t in loaded.targets}
    return PackageEntry(state, targets, None if loaded.broken is None else str(loaded.broken),
                        {label.name: str(e) for label, e in loaded.broken_targets.items()},
                        {w: watch_state(f"{root}/{w}") for w in sorted(loaded.weights)}, written)


def update_plan(root: Path, out_dir: Path, old: Plan | None, stale: Staleness) -> Plan:
    """Re-plan every package when `stale.full` says so, else the changed ones. The index is written last, so a
    crash before it leaves an index that still names the changes as pending."""
    # Planning makes hundreds of thousands of small objects and no garbage cycles worth collecting: the
    # cyclic collector rescanning the growing heap made parsing 10,000 targets' YAML up to four times slower.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _update_plan(root, out_dir, old, stale)
    finally:
        if gc_was_enabled:
            gc.enable()


def _update_plan(root: Path, out_dir: Path, old: Plan | None, stale: Staleness) -> Plan:
    python = shlex.quote(sys.executable)
    workspace_state, data = read_state(f"{root}/{WORKSPACE_FILE}", MAX_SOURCE_BYTES)
    config = parse_workspace(parse_yaml(_text(WORKSPACE_FILE, workspace_state, data), WORKSPACE_FILE), WORKSPACE_FILE)
    # A WORKSPACE.aot.yaml edited since `stale` was computed reaches every package too.
    full = stale.full is not None or old is None or old.workspace.digest != workspace_state.digest
    if full:
        packages = discover_packages(root, config.ignore)
        entries: dict[str, PackageEntry] = {}
        to_plan = packages
    else:
        assert old is not None
        packages = stale.packages
        entries = {p: e for p, e in old.packages.items() if p not in stale.removed}
        for package, entry in entries.items():
            moved = stale.moved.get(layout.build_file(package))
            if moved is not None:
                entries[package] = replace(entry, file=moved)
        to_plan = stale.changed
    for package in to_plan:
        entries[package] = plan_package(root, out_dir, package, config, python)
    entries = {p: entries[p] for p in packages}  # discovery order: sorted, as the index and ninja expect
    with_targets = [p for p in packages if entries[p].targets]
    if full or stale.removed:
        _remove_stray_package_files(out_dir, {package_file(p, ext) for p in with_targets for ext in ("ninja", "specs")})
    top = top_ninja(python, [WORKSPACE_FILE] + [layout.build_file(p) for p in packages], with_targets)
    write_pools(out_dir)  # before build.ninja, which includes it
    ninja_file = out_dir / layout.NINJA_FILE
    if not replace_if_changed_unsynced(ninja_file, top.encode()):
        # A fresh mtime marks ninja's generator edge done for every BUILD file read so far.
        os.utime(ninja_file)
    plan = Plan(__version__, sys.executable, str(Path(ninja.BIN_DIR) / "ninja"), config.cache_dir,
                list(config.ignore), workspace_state, entries, config.remote_cache, config.remote_verify_keys,
                written_state(ninja_file), config.executor)
    replace_unsynced(out_dir / layout.PLAN_FILE, encode_plan(plan, old))
    return plan


def _remove_stray_package_files(out_dir: Path, keep: set[str]) -> None:
    """Package files that an earlier plan wrote for packages removed, gone or broken since."""
    directory = out_dir / PACKAGES_DIR
    for path in [*directory.glob("*.ninja"), *directory.glob("*.specs")]:  # none where it is missing
        if f"{PACKAGES_DIR}/{path.name}" not in keep:
            path.unlink(missing_ok=True)


"""aotbuild.load: a label's current .pt2 as a Python callable, checked against its manifest before it runs."""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aotbuild import cpu_levels, layout
from aotbuild.cache import archives
from aotbuild.errors import UserError, VerificationError
from aotbuild.hashing import sha256_file
from aotbuild.planning import toolchain
from aotbuild.rules.compile import MANIFEST
from aotbuild.rules.export import REFERENCE_IO
from aotbuild.workspace.discovery import current_package, find_root
from aotbuild.workspace.labels import Label, parse_label


@dataclass(frozen=True)
class TargetFiles:
    """A built target's files on disk, as its manifest names them."""

    label: Label
    root: Path
    dir: Path
    manifest: dict[str, Any]

    def artifact(self, kind: str) -> Path:
        """The immutable, versioned file (not the alias, which a concurrent build may swing to another one)."""
        return self.dir / self.manifest["artifacts"][kind]["file"]

    @property
    def pt2(self) -> Path:
        return self.artifact("pt2")

    @property
    def so(self) -> Path:
        return self.artifact("so")

    @property
    def reference_io(self) -> Path:
        """Flat inputs and eager outputs of each case (see aotbuild/actions/reference_io.py)."""
        return self.dir / REFERENCE_IO

    def check_digest(self, kind: str) -> Path:
        """The artifact's path once its bytes match the sha256 manifest.json records for it."""
        path = self.artifact(kind)
        if not path.is_file():
            raise UserError(f"{self.label}: {path} named in {self.dir / 'manifest.json'} is missing\n"
                            f"  fix: run `aotbuild build {self.label}`")
        if sha256_file(path) != self.manifest["artifacts"][kind]["sha256"]:
            raise VerificationError(f"{self.label}: {path} does not match the sha256 in manifest.json: it was "
                                    f"modified after the build\n  fix: run `aotbuild clean`, then "
                                    f"`aotbuild build {self.label}`")
        return path


def locate(label: str, workspace: str | Path | None = None) -> TargetFiles:
    """`label`'s built files; `workspace` is any directory inside it (default: cwd); `:mlp` is relative to cwd."""
    root = find_root(Path(workspace) if workspace is not None else Path.cwd())
    parsed = parse_label(label, current_package(root, Path.cwd()))
    paths = layout.TargetPaths(parsed)
    manifest_path = root / layout.OUT_DIR / paths.file(MANIFEST)
    if not manifest_path.is_file():
        raise UserError(f"{parsed}: no manifest.json at {manifest_path}: the target has not been built\n"
                        f"  fix: run `aotbuild build {parsed}` in {root}")
    manifest = json.loads(manifest_path.read_text())
    return TargetFiles(parsed, root, manifest_path.parent, manifest)


def check_host_matches(files: TargetFiles) -> None:
    """Refuse an artifact built for another torch, CPU ISA or GPU arch: AOTInductor code is tied to all three."""
    m, fix = files.manifest, f"  fix: build {files.label} on this machine, or pass check_host=False if you know better"
    running = toolchain.torch_versions()["torch"]
    if running != m["torch"]:
        raise UserError(f"{files.label} was built with torch {m['torch']}, this interpreter has torch {running}\n{fix}")
    level = cpu_levels.level_of(m["cpu_isa"])
    if (lacks := cpu_levels.host_lacks(level)) is not None:
        raise UserError(f"{files.label} was compiled for {lacks}\n{fix}")
    if m["device"] == "cpu" and level == cpu_levels.NATIVE and m["cpu_isa"] != toolchain.cpu_isa():
        # Compiled with -march=native: another CPU family may lack an instruction it uses (SIGILL, not an error).
        raise UserError(f"{files.label} was compiled for CPU ISA {m['cpu_isa']}, this host is "
                        f"{toolchain.cpu_isa()}\n{fix}")
    if m["device"].startswith("cuda") and m.get("gpu_arch"):
        host = set((toolchain.gpu_arch() or "").split(","))
        if not set(m["gpu_arch"].split(",")) <= host:
            raise UserError(f"{files.label} was compiled for GPU arch {m['gpu_arch']}, this host has "
                            f"{', '.join(sorted(host - {''})) or 'no NVIDIA GPU'}\n{fix}")


def import_requirements(files: TargetFiles) -> list[str]:
    """Import the modules the manifest says the .pt2 needs (those registering pytree types of its inputs or
    outputs), with the workspace root on sys.path as during export. Manifests without the field need none."""
    modules = list(files.manifest.get("requires_imports") or [])
    added = str(files.root) not in sys.path
    if added:
        sys.path.insert(0, str(files.root))
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError as e:
                raise UserError(f"{files.label}: manifest.json lists module '{name}' as needed to load the .pt2, "
                                f"but it does not import: {e}\n  fix: install it, or run from an environment "
                                "where the model's code is importable") from e
    finally:
        if added:
            sys.path.remove(str(files.root))
    return modules


class LoadedModel:
    """A .pt2 called as the model's forward() through libtorch's AOTIModelPackageLoader (see docs/architecture.md
    for why not aoti_load_package): inputs flattened by the package's in_spec, outputs rebuilt with its out_spec,
    as torch's AOTICompiledModel does. `manifest` says what it was built from."""

    def __init__(self, label: str, path: Path, manifest: dict[str, Any]) -> None:
        import torch
        from torch.utils import _pytree as pytree

        self.label = label
        self.path = path
        self.manifest = manifest
        self.loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)
        # treespec_loads needs every pytree type in the specs registered: load() imports requires_imports first.
        in_spec, self.out_spec = (pytree.treespec_loads(spec) for spec in self.loader.get_call_spec())
        kwargs_spec = in_spec.child(1) if hasattr(in_spec, "child") else in_spec.children_specs[1]
        self.keywords = list(kwargs_spec.context)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch
        from torch.utils import _pytree as pytree

        if set(kwargs) != set(self.keywords):
            raise TypeError(f"expected keyword arguments {self.keywords}, got {sorted(kwargs)}")
        # Keyword order is the exported signature's, not the caller's.
        flat = pytree.tree_leaves((args, {k: kwargs[k] for k in self.keywords}))
        outputs = self.loader.boxed_run([x for x in flat if isinstance(x, torch.Tensor)])
        return pytree.tree_unflatten(outputs, self.out_spec)


def load(label: str, workspace: str | Path | None = None, *, check_host: bool = True) -> LoadedModel:
    """The current .pt2 of `label`, digest-checked against manifest.json, host-checked, and loaded."""
    files = locate(label, workspace)
    path = files.check_digest("pt2")
    why = archives.package_problem(path)
    if why is not None:  # libtorch's loader extracts member names as they are, `..` included
        raise VerificationError(f"{files.label}: refusing to load {path}: {why}\n"
                                f"  fix: run `aotbuild clean`, then `aotbuild build {files.label}`")
    if check_host:
        check_host_matches(files)
    import_requirements(files)
    return LoadedModel(str(files.label), path, files.manifest)

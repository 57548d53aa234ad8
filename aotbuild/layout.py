"""Where every file lives: pure functions from labels to paths, relative to the workspace or to aot-out/."""

from __future__ import annotations

from dataclasses import dataclass

from .labels import Label

OUT_DIR = "aot-out"
NINJA_FILE = "build.ninja"
STATE_DIR = ".aotbuild"  # aotbuild's own bookkeeping inside aot-out/; '.' keeps it apart from package names
PLAN_FILE = f"{STATE_DIR}/plan.json"
TOOLCHAIN_FILE = f"{STATE_DIR}/toolchain.json"
EVENTS_FILE = f"{STATE_DIR}/events.jsonl"


def build_file(package: str) -> str:
    """Workspace-relative path of a package's BUILD file."""
    return f"{package}/BUILD.aot.yaml" if package else "BUILD.aot.yaml"


def from_out(workspace_path: str) -> str:
    """A workspace-relative path as seen from aot-out/, where ninja runs."""
    return f"../{workspace_path}"


@dataclass(frozen=True)
class TargetPaths:
    """The files of one target, relative to aot-out/."""

    label: Label

    @property
    def dir(self) -> str:
        return f"{self.label.package}/{self.label.name}" if self.label.package else self.label.name

    def file(self, name: str) -> str:
        return f"{self.dir}/{name}"

    @property
    def export_spec(self) -> str:
        return self.file("export.json")

    @property
    def compile_spec(self) -> str:
        return self.file("compile.json")

    @property
    def graph(self) -> str:
        return self.file("graph.json")

    @property
    def manifest(self) -> str:
        return self.file("manifest.json")

    def log(self, action: str) -> str:
        return self.file(f"{action}.log")

    def versioned(self, digest: str, ext: str) -> str:
        """Immutable artifact name: the content digest is in the name, so the file never changes."""
        return f"{self.label.name}-{digest[:16]}.{ext}"

    def alias(self, ext: str) -> str:
        return f"{self.label.name}.{ext}"


def target_dir_of(spec_path: str) -> str:
    """The target directory holding a spec file path given to an action."""
    return spec_path.rsplit("/", 1)[0]

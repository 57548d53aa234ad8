"""Where every file lives: pure functions from labels to paths, relative to the workspace or to aot-out/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aotbuild.workspace.labels import Label

OUT_DIR = "aot-out"
# Two namespaces in aot-out/ that cannot collide with anything a BUILD file names: aotbuild's own files live
# under '.aotbuild/' (no package segment or target name may start with '.'), and a target's directory is
# '<package>/@<name>' ('@' can start no target name and appear in no package segment, while the files in a
# target directory are all named by aotbuild and never start with '@').
STATE_DIR = ".aotbuild"
NINJA_FILE = f"{STATE_DIR}/build.ninja"  # plain ninja: `ninja -C aot-out -f .aotbuild/build.ninja`
NINJA_BUILDDIR = STATE_DIR  # where ninja keeps .ninja_log and .ninja_deps
TARGET_PREFIX = "@"
PLAN_FILE = f"{STATE_DIR}/plan.json"
TOOLCHAIN_FILE = f"{STATE_DIR}/toolchain.json"
EVENTS_FILE = f"{STATE_DIR}/events.jsonl"
CACHE_ROOT_FILE = f"{STATE_DIR}/cache-root.json"  # the cache the last build used: actions read it from here


def build_file(package: str) -> str:
    """Workspace-relative path of a package's BUILD file."""
    return f"{package}/BUILD.aot.yaml" if package else "BUILD.aot.yaml"


def from_out(workspace_path: str) -> str:
    """A workspace-relative path as seen from aot-out/, where ninja runs."""
    return f"../{workspace_path}"


@dataclass(frozen=True)
class TargetPaths:
    """The files of one target, relative to aot-out/. Their names are declared by the kinds in rules/."""

    label: Label

    @property
    def dir(self) -> str:
        name = f"{TARGET_PREFIX}{self.label.name}"
        return f"{self.label.package}/{name}" if self.label.package else name

    def file(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def log(self, action: str) -> str:
        return self.file(f"{action}.log")

    def versioned(self, digest: str, ext: str) -> str:
        """Immutable artifact name: the content digest is in the name, so the file never changes."""
        return f"{self.label.name}-{digest[:16]}.{ext}"

    def alias(self, ext: str) -> str:
        return f"{self.label.name}.{ext}"


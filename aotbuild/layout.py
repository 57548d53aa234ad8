"""Where every file lives: pure functions from labels to paths, relative to the workspace or to aot-out/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aotbuild.workspace.labels import Label

OUT_DIR = "aot-out"
# Names no BUILD file can spell: '.aotbuild/' and '<package>/@<name>' (README: "Two namespaces that cannot collide").
STATE_DIR = ".aotbuild"
NINJA_FILE = f"{STATE_DIR}/build.ninja"  # plain ninja: `ninja -C aot-out -f .aotbuild/build.ninja`
NINJA_BUILDDIR = STATE_DIR  # where ninja keeps .ninja_log and .ninja_deps
TARGET_PREFIX = "@"
PLAN_FILE = f"{STATE_DIR}/plan.json"
TOOLCHAIN_FILE = f"{STATE_DIR}/toolchain.json"
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

    def versioned(self, digest: str, ext: str) -> str:
        """Immutable artifact name: the content digest is in the name, so the file never changes."""
        return f"{self.label.name}-{digest[:16]}.{ext}"

    def alias(self, ext: str) -> str:
        return f"{self.label.name}.{ext}"


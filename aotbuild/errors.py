"""Exceptions, split by who is at fault: the user, an action, or the infrastructure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class AotbuildError(Exception):
    """Base class; `exit_code` is what the CLI returns for it."""

    exit_code = 1


class UserError(AotbuildError):
    """Bad input from the user: a target file, a label, a flag. Exit code 2."""

    exit_code = 2


@dataclass(frozen=True)
class Location:
    """Where in a user's file something was found; any part may be unknown."""

    file: Path | str | None = None
    line: int | None = None
    target: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(f"{self.file}:{self.line}" if self.line else str(self.file))
        if self.target:
            # repr() shows a newline or tab in a name instead of breaking the message across lines.
            parts.append(f"target '{self.target}'" if self.target.isprintable() else f"target {self.target!r}")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)


class TargetError(UserError):
    """A BUILD/WORKSPACE file is malformed; the message names file, line, target and field."""

    def __init__(self, where: Location, problem: str, fix: str | None = None) -> None:
        self.where = where
        self.problem = problem
        self.fix = fix
        text = f"{where}: {problem}" if str(where) else problem
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)


class StepError(TargetError):
    """A target error in one named step of an action, so a model failing eagerly is not a failed export."""

    def __init__(self, step: str, where: Location, problem: str, fix: str | None = None) -> None:
        self.step = step
        super().__init__(where, problem, fix)


class LabelError(UserError):
    """A label or target pattern is malformed, escapes the workspace, or names nothing."""


class ActionError(AotbuildError):
    """A build action (export, compile, verify) failed for one target."""

    def __init__(self, label: str, action: str, message: str) -> None:
        self.message = message  # without the "label: action failed:" prefix, for callers that add their own
        super().__init__(f"{label}: {action} failed: {message}")


class NeedsGpuError(ActionError):
    """A CUDA target's result is neither cached nor computable here; exit code 4 means "a GPU runner builds it"."""

    exit_code = 4

    def __init__(self, label: str, action: str) -> None:
        super().__init__(label, action, "needs a CUDA GPU: there is none on this machine and the result is not in "
                         "the cache\n  fix: build it on a GPU machine sharing this cache (or its remote cache); set "
                         "AOTBUILD_GPU_ARCH to the GPU runner's compute capability (e.g. 9.0) so keys match")


class VerificationError(AotbuildError):
    """An artifact's outputs differ from eager PyTorch beyond tolerance. Exit code 3."""

    exit_code = 3


class InfraError(AotbuildError):
    """The cache, a remote, or a tool (ninja, the compiler) misbehaved: not the user's fault."""


class CacheError(InfraError):
    """A cache entry could not be read or written."""

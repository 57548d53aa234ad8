"""The verify kind: run an artifact on the example and range-edge inputs and compare with eager references."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aotbuild import layout
from aotbuild.rules import Kind, export
from aotbuild.rules.compile import MANIFEST

if TYPE_CHECKING:
    from aotbuild.workspace.schema import Target

SPEC = "verify.json"
VERIFIED = "verified.json"


@dataclass(frozen=True)
class VerifySpec:
    """verify.json: the tolerance to compare with (None: defaults by dtype)."""

    label: str
    tolerance: dict[str, float] | None

    @classmethod
    def of(cls, target: Target) -> VerifySpec:
        return cls(str(target.label), asdict(target.tolerance) if target.tolerance else None)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Every file the action reads is an input: export.json (out-of-range cases), and graph.json and the
# toolchain, which a re-export of an evicted reference needs.
KIND = Kind(
    name="verify", spec=VerifySpec.of, spec_file=SPEC, goal=VERIFIED,
    inputs=(MANIFEST, export.REFERENCE, SPEC),
    implicit=(export.SPEC, export.GRAPH, layout.TOOLCHAIN_FILE),
    ran="verified", hit="verify-cache hit", cost=1, after=("compile",),
)

"""The verify kind: run an artifact on the example and range-edge inputs and compare with eager references."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aotbuild import layout
from aotbuild.rules import Kind, export
from aotbuild.rules.compile import MANIFEST

if TYPE_CHECKING:
    from aotbuild.workspace.schema import Target

SPEC = "verify.json"
VERIFIED = "verified.json"


def verify_spec(target: Target) -> dict[str, Any]:
    """verify.json: the tolerance to compare with (None: defaults by dtype)."""
    return {"label": str(target.label), "tolerance": asdict(target.tolerance) if target.tolerance else None}


# Every file the action reads is an input: export.json (out-of-range cases), and graph.json and the
# toolchain, which a re-export of an evicted reference needs.
KIND = Kind(
    name="verify", spec=verify_spec, spec_file=SPEC, goal=VERIFIED,
    inputs=(MANIFEST, export.REFERENCE, SPEC),
    implicit=(export.SPEC, export.GRAPH, layout.TOOLCHAIN_FILE),
    ran="verified", hit="verify-cache hit", cost=1, after=("compile",),
    pool=export.LOCAL_POOL[0],  # declared by the export kind, which comes first
)

"""Cache hits resolved in the CLI's own process before ninja runs: no action process and no torch per hit.

For every selected target whose artifact is missing (a fresh checkout, a new target, after `clean`), the
export and compile edges are run in-process on a cache hit and recorded in ninja's logs (engine/cache_hits.py),
so ninja then runs only what the cache could not answer. Targets whose artifact exists are ninja's alone: it
knows best what changed. This module only decides whether there is anything to do, so that a no-op build
does not pay for importing the machinery.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from aotbuild.planning.plan_index import Plan
from aotbuild.workspace.labels import Label

BUILD_GOAL = "compile"  # rules.BUILD_GOAL, named here because importing rules/ would cost every no-op build


def missing_artifacts(out_dir: Path, plan: Plan, labels: list[Label]) -> list[Label]:
    """The targets of `labels` whose artifact (the build goal) is not there."""
    prefix = f"{out_dir}/"
    packages = plan.packages  # not plan.targets: building that map for 10,000 targets costs 30 ms
    return [label for label in labels
            if not os.path.exists(prefix + packages[label.package].targets[label.name]["goals"][BUILD_GOAL])]


def resolve_hits(root: Path, out_dir: Path, plan: Plan, labels: list[Label], env: Mapping[str, str]) -> int:
    """Resolve from the cache every target of `labels` whose artifact is missing; returns how many were.

    `env` is the environment ninja's actions get (cache dir, events file, remote settings)."""
    missing = missing_artifacts(out_dir, plan, labels)
    if not missing:
        return 0
    from aotbuild.engine.cache_hits import resolve  # torch-free, but far from free to import

    return resolve(root, out_dir, plan.ninja, missing, env)

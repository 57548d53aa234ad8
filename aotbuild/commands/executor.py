"""`aotbuild executor resources`: the routing labels a cluster node advertises to Ray."""

from __future__ import annotations

import argparse
import json
import os


def cmd_executor(args: argparse.Namespace) -> int:
    from aotbuild.executors import routing
    from aotbuild.planning.toolchain import fingerprint

    # This node's own fingerprint, as its worker computes it before running an action.
    print(json.dumps(routing.node_resources(fingerprint(os.environ)), sort_keys=True))
    return 0

"""`aotbuild executor resources`: the routing labels a cluster node advertises to Ray."""

from __future__ import annotations

import argparse
import json
import os


def cmd_executor(args: argparse.Namespace) -> int:
    from aotbuild.cpu_levels import host_levels
    from aotbuild.executors import routing
    from aotbuild.planning.toolchain import fingerprint

    # This node's own fingerprint and levels, as its worker computes them before running an action.
    print(json.dumps(routing.node_resources(fingerprint(os.environ), host_levels()), sort_keys=True))
    return 0

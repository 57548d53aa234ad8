"""The ninja command of an action (rules/ spells it): a tiny client that runs `python -m <module>` in a warm worker."""

from __future__ import annotations

import shlex
from pathlib import Path

CLIENT = Path(__file__).with_name("workers") / "client.py"


def action_command(python: str, module: str, *args: str) -> str:
    """`python -S client.py module args`: the same command with and without workers (AOTBUILD_WORKERS=0 makes
    the client exec the module itself), so switching never makes ninja rebuild anything."""
    return " ".join([python, "-S", shlex.quote(str(CLIENT)), module, *args])

"""Inductor `options` checked against the running torch's config before any export or compile work."""

from __future__ import annotations

import difflib
from typing import Any

from aotbuild.actions.runtime import location
from aotbuild.errors import TargetError


def check_options(spec: dict[str, Any]) -> None:
    """Unknown keys (`aot_inductor.debug_compile`) and values of the wrong type raise a TargetError, with a fix."""
    options = spec["options"]
    if not options:
        return
    import torch
    from torch._inductor import config

    known = config.get_config_copy()
    for key, value in options.items():
        where = location(spec, f"options.{key}")
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.7)
            group = key.rpartition(".")[0]
            fix = (f"did you mean '{close[0]}'?" if close else
                   f"see torch._inductor.config{' (group ' + group + ')' if group else ''} for the keys this torch has")
            raise TargetError(where, f"unknown inductor option '{key}' for torch {torch.__version__}", fix)
        default = known[key]
        # YAML gives bool/int/float/str/None; only a clear mismatch of a bool or number setting is reported.
        if isinstance(default, bool) and not isinstance(value, bool):
            raise TargetError(where, f"inductor option '{key}' takes true or false, found {value!r}",
                              f"write {key}: {str(bool(default)).lower()}")
        if (isinstance(default, (int, float)) and not isinstance(default, bool)
                and (isinstance(value, bool) or not isinstance(value, (int, float)))):
            raise TargetError(where, f"inductor option '{key}' takes a number, found {value!r}",
                              f"write {key}: {default!r}")

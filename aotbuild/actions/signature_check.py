"""Declared inputs checked against forward()'s signature: torch.export would bind a misspelled one by position."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from aotbuild.actions.runtime import location
from aotbuild.errors import TargetError


def _did_you_mean(name: str, candidates: list[str]) -> str | None:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"did you mean '{close[0]}'?" if close else None


def _order_fix(name: str, param: inspect.Parameter, positional: list[inspect.Parameter], given: set[str]) -> str:
    """Likeliest fix first: when the parameter in the way has no input of its own (GPT-2's `past_key_values`
    or `cache` between `input_ids` and `attention_mask`), reordering cannot help, passing by keyword can."""
    keyword = f"mark '{name}' `keyword: true`"
    reorder = f"list the inputs in forward()'s order ({', '.join(p.name for p in positional)})"
    if param.name not in given:
        return f"{keyword} (forward()'s parameter '{param.name}' comes first and has no input); or {reorder}"
    return f"{reorder}, or {keyword}"


def check_inputs(forward: Any, spec: dict[str, Any]) -> None:
    """Raise a TargetError where `spec`'s inputs cannot bind to `forward` as the export calls it (positional
    inputs in the order written, keyword ones by name)."""
    if isinstance(spec["inputs"], str):
        return  # a callable returns (args, kwargs) itself; torch checks those against the signature
    try:
        signature = inspect.signature(forward)
    except (TypeError, ValueError):
        return  # a builtin or C-extension forward: nothing to check against
    params = list(signature.parameters.values())
    named = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    has_var_args = any(p.kind == p.VAR_POSITIONAL for p in params)
    has_var_kwargs = any(p.kind == p.VAR_KEYWORD for p in params)
    shown = f"forward({', '.join(str(p) for p in params)})"
    inputs = spec["inputs"]
    given = {item["name"] for item in inputs}
    for item in inputs:
        name = item["name"]
        absorbed = has_var_kwargs if item["keyword"] else has_var_args  # **kwargs / *args take any name
        if name not in named and not absorbed:
            hint = _did_you_mean(name, named)
            raise TargetError(location(spec, f"inputs.{name}"), f"input '{name}' matches no parameter of {shown}",
                              hint or f"name each input after a parameter: {', '.join(named) or '(none)'}")
    args = [item for item in inputs if not item["keyword"]]
    for index, item in enumerate(args):
        if index >= len(positional):
            if has_var_args:
                break
            raise TargetError(location(spec, f"inputs.{item['name']}"),
                              f"input '{item['name']}' would be positional argument {index + 1}, but {shown} takes "
                              f"{len(positional)}", "mark it `keyword: true`, or remove it")
        param = positional[index]
        if param.name != item["name"]:
            raise TargetError(location(spec, f"inputs.{item['name']}"),
                              f"input '{item['name']}' is passed positionally as parameter '{param.name}' of {shown}",
                              _order_fix(item["name"], param, positional, given))
    # Every parameter bound positionally above has an input of its name.
    for param in params:
        if param.default is not param.empty or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name not in given:
            hint = _did_you_mean(param.name, sorted(given - set(named)))
            fix = hint or f"declare it: inputs: {{{param.name}: {{shape: [...], dtype: float32}}}}"
            raise TargetError(location(spec, "inputs"),
                              f"forward()'s required parameter '{param.name}' has no input; {shown}", fix)

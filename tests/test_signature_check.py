"""Declared inputs against forward()'s signature: a table of signatures, inputs and the error expected."""

from __future__ import annotations

import pytest

from aotbuild.actions.signature_check import check_inputs
from aotbuild.errors import TargetError


def spec(*inputs: tuple[str, bool]) -> dict:
    return {"label": "//m:t", "where": {"file": "m/BUILD.aot.yaml", "line": 4},
            "inputs": [{"name": n, "keyword": kw} for n, kw in inputs]}


def f_x(x): ...
def f_x_mask(x, mask): ...
def f_x_opt(x, mask=None): ...
def f_kwonly(x, *, scale): ...
def f_varkw(x, **kwargs): ...
def f_varargs(*args): ...
def f_gpt2(input_ids, cache=None, attention_mask=None): ...  # transformers 5's GPT-2: a cache comes second


OK = [
    (f_x, [("x", False)]),
    (f_x, [("x", True)]),
    (f_x_mask, [("x", False), ("mask", False)]),
    (f_x_mask, [("x", False), ("mask", True)]),
    (f_x_mask, [("mask", True), ("x", True)]),
    (f_x_opt, [("x", False)]),
    (f_kwonly, [("x", False), ("scale", True)]),
    (f_varkw, [("x", False), ("anything", True)]),
    (f_varargs, [("a", False), ("b", False)]),
]


@pytest.mark.parametrize("forward,inputs", OK)
def test_inputs_that_bind(forward, inputs) -> None:
    check_inputs(forward, spec(*inputs))


BAD = [
    (f_x, [("xx", False)], "inputs.xx", "input 'xx' matches no parameter of forward(x)", "did you mean 'x'?"),
    (f_x_mask, [("x", False), ("msk", True)], "inputs.msk", "matches no parameter", "did you mean 'mask'?"),
    (f_x_mask, [("x", False)], "inputs", "forward()'s required parameter 'mask' has no input",
     "declare it: inputs: {mask:"),
    (f_x_mask, [("mask", False), ("x", False)], "inputs.mask",
     "input 'mask' is passed positionally as parameter 'x'", "list the inputs in forward()'s order (x, mask)"),
    # The parameter in the way has no input: reordering cannot help, so keyword: true comes first.
    (f_gpt2, [("input_ids", False), ("attention_mask", False)], "inputs.attention_mask",
     "passed positionally as parameter 'cache'", "mark 'attention_mask' `keyword: true` (forward()'s parameter "
     "'cache' comes first and has no input); or list the inputs in forward()'s order"),
    (f_x, [("x", False), ("y", True)], "inputs.y", "input 'y' matches no parameter", "name each input after"),
    (f_kwonly, [("x", False), ("scale", False)], "inputs.scale", "would be positional argument 2",
     "mark it `keyword: true`"),
    (f_kwonly, [("x", False)], "inputs", "required parameter 'scale' has no input", "declare it"),
]


@pytest.mark.parametrize("forward,inputs,field,problem,fix", BAD)
def test_inputs_that_do_not_bind_name_file_line_target_field_and_fix(forward, inputs, field, problem, fix) -> None:
    with pytest.raises(TargetError) as e:
        check_inputs(forward, spec(*inputs))
    text = str(e.value)
    assert text.startswith(f"m/BUILD.aot.yaml:4, target '//m:t', field '{field}': ")
    assert problem in text and f"fix: {fix}" in text


def test_callable_inputs_are_left_to_torch() -> None:
    check_inputs(f_x, {"label": "//m:t", "inputs": "m.inputs:make"})

"""In-process checks of the export's helpers: interface naming, non-tensor outputs, options, safetensors."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from aotbuild.errors import Location, TargetError, UserError

pytestmark = pytest.mark.torch

torch = pytest.importorskip("torch")
pytree = torch.utils._pytree

from aotbuild.actions import compile as compile_action  # noqa: E402
from aotbuild.actions import interface, model_loader  # noqa: E402


@pytest.mark.parametrize("value,names", [
    (lambda t: t, ["output"]),
    (lambda t: (t, t), ["output_0", "output_1"]),
    (lambda t: {"a": t, "b": [t, t]}, ["a", "b_0", "b_1"]),
    (lambda t: [(t,), {"k": t}], ["output_0_0", "output_1_k"]),
])
def test_output_names_follow_pytree_paths(value, names) -> None:
    flat = interface.flat_outputs(value(torch.ones(1)), "//m:t", Location("B", 1, "//m:t"))
    assert [n for n, _, _ in flat] == names


@pytest.mark.parametrize("value,shown", [((torch.ones(1), None), "NoneType (None)"), ((torch.ones(1), 3), "int (3)"),
                                        ({"a": 2.5}, "float (2.5)")])
def test_non_tensor_outputs_are_user_errors(value, shown) -> None:
    with pytest.raises(TargetError, match=rf"is {shown.replace('(', '[(]').replace(')', '[)]')}, not a tensor"):
        interface.flat_outputs(value, "//m:t", Location("B", 1, "//m:t"))


@dataclass
class Named:
    a: torch.Tensor


pytree.register_dataclass(Named, serialized_type_name="tests.test_actions_checks.Named")


def test_required_imports_name_the_modules_of_custom_node_types() -> None:
    spec = pytree.tree_structure(((Named(torch.ones(1)), {"k": [torch.ones(1)]}),))
    assert interface.required_imports(spec) == [__name__]
    assert interface.required_imports(pytree.tree_structure((torch.ones(1), {"k": 1}))) == []
    as_json = interface.spec_json(spec)
    assert as_json["children"][0]["children"][0] == {"type": f"{__name__}.Named", "context": [["a"], []],
                                                      "children": [{"leaf": 0}]}


def opts(**options) -> dict:
    return {"label": "//m:t", "where": {"file": "m/BUILD.aot.yaml", "line": 7}, "options": options}


@pytest.mark.parametrize("options,message", [
    ({"aot_inductor.compile_wrapper_opt_levl": "O1"}, "did you mean 'aot_inductor.compile_wrapper_opt_level'?"),
    ({"no_such_thing": 1}, "unknown inductor option 'no_such_thing'"),
    ({"max_autotune": "yes"}, "takes true or false"),
    ({"cpp.threads": "four"}, "takes a number"),
])
def test_bad_options_are_refused_with_a_fix(options, message) -> None:
    with pytest.raises(TargetError, match="m/BUILD.aot.yaml:7, target '//m:t', field 'options.") as e:
        compile_action.check_options(opts(**options))
    assert message in str(e.value)


def test_good_options_pass() -> None:
    compile_action.check_options(opts(**{"aot_inductor.compile_wrapper_opt_level": "O0", "max_autotune": False,
                                       "cpp.threads": 2}))


def test_safetensors_weights_without_the_package_say_how_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(UserError, match=r"pip install 'aotbuild\[safetensors\]'"):
        model_loader.load_weights(tmp_path / "w.safetensors", "m/w.safetensors")


def test_safetensors_weights_load(tmp_path: Path) -> None:
    st = pytest.importorskip("safetensors.torch")
    st.save_file({"w": torch.arange(3.0)}, str(tmp_path / "w.safetensors"))
    state = model_loader.load_weights(tmp_path / "w.safetensors", "m/w.safetensors")
    assert torch.equal(state["w"], torch.arange(3.0))

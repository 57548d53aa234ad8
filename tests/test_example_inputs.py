"""Declared inputs into tensors and values: generators checked, containers nested, dims mirrored, and the
artifact's flat tensor order."""

from __future__ import annotations

from pathlib import Path

import pytest

from aotbuild.errors import TargetError

pytestmark = pytest.mark.torch

GEN = '''import torch


def ok(shape, dtype, generator):
    return torch.randint(0, 2, shape, generator=generator).to(dtype)


def wrong_shape(shape, dtype, generator):
    return torch.zeros(3, dtype=dtype)


def raises(shape, dtype, generator):
    raise ValueError("no masks today")
'''


def spec(inputs: list[dict], dims: list[dict] | None = None) -> dict:
    return {"label": "//m:t", "where": {"file": "m/BUILD.aot.yaml", "line": 3}, "seed": 0, "inputs": inputs,
            "dims": dims or [], "device": "cpu"}


def tensor(name: str, shape: list, dtype: str = "float32", keyword: bool = False, **extra) -> dict:
    return {"name": name, "shape": shape, "dtype": dtype, "low": None, "high": None, "keyword": keyword, **extra}


@pytest.fixture
def gen_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "gen_inputs_mod.py").write_text(GEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "gen_inputs_mod"


def test_a_plain_random_tensor_draws_what_it_always_drew() -> None:
    import torch

    from aotbuild.actions.example_inputs import make_case

    case = make_case(spec([tensor("x", [2, 3]), tensor("i", [4], "int64", low=0, high=7)]), {}, "example", "cpu")
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(case.args[0], torch.randn([2, 3], generator=gen))
    assert torch.equal(case.args[1], torch.randint(0, 7, [4], generator=gen))


def test_containers_values_and_dims_nest_as_declared(gen_module: str) -> None:
    import torch

    from aotbuild.actions.example_inputs import dynamic_shapes, make_case, tensor_items

    inputs = [
        {"name": "flag", "value": True, "keyword": True},
        {"name": "batch", "keyword": False, "dict": [
            tensor("mask", ["b", 4], "bool", generator=f"{gen_module}:ok"),
            {"name": "rest", "tuple": [tensor("0", ["b"], "uint8", low=250, high=256), {"name": "1", "value": None}]},
        ]},
        tensor("ones", [2], "float16", keyword=True, fill=1),
    ]
    declared = spec(inputs, [{"name": "b", "min": 1, "max": 8, "example": 3}])
    case = make_case(declared, {"b": 5}, "b=5", "cpu")
    assert case.kwargs["flag"] is True and case.kwargs["ones"].tolist() == [1.0, 1.0]
    batch = case.args[0]
    assert batch["mask"].dtype == torch.bool and batch["mask"].shape == (5, 4)
    assert isinstance(batch["rest"], tuple) and batch["rest"][1] is None
    assert batch["rest"][0].dtype == torch.uint8 and int(batch["rest"][0].min()) >= 250
    # The artifact's order: positional inputs first, then keyword ones; values are left out.
    assert [t.shape for t in case.flat_tensors()] == [(5, 4), (5,), (2,)]
    assert [(item["name"], kw) for item, kw in tensor_items(declared)] == [("mask", False), ("0", False),
                                                                           ("ones", True)]
    shapes = dynamic_shapes(declared)
    assert shapes["flag"] is None and shapes["ones"] is None
    assert shapes["batch"]["mask"][0].__name__ == "b" and 1 not in shapes["batch"]["mask"]
    assert isinstance(shapes["batch"]["rest"], tuple) and shapes["batch"]["rest"][1] is None


@pytest.mark.parametrize("fn, problem, fix", [
    ("wrong_shape", "returned torch.float32[3], expected torch.float32[2, 4]", "exactly the shape and dtype"),
    ("raises", "raised ValueError: no masks today", "fn(shape: tuple[int, ...], dtype: torch.dtype, generator"),
])
def test_a_generator_that_misbehaves_is_named_with_its_field(gen_module: str, fn: str, problem: str, fix: str) -> None:
    from aotbuild.actions.example_inputs import make_case

    inputs = [{"name": "batch", "keyword": False, "dict": [tensor("mask", [2, 4], generator=f"{gen_module}:{fn}")]}]
    with pytest.raises(TargetError) as info:
        make_case(spec(inputs), {}, "example", "cpu")
    error = info.value
    assert (error.where.file, error.where.line, error.where.field) == \
        ("m/BUILD.aot.yaml", 3, "inputs.batch.mask.generator")
    assert problem in error.problem and fix in (error.fix or "")

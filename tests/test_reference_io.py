"""reference_io.pt's encoding: flat inputs in call order, flat outputs with their key paths."""

from __future__ import annotations

import io

import pytest

pytestmark = pytest.mark.torch


def test_cases_hold_flat_tensors_and_output_paths() -> None:
    import torch

    from aotbuild.actions import reference_io

    x, scale, logits, embedding = torch.randn(4, 3), torch.ones(1), torch.randn(4, 2), torch.randn(4, 8)
    refs = [{"name": "example", "args": (x,), "kwargs": {"scale": scale}, "outputs": [logits, embedding],
             "paths": ["['logits']", "['embedding']"]}]
    data = torch.load(io.BytesIO(reference_io.encode("//m:fusion", refs)), weights_only=True)
    assert data["format"] == reference_io.FORMAT and data["label"] == "//m:fusion"
    (case,) = data["cases"]
    assert case["name"] == "example" and case["output_paths"] == ["['logits']", "['embedding']"]
    assert [t.data_ptr() != 0 and torch.equal(t, w) for t, w in zip(case["inputs"], (x, scale))] == [True, True]
    assert all(torch.equal(t, w) for t, w in zip(case["outputs"], (logits, embedding)))


def test_a_single_tensor_output_is_named_output() -> None:
    import torch

    from aotbuild.actions import reference_io

    y = torch.randn(2, 2)
    refs = [{"name": "e", "args": (y,), "kwargs": {}, "outputs": [y], "paths": [""]}]
    data = torch.load(io.BytesIO(reference_io.encode("//m:x", refs)), weights_only=True)
    assert data["cases"][0]["output_paths"] == ["output"]

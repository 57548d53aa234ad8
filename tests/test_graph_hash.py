"""The canonical graph hash: equal for equal programs, different for any change in what they compute."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from aotbuild.actions.graph_hash import graph_hash  # noqa: E402

pytestmark = pytest.mark.torch


class Branchy(torch.nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda t: t * self.factor, lambda t: t - 1.0, (x,))


class Linear(torch.nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


def export(model: torch.nn.Module) -> torch.export.ExportedProgram:
    return torch.export.export(model, (torch.ones(2, 4),))


def test_equal_programs_hash_equal_across_exports() -> None:
    assert graph_hash(export(Linear(0))) == graph_hash(export(Linear(0)))


def test_weights_change_the_hash() -> None:
    assert graph_hash(export(Linear(0))) != graph_hash(export(Linear(1)))


def test_a_change_inside_a_cond_branch_changes_the_hash() -> None:
    assert graph_hash(export(Branchy(2.0))) != graph_hash(export(Branchy(3.0)))


def test_input_shape_changes_the_hash() -> None:
    a = torch.export.export(Linear(0), (torch.ones(2, 4),))
    b = torch.export.export(Linear(0), (torch.ones(3, 4),))
    assert graph_hash(a) != graph_hash(b)

"""What `aotbuild test` says about a comparison: which side holds NaN, a whole refusal reason, how many checks
failed, and a warning when the eager outputs are too small for the tolerance to tell anything."""

from __future__ import annotations

import pytest

from aotbuild.actions.verify import _reason, failure_message, failures
from aotbuild.reports.test_report import weak_reference


def _case(records: list[dict], name: str = "example", artifact: str = "so") -> dict:
    return {"case": name, "artifact": artifact, "outputs": records}


@pytest.mark.torch
@pytest.mark.parametrize("eager_nan, artifact_nan, said", [
    (True, False, "the eager reference holds NaN (1 of 4 values) where the artifact is finite"),
    (False, True, "the artifact's output holds NaN (1 of 4 values) where the eager reference is finite"),
])
def test_a_nan_failure_says_which_side_holds_it(eager_nan: bool, artifact_nan: bool, said: str) -> None:
    import torch

    from aotbuild.actions.verify import compare

    want, got = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])
    (want if eager_nan else got)[1] = float("nan")
    (record,) = compare([want], [got], ["logits"], {"atol": 1e-4, "rtol": 1e-4})
    assert not record["ok"]
    assert (record["nan_reference"], record["nan_artifact"]) == (int(eager_nan), int(artifact_nan))
    assert record["max_abs"] == 0  # over the values both sides hold
    (problem,) = failures({"cases": [_case([record], "b=1 (min)", "pt2")], "rejected": []})
    assert problem.startswith(".pt2 output logits on case 'b=1 (min)': ") and said in problem


@pytest.mark.torch
def test_nan_on_both_sides_at_the_same_places_passes() -> None:
    import torch

    from aotbuild.actions.verify import compare

    want = torch.tensor([1.0, float("nan")])
    (record,) = compare([want], [want.clone()], ["out"], None)
    assert record["ok"] and record["max_reference"] == 1.0


def test_a_refusal_keeps_the_part_of_the_error_that_says_why() -> None:
    error = TypeError("run(): incompatible function arguments. The following argument types are supported:\n"
                      "    1. (self, arg0: list[torch.Tensor]) -> list[torch.Tensor]\n\nInvoked with: [tensor, True]")
    reason = _reason(error)
    assert "\n" not in reason and reason.startswith("TypeError: run(): incompatible")
    assert reason.endswith("Invoked with: [tensor, True]")
    assert _reason(RuntimeError("x" * 2000)).endswith("... (the whole error is in verify.log)")


def test_a_refused_case_names_the_artifact_and_the_case() -> None:
    refused = {"output": "*", "ok": False, "problem": "refused its inputs (float32[2, 3]): TypeError: no"}
    (problem,) = failures({"cases": [_case([refused], "b=1 (min)")], "rejected": []})
    assert problem == ".so on case 'b=1 (min)': refused its inputs (float32[2, 3]): TypeError: no"


def test_the_failure_message_counts_checks_and_shows_three_in_full() -> None:
    problems = [f"so output out on case 'c{i}': max abs error 1 (atol 0.0001)" for i in range(5)]
    message = failure_message(problems, 16)
    assert message.startswith("5 of 16 checks failed: so output out on case 'c0': ")
    assert "case 'c2'" in message and "case 'c3'" not in message
    assert message.endswith("; and 2 more (see verify.log)") and "\n" not in message


def _rec(max_reference: float, atol: float = 1e-4) -> dict:
    return {"output": "out", "ok": True, "max_abs": 0.0, "max_rel": 0.0, "atol": atol, "rtol": 1e-4,
            "max_reference": max_reference, "nan_reference": 0, "nan_artifact": 0, "values": 8}


def test_outputs_all_below_atol_warn_naming_target_case_and_fix() -> None:
    cases = [_case([_rec(0.0), _rec(4e-14)]), _case([_rec(0.0), _rec(4e-14)], artifact="pt2"),
             _case([_rec(3.0), _rec(0.0)], "b=8 (max)")]
    warning = weak_reference("//zoo:vit_b_16", cases)
    assert warning is not None
    first, fix = warning.split("\n")
    assert first.startswith("warning: //zoo:vit_b_16: every eager output of case 'example' is smaller")
    assert "(4e-14) than atol 0.0001" in first and "b=8" not in first
    assert fix.startswith("  fix: ") and "rtol" in fix and "weights" in fix


@pytest.mark.parametrize("records", [
    [_rec(1.0)],                 # a real output
    [_rec(0.0), _rec(0.5)],      # one output of real size is enough
    [_rec(0.0, atol=0.0)],       # integers compare exactly: zeros still say something
    [{"output": "*", "ok": False, "problem": "refused"}],  # no numbers: nothing to judge
])
def test_outputs_that_say_something_do_not_warn(records: list[dict]) -> None:
    assert weak_reference("//m:t", [_case(records)]) is None

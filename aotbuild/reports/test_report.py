"""Reports for `aotbuild test`: each target's outcome, a line per target, and JUnit XML for CI systems."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from aotbuild.reports.outcomes import NEEDS_GPU, BuildResult
from aotbuild.rules.verify import KIND as VERIFY
from aotbuild.text import plural


@dataclass(frozen=True)
class TestOutcome:
    label: str
    passed: bool
    cached: bool  # nothing ran this time: ninja found it up to date, or the verify cache had the answer
    seconds: float
    message: str  # failure text, or a one-line summary of what was checked
    cases: list[dict[str, Any]]
    skipped: bool = False  # a CUDA target on a machine without a GPU, its result not cached
    warnings: tuple[str, ...] = ()


def weak_reference(label: str, cases: list[dict[str, Any]]) -> str | None:
    """A warning when the eager outputs of some case are all smaller than atol: any artifact output within
    atol of zero passes there (a zero-initialised head, vanishing activations), so the check proves nothing."""
    weak: dict[str, tuple[float, float]] = {}
    for case in cases:
        recs = case["outputs"]
        if recs and all("max_reference" in r and 0 <= r["max_reference"] < r["atol"] for r in recs):
            weak[case["case"]] = (max(r["max_reference"] for r in recs), max(r["atol"] for r in recs))
    if not weak:
        return None
    names = list(weak)
    largest, atol = max(v[0] for v in weak.values()), max(v[1] for v in weak.values())
    which = f"case '{names[0]}'" + (f" and {plural(len(names) - 1, 'other case')}" if len(names) > 1 else "")
    return (f"warning: {label}: every eager output of {which} is smaller in magnitude ({largest:.2g}) than "
            f"atol {atol:g}, so an artifact returning zeros would pass: this check says nothing\n"
            "  fix: load weights that give outputs of real size (weights:, or a factory that initialises the model's "
            "head), or compare by rtol alone: tolerance: {atol: 0, rtol: 1.0e-4}")


def _summary(verified: dict[str, Any]) -> str:
    errors = [o.get("max_abs", 0.0) for c in verified["cases"] for o in c["outputs"]]
    names = sorted({c["case"] for c in verified["cases"]})
    refused = [f"{r['dim']}={r['size']}" for r in verified["rejected"]]
    text = f"{plural(len(names), 'input case')} x .so and .pt2, max abs error {max(errors, default=0.0):.2g}"
    return text + (f"; out-of-range {', '.join(refused)} refused" if refused else "")


def outcomes(result: BuildResult) -> list[TestOutcome]:
    plan, out_dir, found = result.context.plan, result.context.out_dir, []
    for label in result.outcomes:
        ran = [e for e in result.events if e["label"] == label and e["action"] == VERIFY.name]
        seconds = sum(e["seconds"] for e in result.events if e["label"] == label)
        if result.outcomes[label] == NEEDS_GPU:
            found.append(TestOutcome(label, False, False, seconds, "needs a GPU: none here, and no cached result",
                                     [], skipped=True))
            continue
        if label in result.failures:
            found.append(TestOutcome(label, False, False, seconds, result.failures[label], []))
            continue
        verified_path = out_dir / plan.targets[label]["goals"][VERIFY.name]
        if not verified_path.exists():
            found.append(TestOutcome(label, False, False, seconds, "not verified: no result was written", []))
            continue
        verified = json.loads(verified_path.read_text())
        cached = not ran or ran[0]["outcome"] == VERIFY.hit
        warning = weak_reference(label, verified["cases"])
        found.append(TestOutcome(label, True, cached, seconds, _summary(verified), verified["cases"],
                                 warnings=(warning,) if warning else ()))
    return found


def junit_xml(results: list[TestOutcome]) -> bytes:
    suite = ET.Element("testsuite", name="aotbuild", tests=str(len(results)),
                       failures=str(sum(not r.passed and not r.skipped for r in results)), errors="0",
                       skipped=str(sum(r.skipped for r in results)),
                       time=f"{sum(r.seconds for r in results):.3f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.label.split(":")[0].lstrip("/") or "root",
                             name=r.label, time=f"{r.seconds:.3f}")
        if r.skipped:
            ET.SubElement(case, "skipped", message=r.message)
        elif r.passed:
            text = r.message + (" (cached)" if r.cached else "")
            ET.SubElement(case, "system-out").text = "\n".join([text, *r.warnings])
        else:
            ET.SubElement(case, "failure", message=r.message[:500]).text = r.message
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def lines(results: list[TestOutcome]) -> list[str]:
    out = []
    for r in results:
        status = "SKIPPED" if r.skipped else "PASSED" if r.passed else "FAILED"
        cached = " (cached)" if r.cached and r.passed else ""
        out.append(f"{status:6} {r.label}{cached}: {r.message}")
        out.extend(r.warnings)
    return out

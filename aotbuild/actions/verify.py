"""The verify action: run the .so and the .pt2 on every reference case and compare with eager PyTorch."""

from __future__ import annotations

import io
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from aotbuild import __version__, cpu_levels
from aotbuild.actions.runtime import ActionContext, run_action
from aotbuild.cache import archives, payloads
from aotbuild.errors import ActionError, VerificationError
from aotbuild.fsutil import write_if_changed
from aotbuild.hashing import key_of, pretty_json, sha256_file
from aotbuild.rules.compile import MANIFEST
from aotbuild.rules.export import GRAPH, REFERENCE
from aotbuild.rules.export import SPEC as EXPORT_SPEC
from aotbuild.rules.verify import KIND as VERIFY

# Defaults by dtype where a target gives no tolerance: about 100 ulps of each type at unit scale.
DEFAULT_TOLERANCE = {"float64": (1e-7, 1e-7), "float32": (1e-4, 1e-4), "bfloat16": (2e-2, 2e-2),
                     "float16": (5e-3, 5e-3)}


def compare(expected: list[Any], actual: list[Any], paths: list[str], declared: dict | None) -> list[dict]:
    """One record per output leaf: max abs/rel error, within tolerance or not, the reference's largest magnitude
    (a tolerance above it cannot tell a right artifact from zeros), and how many NaN each side holds."""
    import torch

    if len(expected) != len(actual):
        return [{"output": "*", "ok": False, "problem": f"{len(actual)} outputs, expected {len(expected)}"}]
    records = []
    for path, want, got in zip(paths, expected, actual):
        want, got = want.detach().cpu(), got.detach().cpu()
        if got.shape != want.shape or got.dtype != want.dtype:
            records.append({"output": path, "ok": False,
                            "problem": f"got {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}"})
            continue
        atol, rtol = ((declared["atol"], declared["rtol"]) if declared is not None  # integers and bools: exact
                      else DEFAULT_TOLERANCE.get(str(want.dtype).removeprefix("torch."), (0.0, 0.0)))
        w, g = want.double(), got.double()
        diff = (w - g).abs()
        both = ~diff.isnan()
        rel = diff[both] / w.abs()[both].clamp_min(1e-12)
        ok = bool(torch.allclose(g, w, atol=atol, rtol=rtol, equal_nan=True))
        records.append({"output": path, "ok": ok, "max_abs": _max(diff[both]), "max_rel": _max(rel),
                        "atol": atol, "rtol": rtol, "max_reference": _max(w.abs()[~w.isnan()]),
                        "nan_reference": int(w.isnan().sum()), "nan_artifact": int(g.isnan().sum()),
                        "values": w.numel()})
    return records


def _max(values: Any) -> float:
    return values.max().item() if values.numel() else 0.0


def run_checks(ctx: ActionContext, manifest: dict[str, Any], reference_digest: str) -> dict[str, Any]:
    os.environ["AOTI_RUNTIME_CHECK_INPUTS"] = "1"  # the artifact enforces declared ranges: checked below
    device = manifest["device"]
    ctx.require_gpu(device)
    if (lacks := cpu_levels.host_lacks(cpu_levels.level_of(manifest["cpu_isa"]))) is not None:
        raise ActionError(ctx.label, ctx.action, f"{lacks}, so its artifact cannot run here")
    import torch
    from torch.utils import _pytree as pytree

    from aotbuild.actions.example_inputs import flat_tensors
    from aotbuild.actions.interface import import_required
    from aotbuild.actions.tracing import full_precision_on_gpu

    full_precision_on_gpu(torch, device)
    # Running the .pt2 rebuilds its output type, so the modules that register it are imported first.
    import_required(manifest["requires_imports"], ctx.root, ctx.label)
    data = ctx.store.get_bytes(reference_digest)
    if data is None:  # evicted by gc or corrupt: recompute the eager outputs rather than fail
        from aotbuild.actions.export import reexported_reference

        data = reexported_reference(ctx, ctx.read_json(GRAPH)["graph_hash"])
    cases = pytree.tree_map(lambda x: x.to(device) if isinstance(x, torch.Tensor) else x,
                            torch.load(io.BytesIO(data), weights_only=True))  # from our cache, digest verified
    pt2_path = ctx.target_dir / manifest["artifacts"]["pt2"]["file"]
    why = archives.package_problem(pt2_path)
    if why is not None:  # the compile refuses such a package from the cache; this one was placed by other means
        raise VerificationError(f"refusing to load {pt2_path}: {why}\n  fix: run `aotbuild clean` and build again")
    pt2 = torch._inductor.aoti_load_package(str(pt2_path))
    so = so_runner(ctx.target_dir / manifest["artifacts"]["so"]["file"], device)
    results = []
    for case in cases:
        expected, paths = case["outputs"], [p or "output" for p in case["paths"]]
        flat_inputs = flat_tensors(case["args"], case["kwargs"])
        for artifact, run in (("pt2", lambda: pytree.tree_leaves(pt2(*case["args"], **case["kwargs"]))),
                              ("so", lambda: so.run(flat_inputs))):
            try:
                outputs = compare(expected, run(), paths, ctx.spec["tolerance"])
            except Exception as e:  # noqa: BLE001 - an artifact that refuses in-range inputs is a failed check
                # The whole error goes to verify.log; the record keeps what the artifact was given and why it refused.
                print(f"the .{artifact} refused case '{case['name']}' ({_shapes(flat_inputs)}):", file=sys.stderr)
                traceback.print_exc()
                outputs = [{"output": "*", "ok": False,
                            "problem": f"refused its inputs ({_shapes(flat_inputs)}): {_reason(e)}"}]
            results.append({"case": case["name"], "artifact": artifact, "outputs": outputs})
    return {"cases": results, "rejected": _out_of_range(ctx, so)}


def _shapes(tensors: list[Any]) -> str:
    return ", ".join(f"{str(t.dtype).removeprefix('torch.')}{list(t.shape)}" for t in tensors) or "no tensors"


def _out_of_range(ctx: ActionContext, so: Any) -> list[dict]:
    """For each dynamic dim, one size past max must be refused by the artifact, not silently run."""
    from aotbuild.actions.example_inputs import make_case

    export_spec = ctx.read_json(EXPORT_SPEC)
    example = {d["name"]: d["example"] for d in export_spec["dims"]}
    rejected = []
    for dim in export_spec["dims"]:
        case = make_case(export_spec, {**example, dim["name"]: dim["max"] + 1}, "out of range", export_spec["device"])
        log = ctx.log  # this process's stderr: where the AOTI runtime prints its errors
        printed_from = log.stat().st_size if log.exists() else 0
        try:
            so.run(case.flat_tensors())
            refused, message = False, "ran without error"
        except Exception as e:  # noqa: BLE001 - the runner raises a plain RuntimeError, CUDA ones vary
            # Only the artifact's own input check counts as a refusal; any other error is a failure to report.
            # Some torch versions (2.11) raise only "run_func_(...) API call failed" and print the reason.
            sys.stderr.flush()
            message = _runtime_reason(log, printed_from) or _reason(e)
            refused = "dim value is too large" in message and str(dim["max"]) in message
            if not refused:
                traceback.print_exc()  # the whole error, for the message's shortened one
        rejected.append({"dim": dim["name"], "size": dim["max"] + 1, "refused": refused, "message": message})
    return rejected


def _runtime_reason(log: Path, offset: int) -> str | None:
    """The AOTI runtime's own error line printed to the log since `offset`, if any."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            printed = f.read().decode(errors="replace")
    except OSError:
        return None
    reasons = [line.strip() for line in printed.splitlines() if "dim value" in line or line.startswith("Error: ")]
    return reasons[0][:300] if reasons else None


def so_runner(path: Path, device: str) -> Any:
    """The AOTInductor runner for a bare .so on `device` (what C++ deployments use, minus the .pt2 wrapper)."""
    import torch

    if device == "cpu":
        return torch._C._aoti.AOTIModelContainerRunnerCpu(str(path), 1)
    return torch._C._aoti.AOTIModelContainerRunnerCuda(str(path), 1, device)


def _reason(e: Exception, limit: int = 600) -> str:
    """An exception's text on one line: the runner's first line alone ("incompatible function arguments. The
    following argument types are supported:") hides the part that says why. verify.log holds all of it."""
    text = " ".join(line.strip() for line in str(e).strip().splitlines() if line.strip())
    text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= limit else text[:limit] + "... (the whole error is in verify.log)"


def _problem(rec: dict[str, Any]) -> str:
    """What failed; where one side holds NaN and the other does not, first which: the reference or the artifact."""
    if "problem" in rec:
        return rec["problem"]
    detail = (f"max abs error {rec['max_abs']:.3g} (atol {rec['atol']:g}), "
              f"max rel error {rec['max_rel']:.3g} (rtol {rec['rtol']:g})")
    ref, art, n = rec.get("nan_reference", 0), rec.get("nan_artifact", 0), rec.get("values", 0)
    if ref and not art:
        nan = (f"the eager reference holds NaN ({ref} of {n} values) where the artifact is finite: eager PyTorch "
               "computed NaN on this case's inputs (fix: check the model on them, e.g. a fully masked row; a "
               "generator: input can make valid masks)")
    elif art and not ref:
        nan = f"the artifact's output holds NaN ({art} of {n} values) where the eager reference is finite"
    elif art and ref:
        nan = f"NaN at different positions: {ref} in the eager reference, {art} in the artifact's output"
    else:
        return detail
    return f"{nan}; other values: {detail}"


def failures(result: dict[str, Any]) -> list[str]:
    out = []
    for case in result["cases"]:
        for rec in (r for r in case["outputs"] if not r["ok"]):
            artifact = f".{case['artifact']}"  # the .so or the .pt2: each is checked on every case
            output = "" if rec["output"] == "*" else f" output {rec['output']}"
            out.append(f"{artifact}{output} on case '{case['case']}': {_problem(rec)}")
    for r in result["rejected"]:
        if r["message"] == "ran without error":  # a refusal's message is the artifact's own error
            out.append(f".so accepted {r['dim']}={r['size']}, outside the declared range")
        elif not r["refused"]:
            out.append(f".so failed on {r['dim']}={r['size']} (outside the declared range) without its own range "
                       f"check: {r['message']}")
    return out


def failure_message(problems: list[str], checks: int) -> str:
    """One line (the summary shows an action's first line): how many checks failed, then the first three."""
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more (see verify.log)" if len(problems) > 3 else "")
    return f"{len(problems)} of {checks} checks failed: {shown}"


def verify(ctx: ActionContext) -> str:
    manifest = ctx.read_json(MANIFEST)
    for art in manifest["artifacts"].values():
        if sha256_file(ctx.target_dir / art["file"]) != art["sha256"]:
            raise VerificationError(f"{art['file']} does not match the sha256 in manifest.json: it was modified "
                                    "after the build; run `aotbuild clean` and build again")
    reference = ctx.read_json(REFERENCE)["reference"]
    key = key_of("verify", {"so": manifest["artifacts"]["so"]["sha256"], "pt2": manifest["artifacts"]["pt2"]["sha256"],
                            "reference": reference, "tolerance": ctx.spec["tolerance"], "aotbuild": __version__})
    result = payloads.checked(ctx.store, key, "verify")
    outcome = VERIFY.hit
    if result is None:
        result = run_checks(ctx, manifest, reference)
        # Numbers are facts about the artifact; an exception may be this machine's (a busy GPU): not cached.
        if not any("problem" in rec for case in result["cases"] for rec in case["outputs"]):
            ctx.store.put_action(key, result)
        outcome = VERIFY.ran
    problems = failures(result)
    if problems:
        print("\n".join(["verification failed:", *problems]), file=sys.stderr)
        checks = sum(len(c["outputs"]) for c in result["cases"]) + len(result["rejected"])
        raise VerificationError(failure_message(problems, checks))
    write_if_changed(ctx.target_dir / VERIFY.goal, pretty_json({"label": ctx.label, **result}))
    return outcome


if __name__ == "__main__":
    run_action(VERIFY.name, verify)

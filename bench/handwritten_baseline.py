"""The script teams write today, as the baseline: import torch once, export and compile every model in a loop.

It reads the same BUILD.aot.yaml files so it builds exactly the same models, but it has no cache, no
incrementality and no parallelism: every run redoes everything.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from aotbuild.actions import example_inputs, model_loader
from aotbuild.workspace.discovery import discover_packages
from aotbuild.workspace.schema import load_config, load_package
from aotbuild.rules.export import export_spec


def main(root: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    config = load_config(root)
    targets = [t for p in discover_packages(root, config.ignore) for t in load_package(root, p, config).targets]
    for target in targets:
        spec = export_spec(target)
        model = model_loader.build_model(spec, root, target.device)
        case = example_inputs.cases(spec, target.device)[0]
        ep = torch.export.export(model, case.args, case.kwargs, dynamic_shapes=example_inputs.dynamic_shapes(spec))
        options = {"aot_inductor.package_constants_in_so": True, **target.options}
        if target.dims:
            options["aot_inductor.check_lowerbound"] = False
        torch._inductor.aoti_compile_and_package(
            ep, package_path=str(out / f"{target.label.package}_{target.label.name}.pt2"), inductor_configs=options)
        print(f"{target.label}: {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())

"""Call a .pt2 from Python through libtorch's own AOTIModelPackageLoader, without importing torch._inductor.

torch._inductor.aoti_load_package does the same call-spec flattening, but first imports torch._inductor
(~1-3 s) and probes the CPU's vector ISAs by compiling and loading ten test libraries in subprocesses
(~4 s on 2 cores, torch 2.13) only to log a warning on a mismatch. aotbuild.load checks the host against the
manifest instead (an error, not a warning), so it can go straight to the loader that C++ uses.
"""

from __future__ import annotations

from typing import Any


class PackageRunner:
    """The model's forward() over AOTIModelPackageLoader: inputs flattened by the package's in_spec, outputs
    rebuilt with its out_spec (as torch's AOTICompiledModel does)."""

    def __init__(self, path: str) -> None:
        import torch
        from torch.utils import _pytree as pytree

        self.loader = torch._C._aoti.AOTIModelPackageLoader(path, "model", False, 1, -1)
        in_spec, out_spec = self.loader.get_call_spec()
        # treespec_loads needs every pytree type in the specs registered: aotbuild.load imports the manifest's
        # requires_imports before constructing this.
        self.in_spec = pytree.treespec_loads(in_spec)
        self.out_spec = pytree.treespec_loads(out_spec)
        kwargs_spec = self.in_spec.child(1) if hasattr(self.in_spec, "child") else self.in_spec.children_specs[1]
        self.keywords = list(kwargs_spec.context)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch
        from torch.utils import _pytree as pytree

        if set(kwargs) != set(self.keywords):
            raise TypeError(f"expected keyword arguments {self.keywords}, got {sorted(kwargs)}")
        # Keyword order is the exported signature's, not the caller's.
        flat = pytree.tree_leaves((args, {k: kwargs[k] for k in self.keywords}))
        outputs = self.loader.boxed_run([x for x in flat if isinstance(x, torch.Tensor)])
        return pytree.tree_unflatten(outputs, self.out_spec)

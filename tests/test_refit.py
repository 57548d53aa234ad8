"""Which targets may ever be re-packaged with other weights (no torch); the rest is tests/test_refit_e2e.py."""

from __future__ import annotations

import pytest

from aotbuild.actions import refit
from aotbuild.actions.compile import BASE_OPTIONS, CPU_OPTIONS

# A CPU target's effective inductor settings as aotbuild compiles it (torch's defaults plus our options).
DEFAULTS = {"freezing": False, "aot_inductor.package_constants_on_disk_format": None,
            "aot_inductor.force_mmap_weights": False, "aot_inductor.package_cpp_only": None,
            "aot_inductor.use_consts_asm_build": True, "aot_inductor.use_runtime_constant_folding": False,
            "always_keep_tensor_constants": False, **BASE_OPTIONS, **CPU_OPTIONS}


def test_a_cpu_target_with_aotbuilds_options_may_be_re_packaged() -> None:
    assert refit.refusal("cpu", DEFAULTS) is None
    assert refit.refusal("cpu", {**DEFAULTS, "aot_inductor.package_cpp_only": False, "max_autotune": True}) is None


@pytest.mark.parametrize(("key", "value"), [
    ("freezing", True),  # weights folded and prepacked into other constants
    ("always_keep_tensor_constants", False),  # small tensors become literals in the code
    ("aot_inductor.package_constants_in_so", False),
    ("aot_inductor.package_constants_on_disk_format", "binary_blob"),
    ("aot_inductor.force_mmap_weights", True),
    ("aot_inductor.package_cpp_only", True),
    ("aot_inductor.use_consts_asm_build", False),  # weights.cpp: the blob spelled out in source
    ("aot_inductor.use_runtime_constant_folding", True),
])
def test_settings_that_move_or_transform_the_weights_refuse_and_say_which(key: str, value: object) -> None:
    why = refit.refusal("cpu", {**DEFAULTS, key: value})
    assert why is not None and key in why


def test_cuda_targets_are_never_re_packaged() -> None:
    assert "cuda" in refit.refusal("cuda", DEFAULTS)

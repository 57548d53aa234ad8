"""Which targets may ever be re-packaged with other weights (no torch); the rest is tests/test_refit_e2e.py."""

from __future__ import annotations

import pytest

from aotbuild.actions import refit
from aotbuild.actions.compile import BASE_OPTIONS, CPU_OPTIONS
from aotbuild.actions.program_blob import program_tensors

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


# -- the record's parts on a real exported program (torch, no compile)


def _program(two_equal_constants: bool = False):
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(20, 16)
            self.out = torch.nn.Linear(16, 20, bias=False)
            self.out.weight = self.emb.weight  # tied: in the blob once
            self.bn = torch.nn.BatchNorm1d(20)  # its num_batches_tracked is unused by the graph
            self.register_buffer("scale", torch.tensor(2.0))
            self.shift = torch.linspace(-1.0, 1.0, 20)  # a lifted tensor constant
            self.other = torch.linspace(-1.0, 1.0, 20) if two_equal_constants else torch.ones(20)

        def forward(self, tok):
            return self.bn(self.out(self.emb(tok)).sum(1)) * self.scale + self.shift + self.other

    return torch.export.export(Net().eval(), (torch.zeros(2, 3, dtype=torch.int64),))


def _table(program, names: list[str]) -> tuple[list[tuple[str, int, int]], bytearray]:
    """A runner-style table and blob for `names` (program tensor names or lifted constants' own), packed."""
    tensors = program_tensors(program)
    rows, blob = [], bytearray()
    for name in names:
        raw = bytes(refit._raw(tensors[name]))
        rows.append((name, len(blob), len(raw)))
        blob += raw + bytes(-len(raw) % refit.ALIGN)
    return rows, blob


@pytest.mark.torch
def test_lifted_constants_are_found_by_their_bytes_and_ties_and_unused_tensors_are_not_fixed() -> None:
    program = _program()
    lifted = sorted(k for k in program.constants)
    names = ["out.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "scale", *lifted]
    table, blob = _table(program, names)
    renamed = [(f"_tensor_constant{i}", o, n) if name in lifted else (name, o, n)
               for i, (name, o, n) in enumerate(table)]
    rows = refit._sources(renamed, program_tensors(program), memoryview(blob))
    assert [r["source"] for r in rows] == names
    assert refit._serialize(rows, program_tensors(program), len(blob)) == blob
    # emb.weight is tied to out.weight, num_batches_tracked unused: nothing outside the blob is fixed.
    assert refit._fixed(program, program_tensors(program), rows) == {}
    without_scale = [r for r in rows if r["source"] != "scale"]
    assert list(refit._fixed(program, program_tensors(program), without_scale)) == ["scale"]


@pytest.mark.torch
def test_a_constant_matching_two_tensors_or_a_gap_in_the_table_refuses() -> None:
    program = _program(two_equal_constants=True)
    lifted = sorted(k for k in program.constants)
    table, blob = _table(program, lifted)
    with pytest.raises(refit.Unsafe, match="matches 2 tensors"):
        refit._sources([(f"_tensor_constant{i}", o, n) for i, (_, o, n) in enumerate(table)],
                       program_tensors(program), memoryview(blob))
    rows = [{"name": k, "source": k, "offset": o + (64 if i else 0), "size": n} for i, (k, o, n) in enumerate(table)]
    with pytest.raises(refit.Damaged, match="not where the table puts it"):
        refit._serialize(rows, program_tensors(program), len(blob) + 64)


@pytest.mark.torch
def test_the_archive_gives_the_programs_tensors_with_ties_kept(tmp_path) -> None:
    """What a re-package reads from a stored program without its graph is what the program holds."""
    import torch

    from aotbuild.actions import program_blob

    program = _program()
    torch.export.save(program, tmp_path / "program.pt2")
    read, held = program_blob._archive_tensors(tmp_path / "program.pt2"), program_tensors(program)
    assert read is not None and sorted(read) == sorted(held)
    assert all(torch.equal(read[k], t) and read[k].stride() == t.stride() for k, t in held.items())
    storage = {k: t.untyped_storage().data_ptr() for k, t in read.items()}
    assert storage["out.weight"] == storage["emb.weight"] and storage["bn.weight"] != storage["emb.weight"]


@pytest.mark.torch
def test_a_torch_lacking_what_refit_needs_is_told_by_name() -> None:
    assert refit.missing(DEFAULTS) is None  # this torch has it all
    why = refit.missing({k: v for k, v in DEFAULTS.items() if k != "always_keep_tensor_constants"})
    assert why is not None and "always_keep_tensor_constants" in why

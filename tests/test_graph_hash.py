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


# --- tensor values: every dtype, views, shared storages, at memory speed ---------------------------------------

import hashlib  # noqa: E402
import time  # noqa: E402

from aotbuild.actions import graph_hash as gh  # noqa: E402

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64, torch.complex128,
          torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.uint16, torch.uint32, torch.uint64,
          torch.bool, torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz]


def reference_digest(t: torch.Tensor, name: str = "") -> str:
    """The simple, slow definition: the header, then the element bytes of a fresh compact copy of the values,
    read one by one out of its storage (never through a view of `t` itself)."""
    own = t.detach().cpu().resolve_conj().resolve_neg().contiguous().clone()
    values = bytes(own.untyped_storage()) if own.numel() else b""
    return hashlib.sha256(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode() + values).hexdigest()


def tensor_digest(t: torch.Tensor, name: str = "") -> str:
    """The sha256 one tensor contributes to the graph hash, on its own."""
    h = hashlib.sha256()
    gh._update_with_tensor(h, name, t)
    return h.hexdigest()


def random_of(dtype: torch.dtype, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Random bytes reinterpreted as `dtype` (bool from 0/1 so every value is a valid one)."""
    g = torch.Generator().manual_seed(seed)
    n = 1
    for s in shape:
        n *= s
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    size = torch.empty(0, dtype=dtype).element_size()
    return torch.randint(0, 256, (n * size,), dtype=torch.uint8, generator=g).view(dtype).reshape(shape)


def views_of(t: torch.Tensor) -> dict[str, torch.Tensor]:
    """Tensors whose storage holds more (or other) bytes than their values, in the layouts models produce."""
    return {"whole": t, "transposed": t.t(), "strided": t[::2, 1::3], "row": t[3], "column": t[:, 2],
            "offset_slice": t[2:5], "scalar": t[1, 1], "empty": t[:0], "expanded": t[0:1].expand(4, -1),
            "permuted_3d": t.reshape(6, 2, 5).permute(2, 0, 1)}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_tensor_hashes_as_its_values_in_every_dtype_and_layout(dtype: torch.dtype) -> None:
    base = random_of(dtype, (6, 10))
    for kind, t in views_of(base).items():
        assert tensor_digest(t, "t") == reference_digest(t, "t"), f"{dtype} {kind}"
        assert tensor_digest(t, "t") == tensor_digest(t.contiguous().clone(), "t"), f"{dtype} {kind}"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_copied_pieces_hash_like_the_whole(dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch) -> None:
    base = random_of(dtype, (6, 10), seed=1)
    whole = {kind: tensor_digest(t) for kind, t in views_of(base).items()}
    monkeypatch.setattr(gh, "PIECE_BYTES", 3)  # every non-contiguous view is copied a row (or element) at a time
    assert {kind: tensor_digest(t) for kind, t in views_of(base).items()} == whole


def test_lazy_conjugate_and_negative_bits_are_part_of_the_values() -> None:
    z = random_of(torch.complex64, (4, 5))
    assert z.conj().is_conj() and z.conj().imag.is_neg()
    for t in (z.conj(), z.conj().t(), z.conj().imag):
        assert tensor_digest(t) == reference_digest(t)
        assert tensor_digest(t) == tensor_digest(t.resolve_conj().resolve_neg().clone())
    assert tensor_digest(z.conj()) != tensor_digest(z)


def test_tensors_sharing_a_storage_hash_as_their_own_values() -> None:
    storage = torch.arange(100, dtype=torch.float32)
    a, b = storage[:50], storage[50:]
    assert tensor_digest(a) == reference_digest(a) and tensor_digest(b) == reference_digest(b)
    assert tensor_digest(a) != tensor_digest(b)


def test_dtype_shape_and_each_value_change_the_digest() -> None:
    t = random_of(torch.float32, (4, 6))
    changed = t.clone()
    changed[3, 5] += 1
    others = [changed, t.reshape(6, 4), t.view(torch.int32), t.view(torch.bfloat16)[:, ::2], t.t()]
    digests = {tensor_digest(x) for x in [t, *others]}
    assert len(digests) == 1 + len(others)


def test_sparse_tensors_hash_as_their_dense_values() -> None:
    dense = torch.zeros(5, 5)
    dense[1, 2], dense[4, 0] = 3.0, -1.0
    assert tensor_digest(dense.to_sparse()) == reference_digest(dense)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_cuda_tensor_hashes_like_its_cpu_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    t = random_of(torch.bfloat16, (64, 33)).cuda()
    expected = [reference_digest(t, "t"), reference_digest(t.t(), "t")]
    monkeypatch.setattr(gh, "PIECE_BYTES", 100)  # slices copied over one by one
    assert [tensor_digest(t, "t"), tensor_digest(t.t(), "t")] == expected


class Wide(torch.nn.Module):
    """256 MB of float32 parameters, one of them used transposed and one tied to another."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(2048, 2048, bias=False) for _ in range(16))
        self.register_buffer("mask", torch.ones(8, 2048, dtype=torch.bool))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x * self.mask[0]


def test_a_256_mb_state_dict_hashes_in_under_two_seconds() -> None:
    with torch.no_grad():
        model = Wide()
        ep = torch.export.export(model, (torch.ones(2, 2048),))
    nbytes = sum(t.numel() * t.element_size() for t in ep.state_dict.values())
    assert nbytes >= 256 << 20
    started = time.perf_counter()
    digest = gh.graph_hash(ep)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"hashing {nbytes >> 20} MB took {elapsed:.2f} s"
    with torch.no_grad():
        model.layers[7].weight[100, 100] += 1.0
    assert gh.graph_hash(ep) != digest  # the program holds the model's own tensors: its values were hashed


# --- the two halves: structure (what the compiled code depends on) and weights (the values) ----------------------


class Tied(torch.nn.Module):
    def __init__(self, tie: bool, transpose: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(4, 10, bias=False)
        if tie:
            self.out.weight = self.emb.weight
        else:
            with torch.no_grad():
                self.out.weight.copy_(self.emb.weight)
        if transpose:  # the same values, stored column-major
            self.out.weight = torch.nn.Parameter(self.out.weight.detach().t().contiguous().t())

    def forward(self, tok):
        return self.out(self.emb(tok))


def export_tied(model: torch.nn.Module) -> torch.export.ExportedProgram:
    return torch.export.export(model, (torch.zeros(2, 3, dtype=torch.int64),))


def test_new_weights_keep_the_structure_and_change_the_weights_digest() -> None:
    a, b = gh.hashes(export(Linear(0))), gh.hashes(export(Linear(1)))
    assert a.structure == b.structure and a.weights != b.weights and a.graph != b.graph
    assert gh.graph_hash(export(Linear(0))) == a.graph == gh.hashes(export(Linear(0))).graph


def test_a_dtype_or_shape_changes_the_structure() -> None:
    base = gh.hashes(export(Linear(0))).structure
    as_double = torch.export.export(Linear(0).double(), (torch.ones(2, 4, dtype=torch.float64),))
    assert gh.hashes(as_double).structure != base
    assert gh.hashes(torch.export.export(Linear(0), (torch.ones(3, 4),))).structure != base


def test_ties_and_strides_are_structure_and_the_values_alone_are_weights() -> None:
    tied, untied, transposed = (gh.hashes(export_tied(m)) for m in (Tied(True), Tied(False), Tied(False, True)))
    assert tied.structure != untied.structure and tied.weights == untied.weights
    assert transposed.structure != untied.structure and transposed.weights == untied.weights

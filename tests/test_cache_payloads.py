"""Table tests of the action-cache payload schema, the archive checks and the hit checks (no torch)."""

from __future__ import annotations

import copy
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest

from aotbuild.actions import trust
from aotbuild.cache import archives, payloads

H = ["a" * 64, "b" * 64, "c" * 64, "d" * 64]
DEPS = {"files": ["models/mlp.py", "models/__init__.py"], "absent": ["models/opt_override.py", "/opt/lib/extra.py"],
        "external": ["/opt/lib/helpers.py"], "globs": ["data/*.json"], "env": ["MODEL_SIZE"],
        "packages": ["torch", "typing_extensions"]}
INTERFACE = {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 64], "keyword": False}],
             "outputs": [{"name": "output", "path": "", "dtype": "float32", "shape": ["batch", 10]}],
             "dims": {"batch": {"min": 1, "max": 64, "example": 8}},
             "in_spec": {"type": "builtins.tuple", "context": None, "children": [{"leaf": 0}]},
             "out_spec": {"leaf": 0}, "requires_imports": ["models.outputs"]}
VALID: dict[str, dict[str, Any]] = {
    "export-deps": {"lists": [DEPS]},
    "export": {"graph_hash": H[3], "structure_hash": H[2], "weights_digest": H[1], "program": H[0],
               "reference": H[1], "reference_io": H[2], "deps": DEPS,
               "cases": ["example"], "blobs": H[:3], "interface": INTERFACE},
    "program-of-graph": {"program": H[0], "blobs": [H[0]]},
    "exports-differ": {"graph_hashes": H[:2]},
    "compile": {"torch": "2.13.0+cpu", "so_needs_kernel_files": [], "pt2": {"sha256": H[0], "size": 10},
                "so": {"sha256": H[1], "size": 5}, "blobs": H[:2]},
    "refit": {"graph_hash": H[3], "pt2": {"sha256": H[0], "size": 10}, "so": {"sha256": H[1], "size": 5},
              "blobs": H[:2], "library": "model/data/aotinductor/model/x.wrapper.so",
              "blob": {"offset": 4096, "size": 2048, "sha256": H[2]},
              "table": [{"name": "_tensor_constant0", "source": "lifted_tensor_0", "offset": 0, "size": 64}],
              "fixed": [{"name": "scale", "sha256": H[3]}]},
    "verify": {"cases": [{"case": "example", "artifact": "so", "outputs": [
        {"output": "output", "ok": True, "max_abs": 0.0, "max_rel": 0.0, "atol": 1e-4, "rtol": 1e-4,
         "max_reference": 1.5, "nan_reference": 0, "nan_artifact": 0, "values": 8},
        {"output": "*", "ok": False, "problem": "refused"}]}],
        "rejected": [{"dim": "batch", "size": 65, "refused": True, "message": "dim value is too large"}]},
}


def _set(doc: dict, path: str, value: Any) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = path.split("/")
    target = doc
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize("kind", sorted(VALID))
def test_every_kind_accepts_what_its_writer_writes(kind: str) -> None:
    assert payloads.problem(kind, VALID[kind]) is None


def test_an_export_without_a_stored_program_names_only_its_other_blobs() -> None:
    """A program with large weights is not stored (export.PROGRAM_STORE_LIMIT): `program` is null and the
    blobs are the other two; a null program still listed among the blobs is refused."""
    without = {**VALID["export"], "program": None, "blobs": H[1:3]}
    assert payloads.problem("export", without) is None
    assert payloads.problem("export", {**without, "blobs": [None, *H[1:3]]}) is not None


# The rows of issue 21 and their neighbours: each is a miss, never an exception.
BAD = [
    ("export-deps", "lists", [{"files": 5}], "lists[0]"),
    ("export-deps", "lists", [{"files": 5, "packages": []}], "files"),
    ("export-deps", "lists/0/files", ["/etc/passwd"], "inside the workspace"),
    ("export-deps", "lists/0/files", ["/dev/zero"], "inside the workspace"),
    ("export-deps", "lists/0/files", ["../x.py"], "inside the workspace"),
    ("export-deps", "lists/0/files", ["a/../../x.py"], "inside the workspace"),
    ("export-deps", "lists/0/files", ["aot-out/models/x.py"], "inside the workspace"),
    ("export-deps", "lists/0/files", [".venv/lib/x.py"], "inside the workspace"),
    ("export-deps", "lists/0/files", ["a\0b"], "inside the workspace"),
    ("export-deps", "lists/0/packages", ["evil/stamp"], "distribution name"),
    ("export-deps", "lists/0/packages", [".."], "distribution name"),
    ("export-deps", "lists", [DEPS] * 9, "at most 8"),
    ("export-deps", "lists", "x", "a list"),
    ("export", "interface/requires_imports", ["aot-out.models.@mlp.mlp"], "module name"),
    ("export", "interface/requires_imports", ["os;x"], "module name"),
    ("export", "interface/requires_imports", [5], "module name"),
    ("export", "program", "A" * 64, "hex"),
    ("export", "program", "../" * 20, "hex"),
    ("export", "blobs", [H[0]], "exactly the digests"),
    ("export", "interface/label", "//evil:x", "unexpected"),
    ("export", "interface/out_spec", {"leaf": -1}, "integer"),
    ("export", "interface/dims/batch/min", True, "integer"),
    ("export", "deps/packages", ["evil/stamp"], "distribution name"),
    ("export", "deps/external", ["/dev/zero"], "a .py file"),
    ("export", "deps/external", ["/etc/passwd"], "a .py file"),
    ("export", "deps/external", ["/opt/../etc/x.py"], "a .py file"),
    ("export", "deps/absent", ["../outside.py"], "inside the workspace"),
    ("export", "deps/env", ["NOT-A-NAME"], "environment variable name"),
    ("export", "extra", 1, "unexpected"),
    ("program-of-graph", "blobs", [H[1]], "exactly the digests"),
    ("compile", "pt2/file", "/abs/path", "unexpected"),
    ("compile", "so/file", "../../../../x", "unexpected"),
    ("compile", "so_needs_kernel_files", ["../k.cubin"], "plain file name"),
    ("compile", "so_needs_kernel_files", ["/k.cubin"], "plain file name"),
    ("compile", "pt2/size", "10", "integer"),
    ("compile", "blobs", [H[1], H[0]], "exactly the digests"),
    ("refit", "blobs", [H[1], H[0]], "exactly the digests"),
    ("refit", "library", "../../evil.py", "member name"),
    ("refit", "blob/offset", -1, "integer >= 0"),
    ("refit", "table/0/size", "64", "integer >= 0"),
    ("refit", "table/0/extra", 1, "unexpected"),
    ("refit", "fixed/0/sha256", "x", "hex"),
    ("verify", "cases/0/outputs/0/ok", "yes", "true or false"),
    ("verify", "cases/0/artifact", "exe", "pt2 or so"),
    ("verify", "rejected/0/size", None, "integer"),
]


@pytest.mark.torch
def test_the_records_verify_writes_pass_the_verify_schema() -> None:
    """The schema follows the writer: a field verify adds without the schema would make every entry a miss."""
    import torch

    from aotbuild.actions.verify import compare

    want = [torch.tensor([1.0, float("nan")]), torch.ones(2, dtype=torch.int64)]
    records = compare(want, [torch.tensor([1.0, 2.0]), torch.ones(3, dtype=torch.int64)], ["a", "b"], None)
    case = {"case": "example", "artifact": "so", "outputs": records}
    assert payloads.problem("verify", {"cases": [case], "rejected": []}) is None


@pytest.mark.parametrize(("kind", "path", "value", "says"), BAD, ids=[f"{k}:{p}={v!r}"[:60] for k, p, v, _ in BAD])
def test_malformed_payloads_are_refused_with_the_reason(kind: str, path: str, value: Any, says: str) -> None:
    why = payloads.problem(kind, _set(VALID[kind], path, value))
    assert why is not None and says in why


@pytest.mark.parametrize("payload", [None, [], "x", 5, {}, {"lists": None}])
def test_wrong_shapes_are_problems_for_every_kind(payload: Any) -> None:
    for kind in payloads.SCHEMAS:
        assert payloads.problem(kind, payload) is not None


def test_a_tree_nested_past_the_limit_is_refused_not_a_recursion_error() -> None:
    tree: dict = {"leaf": 0}
    for _ in range(10_000):
        tree = {"type": "builtins.tuple", "context": None, "children": [tree]}
    assert "nested" in payloads.problem("export", _set(VALID["export"], "interface/in_spec", tree))


class _Store:
    def __init__(self, value: Any) -> None:
        self.value, self.warnings = value, []

    def get_action(self, key: str) -> Any:
        return self.value


def test_checked_is_a_miss_with_one_warning_naming_the_key() -> None:
    store = _Store({"lists": [{"files": 5}]})
    assert payloads.checked(store, "f" * 64, "export-deps") is None
    assert payloads.checked(store, "f" * 64, "export-deps") is None
    assert len(store.warnings) == 1 and f"ac/{'f' * 64}" in store.warnings[0]
    assert payloads.checked(_Store(VALID["compile"]), "f" * 64, "compile") == VALID["compile"]
    assert payloads.checked(_Store(None), "f" * 64, "compile") is None


# -- dependency files and modules on disk

def test_dependency_files_must_be_regular_files_inside_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("")
    (tmp_path / "out").symlink_to("/etc/hostname")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "dir").mkdir()
    assert trust.unsafe_file(tmp_path, "m.py") is None
    assert trust.unsafe_file(tmp_path, "gone.py") is None  # a deleted dependency: a different state, hashed as absent
    assert "out of the workspace" in trust.unsafe_file(tmp_path, "out")
    assert "out of the workspace" in trust.unsafe_file(tmp_path, "zero")
    assert "not a regular file" in trust.unsafe_file(tmp_path, "dir")


def test_dependency_lists_name_outside_modules_only_as_regular_files_and_declared_variables(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.py").write_text("")
    (tmp_path / "lib" / "fifo.py").symlink_to("/dev/zero")
    deps = {"files": [], "absent": [], "external": [str(tmp_path / "lib" / "helpers.py")], "globs": [],
            "env": ["MODEL_SIZE", "PYTHONPATH"], "packages": []}
    assert trust.unsafe_deps(tmp_path, [deps], ["MODEL_SIZE"]) is None
    assert "not a regular file" in trust.unsafe_deps(tmp_path, [{**deps, "external": [str(tmp_path / "lib/fifo.py")]}],
                                                     ["MODEL_SIZE"])
    # A forged list naming a secret would fold its value into the keys this client asks the remote for.
    assert "AWS_SECRET_ACCESS_KEY" in trust.unsafe_deps(tmp_path, [{**deps, "env": ["AWS_SECRET_ACCESS_KEY"]}],
                                                        ["MODEL_SIZE"])


def test_required_imports_are_recorded_workspace_modules_or_installed_distributions(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    files = ["models/__init__.py", "models/outputs.py"]
    assert trust.workspace_modules(files) == {"models", "models.outputs"}
    assert trust.unsafe_imports(tmp_path, ["models.outputs", "pytest", "yaml"], files) is None
    assert "did not import" in trust.unsafe_imports(tmp_path, ["models.evil"], files)
    assert "no installed distribution" in trust.unsafe_imports(tmp_path, ["this"], files)
    assert "no installed distribution" in trust.unsafe_imports(tmp_path, ["antigravity"], files)


# -- archives

def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _config(prefix: str, use_pickle: bool = False, path_name: str | None = None) -> bytes:
    return json.dumps({"config": {"w": {"path_name": path_name or f"{prefix}_0", "is_param": True,
                                        "use_pickle": use_pickle, "tensor_meta": {}}}}).encode()


def _graph(target: str = "torch.ops.aten.add.Tensor", expr: str = "Symbol('s77', positive=True, integer=True)",
           guards: list[str] | None = None) -> bytes:
    return json.dumps({"graph_module": {"graph": {"nodes": [{"target": target, "inputs": []}],
                                                  "sym_int_values": {"s": {"as_expr": {"expr_str": expr}}},
                                                  "custom_obj_values": {}}},
                       "guards_code": guards or []}).encode()


def _sample_inputs(obj: Any = (1, 2)) -> bytes:
    return _zip({"archive/data.pkl": pickle.dumps(obj, protocol=2), "archive/version": b"3"})


def _program(**replace: bytes | None) -> io.BytesIO:
    members = {"archive/archive_format": b"pt2", "archive/archive_version": b"0", "archive/byteorder": b"little",
               "archive/.data/version": b"1", "archive/models/model.json": _graph(),
               "archive/data/sample_inputs/model.pt": _sample_inputs(),
               "archive/data/weights/model_weights_config.json": _config("weight"),
               "archive/data/weights/weight_0": b"\0" * 16,
               "archive/data/constants/model_constants_config.json": _config("tensor"),
               "archive/data/constants/tensor_0": b"\0" * 16}
    members.update(replace)
    return io.BytesIO(_zip({k: v for k, v in members.items() if v is not None}))


class _Payload:
    def __reduce__(self):  # what a pickle would run: never, here
        return (print, ("ran",))


PROGRAMS = [
    ({"archive/data/weights/model_weights_config.json": _config("weight", use_pickle=True)}, "use_pickle"),
    ({"archive/data/constants/model_constants_config.json": _config("tensor", use_pickle=True)}, "use_pickle"),
    ({"archive/data/weights/model_weights_config.json": _config("weight", path_name="../x")}, "names file"),
    ({"archive/data/weights/model.pt": b"legacy pickle"}, "not part of an exported program"),
    ({"archive/data/constants/custom_obj_0": b"x"}, "not part of an exported program"),
    ({"archive/data/aotinductor/model/x.so": b"\x7fELF"}, "not part of an exported program"),
    ({"archive/../../x": b"x"}, "climbs out"),
    ({"/abs": b"x"}, "climbs out"),
    ({"version": b"1"}, "one top-level folder"),
    ({"archive/models/model.json": None}, "model.json"),
    ({"archive/data/sample_inputs/model.pt": _sample_inputs(_Payload())}, "GLOBAL"),
    ({"archive/models/model.json": _graph(target="torch.ops.import_module.x.y")}, "not an operator"),
    ({"archive/models/model.json": _graph(target="torch.save")}, "not an operator"),
    ({"archive/models/model.json": _graph(target="_operator.call")}, "not an operator"),
    ({"archive/models/model.json": _graph(expr="__import__('os').system('x')")}, "not a plain expression"),
    ({"archive/models/model.json": _graph(expr="s0.__class__")}, "not a plain expression"),
    ({"archive/models/model.json": _graph(guards=["import os"])}, "guard code"),
]


def test_the_program_torch_export_save_writes_is_accepted() -> None:
    assert archives.program_problem(_program()) is None


@pytest.mark.parametrize(("replace", "says"), PROGRAMS, ids=[s + str(i) for i, (_, s) in enumerate(PROGRAMS)])
def test_programs_that_could_run_code_are_refused(replace: dict, says: str) -> None:
    why = archives.program_problem(_program(**replace))
    assert why is not None and says in why


def test_not_a_zip_is_refused() -> None:
    assert archives.program_problem(io.BytesIO(b"not a zip")) is not None


def test_packages_with_members_climbing_out_are_refused(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.pt2", tmp_path / "bad.pt2"
    good.write_bytes(_zip({"model/data/aotinductor/model/x.wrapper.so": b"x", "model/archive_format": b"pt2"}))
    bad.write_bytes(_zip({"model/data/aotinductor/model/../../../../../x": b"x"}))
    assert archives.package_problem(good) is None
    assert "climbs out" in archives.package_problem(bad)


@pytest.mark.parametrize(("expr", "ok"), [("s77", True), ("2*s77 + 1", True), ("Max(1, s0)", True),
                                          ("FloorDiv(s0, 2)", True), ("Symbol('u0', integer=True)", True),
                                          ("eval('1')", False), ("s0.args", False), ("[s0]", False),
                                          ("lambda: 1", False), ("'__import__'", False)])
def test_safe_expression(expr: str, ok: bool) -> None:
    assert archives.safe_expression(expr) is ok


def test_a_manifest_naming_paths_is_rebuilt_and_the_paths_are_left_alone(tmp_path: Path) -> None:
    """A manifest written before artifact names came from the plan could name any path: `cache verify` and
    `aotbuild test` deleted them (issue 21). Now the manifest itself goes, and the compile writes it again."""
    from aotbuild.engine.output_checks import repair_mismatched

    outside = tmp_path / "outside"
    outside.write_text("keep")
    target = tmp_path / "aot-out" / "m" / "@a"
    target.mkdir(parents=True)
    manifest = target / "manifest.json"
    manifest.write_text(json.dumps({"artifacts": {"pt2": {"file": str(outside), "sha256": "0" * 64},
                                                  "so": {"file": "../../../outside", "sha256": "0" * 64}}}))
    assert repair_mismatched(target) == [manifest]
    assert outside.read_text() == "keep" and not manifest.exists()


GUARDS = [(["L['ids'].size()[0] == L['mask'].size()[0]", "L['dense'].size()[0] >= 2"], True),
          (["Max(1, L['x'].size()[0]) <= 64", "L['x'].stride()[1] == 1"], True),
          (["L['x'].size()[0] == __import__('os').system('x')"], False),
          (["L['x'].__class__"], False), (["L['__class__'].size()[0] == 1"], False),
          (["().__class__.__base__"], False), (["exec('x')"], False), ("L['x'].size()[0] == 1", False)]


@pytest.mark.parametrize(("guards", "ok"), GUARDS)
def test_guard_code_passes_only_as_plain_size_comparisons(guards: Any, ok: bool) -> None:
    why = archives.program_problem(_program(**{"archive/models/model.json": _graph(guards=guards)}))
    assert (why is None) is ok, why

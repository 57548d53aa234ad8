"""Manifests of the files an action ships to a node: chosen on the client, refused or laid out on the node."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aotbuild.actions import shipping
from aotbuild.executors import manifest
from aotbuild.hashing import sha256_bytes

from .conftest import write

DIGEST = "a" * 64


def _entry(mode: int = 0o644) -> dict:
    return {"sha256": DIGEST, "mode": mode}


@pytest.mark.parametrize("name", ["../escape.py", "m/../../x.py", "/etc/passwd", "m/./x.py", "m//x.py", ".hidden",
                                  "m/.venv/x.py", "aot-out/m/graph.json", "", "m\\x.py", "m/x\0.py", "m/"])
def test_a_manifest_naming_anything_but_a_plain_path_inside_is_refused(name: str) -> None:
    with pytest.raises(manifest.ManifestError, match="is not a relative path inside the workspace"):
        manifest.check({name: _entry()})


@pytest.mark.parametrize(("bad", "match"), [({"sha256": "../x", "mode": 0o644}, "64 lowercase hex"),
                                            (_entry(0o4755), "mode 4755"), ({"sha256": DIGEST}, "mode"),
                                            ({**_entry(), "path": "/x"}, "path")])
def test_a_manifest_entry_needs_a_digest_and_a_plain_mode(bad: dict, match: str) -> None:
    with pytest.raises(manifest.ManifestError, match=match):
        manifest.check({"m/x.py": bad})


def test_a_manifest_naming_a_path_as_file_and_directory_is_refused() -> None:
    with pytest.raises(manifest.ManifestError, match="'m' is named as a file and as a directory"):
        manifest.check({"m": _entry(), "m/x.py": _entry()})
    with pytest.raises(manifest.ManifestError, match="at most"):
        manifest.check(["m/x.py"])


def test_a_manifest_is_laid_out_as_copies_of_verified_blobs(tmp_path: Path) -> None:
    write(tmp_path / "cas" / "a", "print(1)\n")
    write(tmp_path / "cas" / "b", "#!/bin/sh\n")
    blobs = {sha256_bytes(b"print(1)\n"): tmp_path / "cas" / "a", sha256_bytes(b"#!/bin/sh\n"): tmp_path / "cas" / "b"}
    digests = list(blobs)
    shipped = {"m/x.py": {"sha256": digests[0], "mode": 0o644}, "tool.sh": {"sha256": digests[1], "mode": 0o755}}
    root = tmp_path / "scratch"
    root.mkdir()
    manifest.materialize(shipped, root, blobs.get)
    assert (root / "m" / "x.py").read_text() == "print(1)\n" and not os.path.samefile(root / "m/x.py", blobs[digests[0]])
    assert os.stat(root / "tool.sh").st_mode & 0o777 == 0o755
    with pytest.raises(manifest.InfraError, match=r"m/y.py \(cas/a{64}\) is not in the remote cache"):
        manifest.materialize({"m/y.py": _entry()}, root, blobs.get)


def test_a_forged_manifest_writes_nothing_outside_the_scratch_workspace(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    root.mkdir()
    with pytest.raises(manifest.ManifestError):
        manifest.materialize({"ok.py": _entry(), "../outside.py": _entry()}, root, lambda d: None)
    assert list(tmp_path.iterdir()) == [root] and list(root.iterdir()) == []  # checked before anything is written


def test_the_shipped_files_are_the_lists_files_data_and_weights_never_a_link_out(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for rel in ("m/__init__.py", "m/model.py", "m/helper.py", "m/w.pt", "m/data/a.txt", "m/new.py", "other.py"):
        write(ws / rel, rel)
    write(tmp_path / "secret.py", "x")
    os.symlink(tmp_path / "secret.py", ws / "m" / "link.py")
    lists = [{"files": ["m/__init__.py", "m/model.py", "m/link.py"], "absent": ["m/new.py", "m/gone.py", "/abs/x.py"],
              "external": [], "globs": [], "env": [], "packages": []},
             {"files": ["m/helper.py"], "absent": [], "external": [], "globs": [], "env": [], "packages": []}]
    spec = {"weights": "m/w.pt", "data": ["m/data/*.txt"]}
    assert shipping.known_files(ws, lists, spec) == ["m/__init__.py", "m/data/a.txt", "m/helper.py", "m/model.py",
                                                     "m/new.py", "m/w.pt"]


def test_a_first_export_ships_every_workspace_module_but_outputs_hidden_dirs_and_links_out(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for rel in ("m/model.py", "top.py", "m/w.pt", "m/notes.txt", "aot-out/m/x.py", ".venv/lib/y.py",
                "m/__pycache__/z.py", "venv/lib/site-packages/q.py"):
        write(ws / rel, rel)
    write(tmp_path / "secret.py", "x")
    os.symlink(tmp_path / "secret.py", ws / "m" / "link.py")
    os.symlink(tmp_path, ws / "linked_dir")
    assert shipping.workspace_sources(ws, {"weights": "m/w.pt"}) == ["m/model.py", "m/w.pt", "top.py"]


def test_a_manifest_records_digest_and_executable_bit(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "a")
    write(tmp_path / "b.sh", "b")
    os.chmod(tmp_path / "b.sh", 0o700)
    seen: list[Path] = []

    def put(path: Path) -> str:
        seen.append(path)
        return sha256_bytes(path.read_bytes())

    assert manifest.build(tmp_path, ["a.py", "b.sh"], put) == {
        "a.py": {"sha256": sha256_bytes(b"a"), "mode": 0o644}, "b.sh": {"sha256": sha256_bytes(b"b"), "mode": 0o755}}
    assert seen == [tmp_path / "a.py", tmp_path / "b.sh"]


def test_a_node_refuses_a_bundle_whose_manifest_or_spec_names_lead_out(tmp_path: Path) -> None:
    from aotbuild.executors import worker

    toolchain = worker.own_fingerprint()
    before = set(worker.base_dir().glob("a-*"))
    spec = {"label": "//m:a", "device": "cpu"}
    for extra, why in [({"files": {"../../escape.py": _entry()}}, "'../../escape.py' is not a relative path"),
                       ({"files": {"/tmp/escape.py": _entry()}}, "'/tmp/escape.py' is not a relative path"),
                       ({"specs": {"../compile.json": {}}}, "'../compile.json' is not a spec file")]:
        bundle = {"action": "export", "spec": spec, "toolchain": toolchain, "remote": None, **extra}
        answer = worker.run_action(bundle)
        assert answer["status"] == "refused" and why in answer["why"], answer
    assert not (worker.base_dir().parent / "escape.py").exists() and not Path("/tmp/escape.py").exists()
    assert set(worker.base_dir().glob("a-*")) <= before  # its scratch directory is gone

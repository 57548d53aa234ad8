"""aotbuild.load's checks on a hand-made target directory: digest, host, required imports, missing builds."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aotbuild import layout

from aotbuild.deploy import loader

from aotbuild.planning import toolchain
from aotbuild.errors import UserError, VerificationError
from aotbuild.workspace.labels import parse_label

from .conftest import REPO, torch_tripwire


def _workspace(tmp_path: Path, **manifest_fields: object) -> Path:
    """A workspace with one 'built' target, //models:mlp, whose .pt2 is a few bytes (never loaded here)."""
    ws = tmp_path / "ws"
    (ws / "models").mkdir(parents=True)
    (ws / "WORKSPACE.aot.yaml").write_text("")
    target = ws / layout.OUT_DIR / layout.TargetPaths(parse_label("//models:mlp")).dir
    target.mkdir(parents=True)
    data = b"not really a package"
    (target / "mlp-0123456789abcdef.pt2").write_bytes(data)
    manifest = {"label": "//models:mlp", "torch": toolchain.torch_versions()["torch"], "device": "cpu",
                "cpu_isa": toolchain.cpu_isa(), "gpu_arch": None,
                "artifacts": {"pt2": {"file": "mlp-0123456789abcdef.pt2", "sha256": hashlib.sha256(data).hexdigest()}},
                **manifest_fields}
    (target / "manifest.json").write_text(json.dumps(manifest))
    return ws


def test_locate_reads_paths_from_the_manifest_and_resolves_relative_labels(tmp_path: Path, monkeypatch) -> None:
    ws = _workspace(tmp_path)
    files = loader.locate("//models:mlp", workspace=ws / "models")
    assert files.pt2 == files.dir / "mlp-0123456789abcdef.pt2"
    assert files.check_digest("pt2") == files.pt2
    monkeypatch.chdir(ws / "models")
    assert loader.locate(":mlp").dir == files.dir


def test_an_unbuilt_target_says_how_to_build_it(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    with pytest.raises(UserError, match=r"(?s)//models:cnn: no manifest.json .*aotbuild build //models:cnn"):
        loader.locate("//models:cnn", workspace=ws)


def test_a_modified_artifact_is_refused(tmp_path: Path) -> None:
    files = loader.locate("//models:mlp", workspace=_workspace(tmp_path))
    files.pt2.write_bytes(b"not really a package!")
    with pytest.raises(VerificationError, match="does not match the sha256 in manifest.json"):
        loader.load("//models:mlp", workspace=files.root)


@pytest.mark.parametrize("field, value, message", [
    ("torch", "1.0.0", "built with torch 1.0.0"),
    ("cpu_isa", "x86_64:0000000000000000", "compiled for CPU ISA x86_64:0000000000000000"),
])
def test_an_artifact_for_another_host_is_refused(tmp_path: Path, field: str, value: str, message: str) -> None:
    files = loader.locate("//models:mlp", workspace=_workspace(tmp_path, **{field: value}))
    with pytest.raises(UserError, match=message):
        loader.check_host_matches(files)


def test_modules_listed_in_the_manifest_are_imported_from_the_workspace(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, requires_imports=["models.registry"])
    (ws / "models" / "__init__.py").write_text("")
    (ws / "models" / "registry.py").write_text("REGISTERED = True\n")
    files = loader.locate("//models:mlp", workspace=ws)
    try:
        assert loader.import_requirements(files) == ["models.registry"]
        assert sys.modules["models.registry"].REGISTERED
        assert str(ws) not in sys.path  # the workspace root was on sys.path only while importing
    finally:
        for name in ("models.registry", "models"):
            sys.modules.pop(name, None)
    assert loader.import_requirements(loader.locate("//models:mlp", workspace=_workspace(tmp_path / "2"))) == []


def test_a_missing_required_module_names_itself(tmp_path: Path) -> None:
    files = loader.locate("//models:mlp", workspace=_workspace(tmp_path, requires_imports=["no_such_module_xyz"]))
    with pytest.raises(UserError, match="module 'no_such_module_xyz' as needed to load the .pt2"):
        loader.import_requirements(files)


def test_import_aotbuild_and_its_load_attribute_do_not_import_torch(tmp_path: Path) -> None:
    env, marker = torch_tripwire(tmp_path)
    proc = subprocess.run([sys.executable, "-c", "import aotbuild; assert callable(aotbuild.load)"], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()

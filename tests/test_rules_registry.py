"""rules/ is the extension point: a module there with a KIND is a kind everywhere (ninja, plan, outcomes)."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from aotbuild import rules
from aotbuild.planning.ninja_files import package_ninja
from aotbuild.workspace.labels import Label
from aotbuild.workspace.target import Target

TARGET = Target(label=Label("models", "mlp"), build_file="models/BUILD.aot.yaml", line=3, model="models.mlp:MLP")

LINT = '''
from aotbuild.rules import Kind

KIND = Kind(name="lint", spec=lambda target: {"label": str(target.label)}, spec_file="lint.json", goal="linted.json",
            inputs=("graph.json", "lint.json"), ran="linted", hit="lint-cache hit", cost=0, after=("export",))
'''


@pytest.fixture
def extra_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A second directory on aotbuild.rules' path, as if its file had been added to rules/."""
    monkeypatch.setattr(rules, "__path__", [*rules.__path__, str(tmp_path)])
    rules.kinds.cache_clear()
    yield tmp_path
    rules.kinds.cache_clear()


def test_the_kinds_come_in_the_order_they_read_each_other() -> None:
    assert [k.name for k in rules.kinds()] == ["export", "compile", "verify"]
    assert rules.outcomes() == ("compiled", "re-packaged", "artifact-cache hit", "exported", "action-cache hit",
                                "verified", "verify-cache hit")


def test_one_new_file_in_rules_adds_a_kind_to_the_ninja_file_and_the_outcomes(extra_rules: Path) -> None:
    (extra_rules / "lint.py").write_text(textwrap.dedent(LINT))
    assert [k.name for k in rules.kinds()] == ["export", "compile", "lint", "verify"]
    text = package_ninja("models", [TARGET], "python")
    assert "build models/@mlp/linted.json: aot_lint models/@mlp/graph.json models/@mlp/lint.json\n" in text
    spec_edge = next(line for line in text.splitlines() if ": aot_spec " in line)
    assert "models/@mlp/lint.json" in spec_edge.split()  # the target's one spec edge writes it too
    assert "linted" in rules.outcomes()
    assert rules.spec_files(TARGET)["models/@mlp/lint.json"] == {"label": "//models:mlp"}


def test_a_misspelt_input_is_refused_when_the_kinds_load() -> None:
    verify = rules.kind("verify")
    with pytest.raises(RuntimeError, match="rules/verify.py: input 'manifest.jsn'"):
        rules.check_inputs([*rules.kinds()[:2], replace(verify, inputs=("manifest.jsn", *verify.inputs[1:]))])


def test_each_kind_reads_only_files_declared_as_its_edge_inputs() -> None:
    """The edge lists every file the action reads (the issue-14 stale-manifest bug was an undeclared one)."""
    compile_edge, = rules.kind("compile").edges(TARGET)
    assert set(compile_edge.inputs) | set(compile_edge.implicit) == {
        "models/@mlp/graph.json", "models/@mlp/compile.json", "models/@mlp/export.json", ".aotbuild/toolchain.json"}

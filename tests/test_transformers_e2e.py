"""A tiny transformers model (built from a config, no downloads) returning a library ModelOutput builds and
verifies. transformers is an optional test dependency: without it this test is skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import aotbuild

pytestmark = pytest.mark.torch

MODEL = '''"""A tiny BERT from a config: a few thousand parameters, nothing downloaded."""

import torch
from transformers import BertConfig, BertModel


def tiny_bert() -> BertModel:
    torch.manual_seed(0)  # the weights are part of the graph: the same ones every export
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    return BertModel(config)
'''

BUILD = """targets:
  tiny_bert:
    model: models.bert:tiny_bert
    inputs:
      input_ids: {shape: [2, 8], dtype: int64, low: 0, high: 64}
"""


def test_tiny_transformers_model_builds_and_verifies(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    ws = tmp_path / "ws"
    (ws / "models").mkdir(parents=True)
    (ws / "WORKSPACE.aot.yaml").write_text("")
    (ws / "models" / "__init__.py").write_text("")
    (ws / "models" / "bert.py").write_text(MODEL)
    (ws / "models" / "BUILD.aot.yaml").write_text(BUILD)
    run = aotbuild(["test", "//models:tiny_bert"], ws, {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert run.code == 0, run.output
    manifest = json.loads((ws / "aot-out" / "models" / "@tiny_bert" / "manifest.json").read_text())
    assert manifest["requires_imports"] == ["transformers.modeling_outputs"]
    assert [(o["name"], o["shape"]) for o in manifest["outputs"]] == [("last_hidden_state", [2, 8, 16]),
                                                                       ("pooler_output", [2, 16])]
    assert manifest["out_spec"]["type"] == \
        "transformers.modeling_outputs.BaseModelOutputWithPoolingAndCrossAttentions"

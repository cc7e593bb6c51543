"""The model-entry and HF-config schemas on the exact cases of issue 9 (each was a traceback, silently
accepted, or computed wrongly before the schema layer)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from latentmoe_sim.errors import InputError
from latentmoe_sim.models.catalog import CATALOG_DIR, load_model
from latentmoe_sim.models.hf_import import spec_from_hf_config

KIMI = yaml.safe_load((CATALOG_DIR / "kimi-k2-1t.yaml").read_text())


def _entry_error(tmp_path, mutate, text: str | None = None) -> str:
    doc = copy.deepcopy(KIMI)
    mutate(doc)
    path = tmp_path / "m.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(InputError) as info:
        load_model(str(path))
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path))
    return msg


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["moe"].update(top_k="8"), "field moe.top_k = '8': must be an integer"),  # was a TypeError
    (lambda d: d["moe"].update(top_k=2.5), "field moe.top_k = 2.5: must be an integer"),  # was accepted
    (lambda d: d["attention"].update(num_heads=0), "field attention.num_heads = 0: out of range"),  # was accepted
    (lambda d: d.update(tie_embeddings="no"), "field tie_embeddings = 'no': must be true or false"),  # was "tied"
    (lambda d: d["attention"].update(kind="swa"), "field attention.kind = 'swa': must be one of 'mla' or 'gqa'"),  # was GQA
    (lambda d: d["moe"].update(num_shared=-2), "field moe.num_shared = -2: out of range"),  # was negative bytes
    (lambda d: d["moe"].update(expert_ffn=float("nan")), "field moe.expert_ffn = nan: must be an integer"),  # was NaN params
    (lambda d: d.update(layers=[["AE", 200000000]]), "COUNT must be an integer in [1, 2048]"),  # was a hang
    (lambda d: d["moe"].update(top_k=500), "moe.top_k = 500 out of range, allowed [1, moe.num_experts = 384]"),
    (lambda d: d.update(name="a\u2028b"), "field name"),  # a line separator would break one-line output
])
def test_issue_cases_model_entry(tmp_path, mutate, expected):
    assert expected in _entry_error(tmp_path, mutate)


def test_duplicate_hidden_size_is_refused_not_last_wins(tmp_path):
    text = (CATALOG_DIR / "kimi-k2-1t.yaml").read_text().replace("hidden_size: 7168\n", "hidden_size: 7168\nhidden_size: 1024\n")
    assert "duplicate key 'hidden_size'" in _entry_error(tmp_path, lambda d: None, text)


def test_exponent_floats_in_reported_are_numbers():
    # catalog entries write reported sizes as 7.26e10 (YAML 1.1 would read a string)
    assert load_model("hybrid-73bt-8ba").reported["total_params"] == 7.26e10


_DSV3 = {"model_type": "deepseek_v3", "hidden_size": 7168, "vocab_size": 129280, "num_hidden_layers": 61,
         "num_attention_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
         "qk_rope_head_dim": 64, "v_head_dim": 128, "moe_intermediate_size": 2048, "n_routed_experts": 256,
         "num_experts_per_tok": 8, "n_shared_experts": 1, "first_k_dense_replace": 3, "intermediate_size": 18432,
         "topk_method": "noaux_tc"}
_QWEN = {"model_type": "qwen3_moe", "hidden_size": 4096, "vocab_size": 151936, "num_hidden_layers": 94,
         "num_attention_heads": 64, "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128,
         "num_experts_per_tok": 8, "moe_intermediate_size": 1536, "intermediate_size": 12288}


@pytest.mark.parametrize("base, change, expected", [
    (_DSV3, {"num_hidden_layers": 61.5}, "field num_hidden_layers = 61.5: must be an integer"),  # was a traceback
    (_DSV3, {"moe_layer_freq": "abc"}, "field moe_layer_freq = 'abc': must be an integer"),  # was a traceback
    (_QWEN, {"decoder_sparse_step": 0}, "field decoder_sparse_step = 0: out of range"),  # was ZeroDivisionError
    (_DSV3, {"num_experts_per_tok": 300}, "num_experts_per_tok = 300 out of range, allowed [1, n_routed_experts = 256]"),
    (_QWEN, {"mlp_only_layers": [1, "x"]}, "field mlp_only_layers[1] = 'x': must be an integer"),
])
def test_issue_cases_hf_config(tmp_path, base, change, expected):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**base, **change}))
    with pytest.raises(InputError) as info:
        spec_from_hf_config(path)
    assert expected in str(info.value) and str(info.value).startswith(str(path))


def test_hf_config_unknown_keys_are_ignored_and_values_imported(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**_DSV3, "rope_scaling": {"type": "yarn", "factor": 40}, "initializer_range": 0.02}))
    spec = spec_from_hf_config(path)
    # DeepSeek-V3's published 671B total (tech report; docs/MODELING.md reproduces it exactly)
    assert spec.total_params == load_model("deepseek-v3").total_params

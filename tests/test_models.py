"""Model catalog: parameter counts against published numbers and hand calculations, KV bytes, import."""

import json

import pytest

from latentmoe_sim.cli import main
from latentmoe_sim.errors import InputError
from latentmoe_sim.models import list_models, load_model, to_latentmoe
from latentmoe_sim.models.hf_import import spec_from_hf_config

REQUIRED = {"kimi-k2-1t", "kimi-k2-1t-latentmoe", "kimi-k2-1.35t", "deepseek-v3", "qwen3-235b-a22b", "95bt-8ba",
            "95bt-8ba-latentmoe", "hybrid-73bt-8ba", "hybrid-73bt-8ba-latentmoe", "nemotron-3-super"}


def test_catalog_has_the_issue_entries():
    assert REQUIRED <= set(list_models())


def test_issue_totals():
    k = load_model("kimi-k2-1t")
    assert k.total_params == pytest.approx(1.026e12, rel=0.005)
    assert k.active_params == pytest.approx(3.29e10, rel=0.01)
    assert load_model("kimi-k2-1.35t").total_params == pytest.approx(1.35e12, rel=0.01)
    assert load_model("deepseek-v3").total_params == pytest.approx(6.71e11, rel=0.005)
    lm = load_model("kimi-k2-1t-latentmoe")
    assert lm.routed_expert_params == pytest.approx(k.routed_expert_params, rel=0.01)


def test_kimi_hand_count():
    """facts.md §1.2: MLA 101,124,096 per layer; one MoE layer 17,059,365,248; total 1026.4 B."""
    k = load_model("kimi-k2-1t")
    assert k.attention.params(k.hidden_size) == 101_124_096
    assert k.block_params("A") + k.block_params("E") == 17_059_365_248
    h, V = 7168, 163840
    dense_layer = 101_124_096 + 3 * h * 18432 + 2 * h
    assert k.total_params == dense_layer + 60 * 17_059_365_248 + 2 * V * h + h


def test_latentmoe_rule_matches_catalog_entry():
    k, lm = load_model("kimi-k2-1t"), load_model("kimi-k2-1t-latentmoe")
    assert (lm.moe.latent_dim, lm.moe.num_experts, lm.moe.top_k, lm.moe.expert_ffn) == (1792, 1536, 32, 2048)
    assert to_latentmoe(k, 4, "acc").moe == lm.moe
    assert "not a published config" in lm.description + lm.source
    # extra weights over the base: router grows 4x, plus W_down/W_up (2 h l) per MoE layer
    extra = 60 * (3 * 384 * 7168 + 3 * 384 + 2 * 7168 * 1792)  # router weight + bias, W_down, W_up
    assert lm.total_params - k.total_params == extra
    eff = to_latentmoe(k, 4, "eff")
    assert eff.moe.top_k == 8 and eff.active_params < k.active_params


def test_paper_tables_within_a_percent():
    """Paper Table 3 sizes of the hybrid model (our layer order and Mamba shape are assumptions)."""
    hyb = load_model("hybrid-73bt-8ba")
    assert hyb.total_params == pytest.approx(72.6e9, rel=0.01)
    assert hyb.active_params == pytest.approx(8.09e9, rel=0.01)
    assert hyb.num_layers == 52 and hyb.block_count("M") == 24 and hyb.block_count("E") == 24 and hyb.block_count("A") == 4
    assert load_model("95bt-8ba").total_params == pytest.approx(94.4e9, rel=0.01)
    ns = load_model("nemotron-3-super")
    assert ns.total_params == pytest.approx(120e9, rel=0.02) and ns.num_layers == 88


def test_kv_bytes_per_token():
    assert load_model("kimi-k2-1t").kv_bytes_per_token == 61 * 576 * 2  # MLA latent, BF16
    assert load_model("kimi-k2-1.35t").kv_bytes_per_token == 92_160
    assert load_model("qwen3-235b-a22b").kv_bytes_per_token == 94 * 2 * 4 * 128 * 2  # GQA K and V
    ns = load_model("nemotron-3-super")
    assert ns.kv_bytes_per_token == 8 * 2 * 2 * 128 * 2
    # Mamba-2: heads*head_dim*state + conv window (d_inner + 2 groups state) * (kernel - 1), per M block
    assert ns.state_bytes_per_seq == 40 * (128 * 64 * 128 + (8192 + 2 * 8 * 128) * 3) * 2


def test_hf_import_roundtrip(tmp_path):
    cfg = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "kimi_k2", "hidden_size": 7168, "vocab_size": 163840,
           "num_hidden_layers": 61, "first_k_dense_replace": 1, "moe_layer_freq": 1, "intermediate_size": 18432,
           "moe_intermediate_size": 2048, "n_routed_experts": 384, "num_experts_per_tok": 8, "n_shared_experts": 1,
           "num_attention_heads": 64, "num_key_value_heads": 64, "q_lora_rank": 1536, "kv_lora_rank": 512,
           "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "topk_method": "noaux_tc",
           "tie_word_embeddings": False, "quantization_config": {"quant_method": "fp8", "fmt": "e4m3"}}
    path = tmp_path / "Kimi-K2" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(cfg))
    spec = spec_from_hf_config(path)
    k = load_model("kimi-k2-1t")
    assert spec.total_params == k.total_params and spec.active_params == k.active_params
    assert spec.precision.weights == "fp8"
    # import -> catalog entry -> load: the same model
    out = tmp_path / "kimi-imported.yaml"
    assert main(["models", "import", str(path), "--write", str(out), "--json"]) == 0
    again = load_model(str(out))
    assert (again.layers, again.attention, again.moe, again.precision) == (spec.layers, spec.attention, spec.moe, spec.precision)


@pytest.mark.parametrize("name", ["nemotron-3-super", "kimi-k2-1t-latentmoe", "hybrid-73bt-8ba"])
def test_entry_roundtrip(tmp_path, name):
    from latentmoe_sim.models.catalog import write_entry

    spec = load_model(name)
    again = load_model(str(write_entry(spec, tmp_path / f"{name}.yaml")))
    assert again == spec and again.total_params == spec.total_params


def test_hf_import_qwen3_moe_and_nemotron(tmp_path):
    q = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 4096, "vocab_size": 151936,
         "num_hidden_layers": 94, "num_attention_heads": 64, "num_key_value_heads": 4, "head_dim": 128,
         "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 1536, "intermediate_size": 12288,
         "decoder_sparse_step": 1, "mlp_only_layers": []}
    (tmp_path / "q.json").write_text(json.dumps(q))
    assert spec_from_hf_config(tmp_path / "q.json").total_params == load_model("qwen3-235b-a22b").total_params
    ns = load_model("nemotron-3-super")
    n = {"model_type": "nemotron_h", "hidden_size": 4096, "vocab_size": 131072, "num_attention_heads": 32,
         "num_key_value_heads": 2, "head_dim": 128, "hybrid_override_pattern": "MEMEMEM*EMEMEMEM*EMEMEMEM*EMEMEMEMEM*EMEMEMEMEM*EMEMEMEMEM*EMEMEMEMEM*EMEMEMEM*EMEMEMEME",
         "n_routed_experts": 512, "num_experts_per_tok": 22, "moe_intermediate_size": 2688, "n_shared_experts": 1,
         "moe_shared_expert_intermediate_size": 5376, "moe_latent_size": 1024, "mlp_hidden_act": "relu2",
         "mamba_num_heads": 128, "mamba_head_dim": 64, "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4}
    (tmp_path / "n.json").write_text(json.dumps(n))
    assert spec_from_hf_config(tmp_path / "n.json").total_params == ns.total_params


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="known: "):
        load_model("gpt-5")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nhidden_size: [1,\n")
    with pytest.raises(InputError, match=r"bad.yaml:\d+: malformed YAML"):
        load_model(str(bad))
    neg = tmp_path / "neg.yaml"
    neg.write_text("name: x\nhidden_size: -5\nvocab_size: 10\nlayers: [[AD, 1]]\ndense_ffn: 4\n")
    with pytest.raises(InputError, match="hidden_size"):
        load_model(str(neg))
    unk = tmp_path / "unk.json"
    unk.write_text(json.dumps({"model_type": "llama", "hidden_size": 8, "vocab_size": 8}))
    with pytest.raises(InputError, match="model_type"):
        spec_from_hf_config(unk)


def test_cli_models(capsys):
    assert main(["models", "list"]) == 0
    assert "kimi-k2-1t-latentmoe" in capsys.readouterr().out
    assert main(["models", "show", "kimi-k2-1.35t", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"name", "total_params", "active_params", "num_layers", "kv_bytes_per_token"} <= set(out)
    assert out["num_layers"] == 80
    assert main(["models", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err

"""Attention-DP memory: which of embedding, LM head, shared experts and dense FFN are sharded over the DP
group, per framework default, with hand values (docs/MODELING.md §3a)."""

import pytest

from latentmoe_sim.cost import CostModel, RankLoad
from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.memory import plan_memory, weight_bytes_per_gpu
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import DEFAULT_DP_SHARDED, FRAMEWORK_DP_SHARDED, ParallelPlan

GIB = 2.0**30
# Kimi-K2 per tensor (FP8 linear layers, BF16 embeddings): V h 2 B each for embedding and LM head,
# 60 MoE layers x 3 h m_s 1 B shared experts, 1 dense layer x 3 h I 1 B
EMB = LM_HEAD = 163840 * 7168 * 2  # 2,348,810,240 B
SHARED = 60 * 3 * 7168 * 2048  # 2,642,411,520 B
DENSE = 3 * 7168 * 18432  # 396,361,728 B


def plan(sharded, dp=8):
    return ParallelPlan(tp=1, dp=dp, ep=dp, dp_sharded=frozenset(sharded))


def test_replicated_over_dp_costs_7_2_gib():
    """Issue 10: replicating the four classes on every rank of H200 DP8 costs 7.2 GiB per GPU."""
    w = weight_bytes_per_gpu(load_model("kimi-k2-1t"), plan(FRAMEWORK_DP_SHARDED["trtllm"]))
    total = w["embedding_lm_head"] + w["shared_experts"] + w["dense_ffn"]
    assert total == EMB + LM_HEAD + SHARED + DENSE == 7_736_393_728
    assert total / GIB == pytest.approx(7.205, abs=0.001)


def test_sglang_default_shards_lm_head_and_dense_over_the_group():
    """SGLang's defaults under --enable-dp-attention: LM head vocab-parallel and dense MLP over all 8 GPUs,
    embedding and (with DeepEP) shared experts replicated: 7/8 of LM head + dense saved, 2.40 GB."""
    assert DEFAULT_DP_SHARDED == FRAMEWORK_DP_SHARDED["sglang"] == {"lm_head", "dense_ffn"}
    k = load_model("kimi-k2-1t")
    w = weight_bytes_per_gpu(k, plan(DEFAULT_DP_SHARDED))
    assert w["embedding_lm_head"] == EMB + LM_HEAD / 8
    assert w["dense_ffn"] == DENSE / 8
    assert w["shared_experts"] == SHARED
    everything = weight_bytes_per_gpu(k, plan({"embedding", "lm_head", "shared_experts", "dense_ffn"}))
    assert everything["embedding_lm_head"] + everything["shared_experts"] + everything["dense_ffn"] == \
        pytest.approx((EMB + LM_HEAD + SHARED + DENSE) / 8, rel=1e-12)


def test_kv_capacity_follows_the_sharding():
    """Sharding frees exactly the weight bytes it removes for the KV cache (70,272 B per token)."""
    k, hw = load_model("kimi-k2-1t"), load_hw("h200_sxm")
    rep = plan_memory(k, hw, plan(()), max_batch_tokens=2048)
    shd = plan_memory(k, hw, plan(("lm_head", "dense_ffn")), max_batch_tokens=2048)
    assert rep.weight_bytes - shd.weight_bytes == pytest.approx(7 / 8 * (LM_HEAD + DENSE), rel=1e-12)
    assert shd.kv_bytes - rep.kv_bytes == pytest.approx(7 / 8 * (LM_HEAD + DENSE), rel=1e-12)


def test_group_sharded_lm_head_cost():
    """A group-sharded LM head reads 1/8 of the weights and computes V/8 logits for the 8 ranks' tokens (the
    same FLOPs per GPU as a replicated head for its own rank), then all-gathers hidden states and logits:
    7/8 of 8 x 16 x (7168 + 163840) BF16 per GPU over NVLink."""
    k, hw = load_model("kimi-k2-1t"), load_hw("h200_sxm")
    load = RankLoad(0, 0.0, 0, 16, 16 * 1000)
    rep = {o.name: o for o in CostModel(k, hw, plan(())).rank_breakdown(load)}
    shd = {o.name: o for o in CostModel(k, hw, plan(("lm_head",))).rank_breakdown(load)}
    assert rep["lm_head"].flops == shd["lm_head"].flops == 2 * 16 * 7168 * 163840
    assert rep["lm_head"].mem_bytes == LM_HEAD + 16 * (7168 + 163840) * 2
    assert shd["lm_head"].mem_bytes == LM_HEAD / 8 + 8 * 16 * (7168 + 163840 / 8) * 2
    assert shd["lm_head.dp_gather"].comm_bytes == pytest.approx(7 / 8 * 8 * 16 * (7168 + 163840) * 2, rel=1e-12)
    assert "lm_head.dp_gather" not in rep


def test_bad_dp_sharded_class():
    with pytest.raises(InputError, match="dp_sharded"):
        ParallelPlan(tp=1, dp=8, ep=8, dp_sharded=frozenset({"router"})).validate(384)

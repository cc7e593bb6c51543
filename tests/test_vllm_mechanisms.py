"""Mechanisms behind the vLLM validation rows, each against a hand calculation:

* the expert-TP all-reduce of pure MoE tensor parallelism reduces tokens x width once (not one row per
  (token, expert) pair), and carries the shared experts' partial sums (one all-reduce per MoE layer);
* the MLA decode-module overhead (``Conventions.mla_decode_overhead_us``): GPU time per MLA layer per step
  with decodes, and the per-(framework, GPU) values validation applies;
* the W4A16 (weight-only INT4) grouped-GEMM efficiencies of the routed experts (``HwProfile.w4a16_*``).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from latentmoe_sim.cost import CompiledStepCost, CostModel, RankLoad
from latentmoe_sim.cost.conventions import MLA_DECODE_OVERHEAD_US, Conventions
from latentmoe_sim.cost.ops import moe_group_ops, rank_ops
from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan
from latentmoe_sim.validation.configure import configure
from latentmoe_sim.validation.rows import read_measured
from latentmoe_sim.validation.validate import DEFAULT_FILE

KIMI_INT4 = dict(expert_weights="int4", activations="bf16", attention_weights="bf16", dense_weights="bf16")


def _op(ops, name):
    found = [o for o in ops if o.name == name]
    return found[0] if found else None


def test_pure_moe_tp_all_reduces_tokens_once_with_the_shared_experts():
    model, hw = load_model("kimi-k2-1t"), load_hw("h200_sxm")
    tp8 = ParallelPlan(tp=8, dp=1, ep=1)
    # 64 tokens x 7168 x 2 B, ring over 8 GPUs: 2 x 7/8 of it per GPU = 1,605,632 B per layer (top-8 does not
    # multiply it: each GPU sums its experts' outputs per token before the all-reduce)
    ar = _op(moe_group_ops(model, tp8, hw, 64, 64), "moe.expert_tp_allreduce")
    assert ar.nvlink_bytes == pytest.approx(2 * 7 / 8 * 64 * 7168 * 2) and ar.count == 60
    # ... and the shared experts have no all-reduce of their own (same TP group, same width)
    names = {o.name for o in rank_ops(model, tp8, hw)}
    assert "moe.shared_experts" in names and "moe.tp_allreduce" not in names
    # with EP the slot's GPUs reduce each received copy (per pair) before the combine: the busiest slot's pairs P
    # (read back from its expert FLOPs, 2 P x 3 matrices x 7168 x 2048 / MoE-TP2), P rows of 7168 over MoE-TP2
    ep4 = ParallelPlan(tp=8, dp=1, ep=4)
    group = moe_group_ops(model, ep4, hw, 64, 64)
    pairs = _op(group, "moe.routed_experts").flops / (2 * 3 * 7168 * 2048 / 2)
    assert pairs >= 64 * 8 / 4  # at least the mean slot's
    assert _op(group, "moe.expert_tp_allreduce").nvlink_bytes == pytest.approx(2 * 1 / 2 * pairs * 7168 * 2)
    assert "moe.tp_allreduce" in {o.name for o in rank_ops(model, ep4, hw)}  # shared experts reduce over TP8 alone
    # LatentMoE reduces its routed output at the latent width: the shared experts keep their own all-reduce
    latent = load_model("kimi-k2-1t-latentmoe")
    assert "moe.tp_allreduce" in {o.name for o in rank_ops(latent, tp8, hw)}


def test_mla_decode_overhead_is_per_layer_per_step_with_decodes():
    model, hw, plan = load_model("kimi-k2-1t"), load_hw("h200_sxm"), ParallelPlan(tp=8, dp=1, ep=1)
    base = CostModel(model, hw, plan)
    charged = CostModel(model, hw, plan, conventions=Conventions(mla_decode_overhead_us=73.7))
    decode = [RankLoad(0, 0.0, 0, 4, 4 * 8700)]
    # 61 MLA layers x 73.7 us = 4.4957 ms, whatever the batch or context
    assert charged.step_time(decode) - base.step_time(decode) == pytest.approx(61 * 73.7e-6, rel=1e-12)
    big = [RankLoad(0, 0.0, 0, 64, 64 * 30000)]
    assert charged.step_time(big) - base.step_time(big) == pytest.approx(61 * 73.7e-6, rel=1e-12)
    prefill = [RankLoad(4096, 4096 * 2048.5, 4096, 0, 0)]  # no decodes: the decode module does not run
    assert charged.step_time(prefill) == pytest.approx(base.step_time(prefill), rel=1e-12)
    mixed = [RankLoad(1024, 1024 * 512.5, 1024, 8, 8 * 5000)]
    assert CompiledStepCost(charged).step_time(mixed) == pytest.approx(charged.step_time(mixed), rel=1e-12)
    # a GQA model has no MLA layer to charge
    gqa = load_model("hybrid-73bt-8ba")
    assert "attn.mla_decode_overhead" not in {o.name for o in rank_ops(gqa, ParallelPlan(tp=2, dp=1, ep=1), load_hw("h100_sxm"),
                                                                     conventions=Conventions(mla_decode_overhead_us=73.7))}
    for bad in (-1.0, 1e5, float("nan"), "75"):
        with pytest.raises(InputError, match="mla_decode_overhead_us"):
            Conventions(mla_decode_overhead_us=bad)


def test_validation_applies_the_measured_overhead_of_the_rows_framework_and_gpu():
    rows = {r.id: r for r in read_measured(DEFAULT_FILE)}
    kimi = dict(configure(rows["ix_kimik25_8k1k_h200_int4_c4"]).conventions)
    assert kimi["mla_decode_overhead_us"] == MLA_DECODE_OVERHEAD_US["vllm", "h200_sxm"] == 73.7
    assert "mla_decode_overhead_us" not in dict(configure(rows["latentmoe_h100_c4_base"]).conventions)  # GQA + Mamba
    sglang = next(r for r in rows.values() if r.framework == "sglang" and r.hw == "h100_sxm")
    assert "mla_decode_overhead_us" not in dict(configure(sglang).conventions)  # no SGLang module measurement


def test_int4_experts_run_at_the_w4a16_efficiencies_by_hand():
    model = load_model("kimi-k2-1t").with_precision(**KIMI_INT4)
    hw, plan = load_hw("h200_sxm"), ParallelPlan(tp=8, dp=1, ep=1)
    cm = CostModel(model, hw, plan)
    for tokens, bound in ((16, "memory"), (8192, "compute")):
        op = next(o for o in cm.group_breakdown(tokens, tokens) if o.name == "moe.routed_experts")
        per_layer_flops, per_layer_bytes = op.flops / 60, op.mem_bytes / 60
        if bound == "memory":  # bytes / (4.8 TB/s x 0.49) + 3 us
            want = per_layer_bytes / (4.8e12 * 0.49) + 3e-6
        else:  # FLOPs / (989 TFLOP/s BF16 x 0.20) + 3 us
            want = per_layer_flops / (989e12 * 0.20) + 3e-6
        assert op.bound == bound and op.time_s / 60 == pytest.approx(want, rel=1e-9)
    # a profile without W4A16 measurements keeps the general efficiencies (0.72 compute, 0.8 memory)
    plain = replace(hw, w4a16_compute_efficiency=0.0, w4a16_memory_efficiency=0.0)
    op = next(o for o in CostModel(model, plain, plan).group_breakdown(16, 16) if o.name == "moe.routed_experts")
    assert op.time_s / 60 == pytest.approx(op.mem_bytes / 60 / (4.8e12 * 0.8) + 3e-6, rel=1e-9)
    # FP8 experts are not W4A16
    fp8 = load_model("kimi-k2-1t")
    op = next(o for o in CostModel(fp8, hw, plan).group_breakdown(16, 16) if o.name == "moe.routed_experts")
    assert op.time_s / 60 == pytest.approx(op.mem_bytes / 60 / (4.8e12 * 0.8) + 3e-6, rel=1e-9)


def test_vllm_rows_run_the_async_scheduling_step_overhead_and_a_calibration_overrides_it():
    from latentmoe_sim.validation.calibration import Calibration, Layer
    from latentmoe_sim.validation.runner import point_of

    rows = {r.id: r for r in read_measured(DEFAULT_FILE)}
    case = configure(rows["latentmoe_h100_c1_base"])
    assert dict(case.runtime) == {"step_overhead_s": 160e-6}  # vLLM PR #11133: 150-170 us gap with async scheduling
    assert dict(point_of(case).hw_fields) == {"step_overhead_s": 160e-6}
    cal = Calibration(name="t", description="t", method="t", fitted_on=(), held_out=(),
                      layers=(Layer(None, ("vllm",), {"step_overhead_us": 250}),))
    assert dict(point_of(case, hw_fields=cal.hw_fields("h100_sxm", "vllm")).hw_fields) == {"step_overhead_s": pytest.approx(250e-6)}
    sglang = next(r for r in rows.values() if r.framework == "sglang" and r.hw == "h100_sxm")
    assert configure(sglang).runtime == ()  # other frameworks keep the profile's value

"""Per-class weight precision: presets, bytes per class, tensor cores used, labels and the FP4 warning."""

from __future__ import annotations

import json

import pytest

from latentmoe_sim.cli import main
from latentmoe_sim.cost import CostModel, RankLoad
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.memory import weight_bytes_per_gpu
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan
from latentmoe_sim.precision import PRESETS, describe, fp4_warning

DSV3 = load_model("deepseek-v3")
PLAN = ParallelPlan(tp=1, dp=8, ep=8)


def test_fp4_preset_quantises_only_the_routed_experts():
    fp8 = weight_bytes_per_gpu(DSV3, PLAN)
    fp4 = weight_bytes_per_gpu(DSV3.with_precision(**PRESETS["fp4"]), PLAN)
    # routed experts: 58 layers x 256/8 experts x 3 x 7168 x 2048 params x 4.5 bits (NVFP4: FP8 scale per 16)
    assert fp4["routed_experts"] == pytest.approx(58 * 32 * 3 * 7168 * 2048 * 0.5625)
    for cls in ("attention", "dense_ffn", "shared_experts", "embedding_lm_head"):
        assert fp4[cls] == fp8[cls], cls


def test_int4_experts_do_not_touch_attention():
    # Kimi-K2-Thinking style: INT4 routed experts only; the attention weights keep their FP8 bytes
    k = load_model("kimi-k2-1t")
    base = weight_bytes_per_gpu(k, PLAN)
    int4 = weight_bytes_per_gpu(k.with_precision(expert_weights="int4"), PLAN)
    assert int4["attention"] == base["attention"]
    assert int4["routed_experts"] == pytest.approx(base["routed_experts"] * 0.5625)


def test_each_class_runs_on_its_own_tensor_cores():
    m = DSV3.with_precision(**PRESETS["fp4"])
    gb = load_hw("gb200_nvl72")
    cm = CostModel(m, gb, PLAN)
    dtypes = {op.name: op.dtype for op in cm.ops}
    assert dtypes["attn.o_proj"] == "fp8" and dtypes["dense.ffn"] == "fp8" and dtypes["lm_head"] == "bf16"
    experts = next(o for o in cm.group_breakdown(8 * 4096, 4096) if o.name == "moe.routed_experts")
    # a compute-bound prefill step: the experts' time is FLOPs at the FP4 peak (x efficiency) + latency, per layer
    per_layer = experts.flops / experts.count / (gb.peak_flops["fp4"] * gb.compute_efficiency) + gb.mem_op_latency_s
    assert experts.time_s / experts.count == pytest.approx(per_layer)


def test_labels_say_what_ran():
    m = DSV3.with_precision(**PRESETS["fp4"])
    assert describe(m.precision, load_hw("gb200_nvl72")) == "experts FP4, attention/dense FP8, embedding BF16"
    h200 = load_hw("h200_sxm")
    assert describe(m.precision, h200).startswith("experts FP4 weights dequantised to FP8 (FP8 peak)")
    assert "no FP4 tensor cores" in fp4_warning(m.precision, h200)
    assert fp4_warning(m.precision, load_hw("gb200_nvl72")) is None
    assert "INT4 weight-only, BF16 math" in describe(DSV3.with_precision(expert_weights="int4", activations="bf16").precision, h200)


def test_cli_warns_once_and_labels(capsys):
    rc = main(["cost", "--model", "deepseek-v3", "--hw", "h200_sxm", "--dp", "8", "--precision", "fp4",
               "--decode-seqs", "16", "--kv-len", "1000", "--json"])
    out = capsys.readouterr()
    assert rc == 0
    assert out.err.count("warning:") == 1
    assert json.loads(out.out)["precision"].startswith("experts FP4 weights dequantised to FP8")

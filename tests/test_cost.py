"""Cost model: hand calculations, the LatentMoE paper's Section 2, compiled == op-by-op, exact stretches."""

import json
import random

import pytest

from latentmoe_sim.cli import main
from latentmoe_sim.cost import CompiledStepCost, CostModel, RankLoad, build_instance_cost, chunk_load
from latentmoe_sim.cost.analysis import alltoall_to_compute_ratio, expert_compute_bound_tokens, peak_only, ridge_point
from latentmoe_sim.cost.ops import expected_experts_touched, moe_group_ops
from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models import load_model, to_latentmoe
from latentmoe_sim.parallel import ParallelPlan

GB200 = load_hw("gb200_nvl72")


def fp4(model):
    return model.with_precision(weights="fp4", activations="fp4", dispatch="fp4", combine="bf16")


# ---- the paper's Section 2, from the catalog and the profiles ---------------------------------------
def test_ridge_point_gb200_fp4():
    assert ridge_point(GB200, "fp4") == pytest.approx(1250.0)


def test_compute_bound_tokens_per_expert():
    """Qwen3-235B-A22B (d 4096, m 1536) on GB200 FP4: t_exp >= 1418 (paper §2)."""
    t = expert_compute_bound_tokens(load_model("qwen3-235b-a22b"), GB200, "fp4")
    assert 1418 <= t < 1419


def test_alltoall_compute_ratio_about_nine():
    """Paper §2: t_comm / t_comp = 5F / (4 m BW_NVL) ~ 9 at EP = 64 over 900 GB/s, FP4 dispatch + BF16
    combine, counting one d x m GEMM per pair. Our ops keep 1/EP of the pairs on the GPU (63/64) and store
    NVFP4 with its FP8 scale per 16 values (0.5625 B/element, the paper uses 0.5)."""
    q = fp4(load_model("qwen3-235b-a22b"))
    closed_form = 5 * GB200.flops("fp4") / (4 * q.moe.expert_ffn * GB200.nvlink_bandwidth_bytes_per_s)
    assert closed_form == pytest.approx(9.04, abs=0.01)
    per_matrix = alltoall_to_compute_ratio(q, GB200, 64, "fp4", per_matrix=True)
    assert per_matrix == pytest.approx(closed_form * 63 / 64 * (0.5625 + 2) / (0.5 + 2), rel=1e-9)
    assert 8.5 < per_matrix < 9.5
    # a SwiGLU expert has three matrices: the whole-expert ratio is a third of that
    assert alltoall_to_compute_ratio(q, GB200, 64, "fp4") == pytest.approx(per_matrix / 3, rel=1e-9)


@pytest.mark.parametrize("base_name", ["qwen3-235b-a22b", "kimi-k2-1t"])
def test_table1_latentmoe_costs(base_name):
    """Paper Table 1, with a batch so small that no two (token, expert) pairs share an expert: l-MoE_acc
    moves the same all-to-all bytes and loads the same expert-weight bytes per GPU as the standard MoE;
    l-MoE_eff a quarter of each."""
    base = fp4(load_model(base_name))
    ideal = peak_only(GB200)
    plan = ParallelPlan(tp=1, dp=64, ep=64)

    def costs(m):
        ops = {g.name: g for g in moe_group_ops(m, plan, ideal, total_tokens=1, max_rank_tokens=1)}
        a2a = ops["moe.dispatch"].nvlink_bytes + ops["moe.combine"].nvlink_bytes
        touched = expected_experts_touched(m.moe.num_experts, m.moe.top_k, 1) / plan.ep
        return a2a, touched * m.moe.expert_params(m.hidden_size)

    std, acc, eff = costs(base), costs(to_latentmoe(base, 4, "acc")), costs(to_latentmoe(base, 4, "eff"))
    assert acc[0] == pytest.approx(std[0]) and acc[1] == pytest.approx(std[1])
    assert eff[0] == pytest.approx(std[0] / 4) and eff[1] == pytest.approx(std[1] / 4)


def test_expected_experts_touched():
    assert expected_experts_touched(384, 8, 1) == pytest.approx(8)
    assert expected_experts_touched(384, 8, 0) == 0
    assert expected_experts_touched(384, 8, 2) == pytest.approx(384 * (1 - (1 - 8 / 384) ** 2))
    assert expected_experts_touched(384, 8, 10**6) == pytest.approx(384)


# ---- hand calculations --------------------------------------------------------------------------------
def test_op_hand_calculation_kimi_decode():
    k = load_model("kimi-k2-1t")
    hw = load_hw("h200_sxm")
    cm = CostModel(k, hw, ParallelPlan(tp=1, dp=8, ep=8))
    ops = {o.name: o for o in cm.rank_breakdown(RankLoad(0, 0.0, 0, 16, 16 * 1000))}
    # o_proj: 2 * tokens * (64 heads * 128) * 7168 FLOPs, x 61 layers; FP8 weights read once, BF16 activations
    o = ops["attn.o_proj"]
    assert o.flops == 61 * 2 * 16 * 64 * 128 * 7168
    assert o.mem_bytes == 61 * (64 * 128 * 7168 * 1 + 16 * (64 * 128 + 7168) * 2)
    # absorbed MLA decode attention over the latent cache: 2 * H * (576 + 512) FLOPs per attended token
    core = ops["attn.mla_decode_core"]
    assert core.flops == 61 * 2 * 64 * (576 + 512) * 16 * 1000
    assert core.mem_bytes == 61 * (16 * 1000 * 576 * 2 + 16 * 64 * (576 + 512) * 2)
    # a memory-bound op: bytes / (4.8 TB/s * 0.8) + 3 us, per layer
    t = core.mem_bytes / 61 / (hw.hbm_bandwidth_bytes_per_s * hw.memory_efficiency) + hw.mem_op_latency_s
    assert core.time_s == pytest.approx(61 * t)
    assert core.bound == "memory"
    assert "attn.mla_prefill_core" in ops and ops["attn.mla_prefill_core"].time_s == 0  # gated off


def test_prefill_chunk_attends_to_earlier_tokens():
    """A chunk's attention work grows with its offset (it reads all earlier tokens)."""
    k = load_model("kimi-k2-1t")
    cm = CostModel(k, load_hw("h200_sxm"), ParallelPlan(tp=8, ep=8))
    first, later = (cm.step_time([RankLoad(*chunk_load(512, off), 0, 0)]) for off in (0, 8192))
    assert later > first
    assert chunk_load(512, 0)[1] == 512 * 513 / 2  # causal pairs inside one chunk


def test_tp_allreduce_and_latent_ops_present():
    lm = load_model("kimi-k2-1t-latentmoe")
    names = {op.name for op in CostModel(lm, load_hw("h200_sxm"), ParallelPlan(tp=8, ep=8)).ops}
    assert {"attn.tp_allreduce", "moe.latent_down", "moe.latent_up", "moe.shared_experts"} <= names


def test_alltoall_leaves_nvlink_domain():
    k = load_model("kimi-k2-1t")
    hw = load_hw("h200_sxm")
    inside = {g.name: g for g in moe_group_ops(k, ParallelPlan(tp=1, dp=8, ep=8), hw, 800, 100)}
    across = {g.name: g for g in moe_group_ops(k, ParallelPlan(tp=1, dp=16, ep=16), hw, 1600, 100)}
    assert inside["moe.dispatch"].scaleout_bytes == 0
    # 16 contiguous GPUs over domains of 8: 8 of each GPU's 15 peers are in the other domain
    d = across["moe.dispatch"]
    assert d.scaleout_bytes / (d.scaleout_bytes + d.nvlink_bytes) == pytest.approx(8 / 15)


# ---- compiled == op by op; exact stretches --------------------------------------------------------------
CASES = [
    ("kimi-k2-1t", "h200_sxm", ParallelPlan(tp=1, dp=8, ep=8)),
    ("kimi-k2-1t-latentmoe", "gb200_nvl72", ParallelPlan(tp=2, dp=4, ep=8)),
    ("kimi-k2-1.35t", "b200", ParallelPlan(tp=4, dp=4, ep=8, pp=2)),
    ("qwen3-235b-a22b", "h100_sxm", ParallelPlan(tp=4, dp=2, ep=4)),
    ("nemotron-3-super", "h100_sxm", ParallelPlan(tp=2, dp=2, ep=4)),
    ("hybrid-73bt-8ba", "h200_sxm", ParallelPlan(tp=1, dp=1, ep=1)),
]


@pytest.mark.parametrize("model,hw,plan", CASES)
def test_compiled_equals_op_by_op(model, hw, plan):
    cm = CostModel(load_model(model), load_hw(hw), plan, expert_imbalance=1.1)
    cs = CompiledStepCost(cm)
    rng = random.Random(7)
    for _ in range(30):
        loads = []
        for _ in range(plan.dp):
            chunk, off = rng.choice([0, 0, 64, 512, 2048]), rng.randrange(0, 8000)
            p, pairs, ctx = chunk_load(chunk, off) if chunk else (0, 0.0, 0)
            d = rng.choice([0, 1, 7, 64])
            loads.append(RankLoad(p, pairs, ctx, d, d * rng.randrange(1, 9000)))
        if sum(l[0] + l[3] for l in loads) == 0:
            continue
        ref = cm.breakdown(loads)
        assert cs.step_time(loads) == pytest.approx(ref["step_time_s"], rel=1e-12)
        assert ref["step_time_s"] == pytest.approx(
            ref["overhead_s"] + sum(o.time_s for o in ref["ops"]), rel=1e-12)


@pytest.mark.parametrize("model,hw,plan", CASES)
def test_decode_stretch_equals_step_by_step(model, hw, plan):
    cs = CompiledStepCost(CostModel(load_model(model), load_hw(hw), plan))
    rng = random.Random(3)
    d = [rng.choice([1, 5, 32]) for _ in range(plan.dp)]
    kv = [x * rng.randrange(100, 20000) for x in d]
    stretch = cs.decode_stretch(d, kv)
    steps = [cs.step_time([RankLoad(0, 0.0, 0, d[r], kv[r] + j * d[r]) for r in range(plan.dp)]) for j in range(400)]
    for n in (0, 1, 17, 400):
        assert stretch.elapsed(n) == pytest.approx(sum(steps[:n]), rel=1e-12, abs=1e-15)
    assert stretch.steps_within(sum(steps[:123]) + 1e-12, 400) == 123


def test_latentmoe_within_few_percent_of_base_and_deeper_model_slower():
    """Sanity of the comparison the project exists for: decode step of 1.35T ~ 80/61 of 1T's; LatentMoE
    a little slower than 1T (the paper: within ~9 % across its frontier; at this one point our extra
    router width, two projection kernels' launch latency and 4x expert intermediates give ~11 %)."""
    hw, plan = load_hw("gb200_nvl72"), ParallelPlan(tp=1, dp=64, ep=64)
    loads = [RankLoad(0, 0.0, 0, 64, 64 * 2048)] * 64
    t = {n: CostModel(fp4(load_model(n)), hw, plan).step_time(loads) for n in ("kimi-k2-1t", "kimi-k2-1t-latentmoe", "kimi-k2-1.35t")}
    assert 1.0 < t["kimi-k2-1t-latentmoe"] / t["kimi-k2-1t"] < 1.15
    assert 1.2 < t["kimi-k2-1.35t"] / t["kimi-k2-1t"] < 80 / 61 + 0.01


# ---- memory and plans ------------------------------------------------------------------------------------
def test_memory_hand_calculation():
    from latentmoe_sim.memory import plan_memory, weight_bytes_per_gpu

    k = load_model("kimi-k2-1t")
    w = weight_bytes_per_gpu(k, ParallelPlan(tp=1, dp=8, ep=8))
    assert w["routed_experts"] == 60 * 48 * 3 * 7168 * 2048 * 1.0  # 384/8 experts per GPU, FP8
    assert w["embedding_lm_head"] == 2 * 163840 * 7168 * 2.0
    hw = load_hw("h200_sxm")
    mem = plan_memory(k, hw, ParallelPlan(tp=8, ep=8))
    assert mem.kv_bytes_per_token == 61 * 576 * 2  # MLA latent is replicated across TP
    assert mem.kv_capacity_tokens == int(mem.kv_bytes // mem.kv_bytes_per_token)
    assert mem.kv_bytes == pytest.approx(hw.hbm_capacity_bytes - mem.weight_bytes - mem.activation_bytes - hw.runtime_reserve_bytes)
    q = plan_memory(load_model("qwen3-235b-a22b"), hw, ParallelPlan(tp=8, ep=8))
    assert q.kv_bytes_per_token == 94 * 2 * 128 * 2  # 4 KV heads over TP 8: one head per GPU


def test_plan_validation_and_does_not_fit():
    k = load_model("kimi-k2-1t")
    hw = load_hw("h200_sxm")
    with pytest.raises(InputError, match="does not divide the 384"):
        ParallelPlan(tp=1, dp=5, ep=5).validate(384, hw)
    with pytest.raises(InputError, match="budget"):
        ParallelPlan(tp=8, dp=4, ep=32).validate(384, hw, max_gpus=16)
    with pytest.raises(InputError, match="NVLink domain"):
        ParallelPlan(tp=16, ep=16).validate(384, hw)
    with pytest.raises(InputError, match="does not fit: weights"):
        build_instance_cost(load_model("kimi-k2-1.35t"), hw, ParallelPlan(tp=1, dp=8, ep=8))
    inst = build_instance_cost(k, hw, ParallelPlan(tp=1, dp=16, ep=16))
    assert inst.num_gpus == 16 and inst.dp == 16 and inst.kv_capacity_tokens > 100_000


def test_cli_cost_json(capsys):
    args = ["cost", "--model", "kimi-k2-1t", "--hw", "h200_sxm", "--dp", "8", "--decode-seqs", "16", "--kv-len", "2048",
            "--prefill-tokens", "512", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step_time_s"] > 0 and out["compiled_step_time_s"] == pytest.approx(out["step_time_s"])
    assert {"name", "flops", "bytes", "comm_bytes", "time_s", "bound"} <= set(out["ops"][0])
    assert main(["cost", "--decode-seqs", "-1"]) == 2
    assert main(["cost", "--hw", "h300", "--decode-seqs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("lmsim: error:") for line in err)

"""Cost model: hand calculations, the LatentMoE paper's Section 2, compiled == op-by-op, exact stretches."""

import json
import random

import pytest

from latentmoe_sim.cli import main
from latentmoe_sim.cost import CompiledStepCost, CostModel, RankLoad, build_instance_cost, chunk_load
from latentmoe_sim.cost.analysis import alltoall_to_compute_ratio, expert_compute_bound_tokens, peak_only, ridge_point
from latentmoe_sim.cost.conventions import Conventions
from latentmoe_sim.cost.ops import expected_experts_touched, expert_activation_bytes_per_pair, moe_group_ops
from latentmoe_sim.cost.routing import busiest_pairs_ratio
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


def test_table1_latentmoe_costs():
    """Paper Table 1, read from ``moe_group_ops``' bytes (GB200, NVFP4 0.5625 B/element, FP4 dispatch):
    for one token, l-MoE_acc moves the same all-to-all bytes and loads the same expert-weight bytes as the
    standard MoE; l-MoE_eff a quarter of each. Hand values for Kimi-K2 (d 7168, m 2048, K 8 of 384)."""
    base = fp4(load_model("kimi-k2-1t"))
    ideal = peak_only(GB200)
    std, acc, eff = base, to_latentmoe(base, 4, "acc"), to_latentmoe(base, 4, "eff")

    def ops(m, ep):
        plan = ParallelPlan(tp=1, dp=ep, ep=ep)
        return {g.name: g for g in moe_group_ops(m, plan, ideal, total_tokens=1, max_rank_tokens=1)}

    # all-to-all at EP64 (decode: one copy per pair): K * 63/64 copies of d elements at 0.5625 B
    assert ops(std, 64)["moe.dispatch"].nvlink_bytes == 8 * 63 / 64 * 7168 * 0.5625 == 31752.0
    assert ops(acc, 64)["moe.dispatch"].nvlink_bytes == 32 * 63 / 64 * 1792 * 0.5625 == 31752.0
    assert ops(eff, 64)["moe.dispatch"].nvlink_bytes == 31752.0 / 4
    # expert bytes on one GPU (EP1, one token touches exactly K experts): K * (3 d m * 0.5625 weights
    # + fused activations d * 0.5625 in + 2 m * 0.5625 intermediate + d * 2 out)
    w_std, a_std = 8 * 3 * 7168 * 2048 * 0.5625, 8 * (7168 * 0.5625 + 2 * 2048 * 0.5625 + 7168 * 2)
    w_acc, a_acc = 32 * 3 * 1792 * 2048 * 0.5625, 32 * (1792 * 0.5625 + 2 * 2048 * 0.5625 + 1792 * 2)
    assert ops(std, 1)["moe.routed_experts"].mem_bytes == pytest.approx(w_std + a_std, rel=1e-12)
    assert ops(acc, 1)["moe.routed_experts"].mem_bytes == pytest.approx(w_acc + a_acc, rel=1e-12)
    assert w_acc == w_std == 198_180_864
    eff_w = ops(eff, 1)["moe.routed_experts"].mem_bytes - 8 * (1792 * 0.5625 + 2 * 2048 * 0.5625 + 1792 * 2)
    assert eff_w == pytest.approx(w_std / 4, rel=1e-12)


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


def test_mla_prefill_hand_values():
    """Kimi-K2 (64 heads, n 128, r 64, v 128, c 512) at TP1: 2 * 64 * (128 + 64 + 128) = 40,960 FLOPs per
    causal pair per layer; a 512-token chunk after 8,192 tokens has 512 * (8192 + 513/2) pairs and
    up-projects 8,704 context latents to 64 * (128 + 128) values each (2 * 512 * 16,384 FLOPs per token)."""
    k = load_model("kimi-k2-1t")
    cm = CostModel(k, load_hw("h200_sxm"), ParallelPlan(tp=1, dp=8, ep=8))
    one_pair = {o.name: o for o in cm.rank_breakdown(RankLoad(1, 1.0, 1, 0, 0))}
    assert one_pair["attn.mla_prefill_core"].flops == 61 * 40_960
    assert chunk_load(512, 8192) == (512, 512 * (8192 + 513 / 2), 8704)
    ops = {o.name: o for o in cm.rank_breakdown(RankLoad(*chunk_load(512, 8192), 0, 0))}
    assert ops["attn.mla_prefill_core"].flops == 61 * 40_960 * 4_325_632
    assert ops["attn.mla_prefill_kv_up"].flops == 61 * 2 * 8704 * 512 * 16_384


def test_kv_bytes_kimi_8192_tokens():
    """61 layers x 576 latent values x 2 B = 70,272 B per token: 575.7 MB for 8,192 tokens."""
    k = load_model("kimi-k2-1t")
    assert k.kv_bytes_per_token * 8192 == 575_668_224


def test_latent_and_allreduce_hand_values():
    """Kimi-K2-LatentMoE at TP8, 80 tokens (10 per GPU on the MoE side): W_down is 2 * 10 * 7168 * 1792
    FLOPs per layer (60 MoE layers); the TP all-reduce of 80 x 7168 BF16 moves 2 * 7/8 of it per GPU on a
    ring and (1 + 1/8) of it with NVLS (61 attention + 60 MoE + 1 dense all-reduces)."""
    lm = load_model("kimi-k2-1t-latentmoe")
    hw, plan = load_hw("h200_sxm"), ParallelPlan(tp=8, ep=8)
    load = RankLoad(0, 0.0, 0, 80, 80 * 100)
    ring = {o.name: o for o in CostModel(lm, hw, plan).rank_breakdown(load)}
    assert ring["moe.latent_down"].flops == 60 * 2 * 10 * 7168 * 1792
    assert ring["moe.latent_up"].flops == 60 * 2 * 10 * 1792 * 7168
    assert ring["attn.tp_allreduce"].comm_bytes == 61 * 2 * 7 / 8 * 80 * 7168 * 2
    nvls = {o.name: o for o in CostModel(lm, hw, plan, conventions=Conventions(tp_allreduce="nvls")).rank_breakdown(load)}
    assert nvls["attn.tp_allreduce"].comm_bytes == pytest.approx(61 * (1 + 1 / 8) * 80 * 7168 * 2, rel=1e-12)


def test_dispatch_elements_per_pair_ep8():
    """Decode (per pair) at EP8, 64 tokens over the group (8 per rank): each GPU sends 8 tokens x 8 experts
    x 7/8 remote = 56 copies of 7,168 = 401,408 elements per layer; FP8 with one FP32 scale per 128. The
    busiest receiver gets that times the busiest-rank ratio of 64 uniformly routed tokens (test_cost_routing)."""
    k = load_model("kimi-k2-1t")
    g = {o.name: o for o in moe_group_ops(k, ParallelPlan(tp=1, dp=8, ep=8), load_hw("h200_sxm"), 64, 8)}
    r = busiest_pairs_ratio(384, 8, 8, 64)
    assert 1.1 < r < 1.25
    assert g["moe.dispatch"].nvlink_bytes == pytest.approx(401_408 * (1 + 4 / 128) * r, rel=1e-12)
    assert g["moe.combine"].nvlink_bytes == pytest.approx(401_408 * 2 * r, rel=1e-12)  # BF16 combine
    assert g["moe.dispatch"].count == 60


def test_dispatch_per_rank_latentmoe_moves_less():
    """Prefill (DeepEP normal kernels): one copy per destination rank. At EP8 Kimi-K2 sends 4.620 remote
    copies of 7,168 per token, LatentMoE 6.907 of 1,792: 2.7x fewer bytes (issue 10's table); the busiest
    receiver gets the mean times the busiest-rank ratio of 800 tokens (test_cost_routing)."""
    hw, plan = load_hw("h200_sxm"), ParallelPlan(tp=1, dp=8, ep=8)
    k, lm = load_model("kimi-k2-1t"), load_model("kimi-k2-1t-latentmoe")
    dk = {o.name: o for o in moe_group_ops(k, plan, hw, 800, 100, prefill=True)}["moe.dispatch"]
    dl = {o.name: o for o in moe_group_ops(lm, plan, hw, 800, 100, prefill=True)}["moe.dispatch"]
    rk, rl = busiest_pairs_ratio(384, 8, 8, 800), busiest_pairs_ratio(1536, 32, 8, 800)
    assert dk.nvlink_bytes == pytest.approx(100 * 4.620014 * 7168 * (1 + 4 / 128) * rk, rel=1e-6)
    assert dl.nvlink_bytes == pytest.approx(100 * 6.906884 * 1792 * (1 + 4 / 128) * rl, rel=1e-6)
    assert dk.nvlink_bytes / dl.nvlink_bytes * rl / rk == pytest.approx(2.676, abs=0.001)


def test_dispatch_per_node_across_hgx_nodes():
    """EP16 over two 8-GPU nodes, prefill (DeepEP internode normal kernels): scale-out carries one copy per
    other node hit, 1 - C(192, 8)/C(384, 8) for Kimi-K2; NVLink the hit ranks of each node but the landing
    GPU, 2 x 7 x (1 - C(360, 8)/C(384, 8))."""
    import math

    k = load_model("kimi-k2-1t")
    d = {o.name: o for o in moe_group_ops(k, ParallelPlan(tp=1, dp=16, ep=16), load_hw("h200_sxm"), 1600, 100,
                                          prefill=True)}["moe.dispatch"]
    b = 100 * 7168 * (1 + 4 / 128) * busiest_pairs_ratio(384, 8, 16, 1600)  # the busiest receiver
    assert d.scaleout_bytes == pytest.approx(b * (1 - math.comb(192, 8) / math.comb(384, 8)), rel=1e-12)
    assert d.nvlink_bytes == pytest.approx(b * 2 * 7 * (1 - math.comb(360, 8) / math.comb(384, 8)), rel=1e-12)


@pytest.mark.parametrize("fusion,per_pair", [("fused", 25_952), ("act-kernel", 42_336), ("unfused", 45_056)])
def test_expert_activation_bytes_per_pair(fusion, per_pair):
    """Kimi-K2 FP8 (d 7168, m 2048): fused 7168 * 1.03125 + 2 * 2048 * 1.03125 + 7168 * 2; the activation
    kernel adds BF16 gate+up written and read, 2 * 2 * 2048 * 2; unfused BF16 (2 * 7168 + 4 * 2048) * 2."""
    assert expert_activation_bytes_per_pair(load_model("kimi-k2-1t"), 1, fusion) == per_pair


def test_busiest_rank_sets_expert_weight_bytes():
    """8 tokens over EP8 (Kimi-K2): the busiest rank touches ~1.47x the mean rank's experts (Monte Carlo:
    1.49, tests/test_cost_routing.py); the weight bytes follow the busiest rank."""
    k = load_model("kimi-k2-1t")
    g = {o.name: o for o in moe_group_ops(k, ParallelPlan(tp=1, dp=8, ep=8), load_hw("h200_sxm"), 8, 1)}
    weights = g["moe.routed_experts"].mem_bytes - 8 * 8 / 8 * 25_952
    mean_rank = 384 * (1 - (1 - 8 / 384) ** 8) / 8 * 3 * 7168 * 2048
    assert weights / mean_rank == pytest.approx(1.49, rel=0.025)


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


def test_latentmoe_routed_experts_equal_compute_at_prefill():
    """Paper Table 1 at a prefill batch (GB200 FP4, DP16, 8,192 tokens per rank): l-MoE_acc has 4x the pairs
    at a quarter of the width, so its routed-expert FLOPs equal Kimi-K2's, both are compute-bound and take
    the same time; the 1.35T model (80 layers, 79 MoE) takes 79/60 of it. The busiest rank's pairs are the
    mean times the statistical busiest-rank ratio (test_cost_routing), 0.3% for Kimi-K2's 8 of 384 experts
    over 131,072 tokens and less for LatentMoE's 32 of 1,536, so the times agree within 0.5%."""
    hw, plan = load_hw("gb200_nvl72"), ParallelPlan(tp=1, dp=16, ep=16)
    loads = [RankLoad(*chunk_load(8192, 0), 0, 0)] * 16
    ex = {}
    for n in ("kimi-k2-1t", "kimi-k2-1t-latentmoe", "kimi-k2-1.35t"):
        ops = {o.name: o for o in CostModel(fp4(load_model(n)), hw, plan).breakdown(loads)["ops"]}
        ex[n] = ops["moe.routed_experts"]
    mean = 60 * 2 * 8192 * 8 * 3 * 7168 * 2048
    assert ex["kimi-k2-1t"].flops == pytest.approx(mean * busiest_pairs_ratio(384, 8, 16, 8192 * 16), rel=1e-12)
    assert ex["kimi-k2-1t-latentmoe"].flops == pytest.approx(mean * busiest_pairs_ratio(1536, 32, 16, 8192 * 16), rel=1e-12)
    assert ex["kimi-k2-1t"].bound == ex["kimi-k2-1t-latentmoe"].bound == "compute"
    assert ex["kimi-k2-1t-latentmoe"].time_s == pytest.approx(ex["kimi-k2-1t"].time_s, rel=5e-3)
    assert ex["kimi-k2-1.35t"].time_s == pytest.approx(ex["kimi-k2-1t"].time_s * 79 / 60, rel=5e-3)


# ---- memory and plans ------------------------------------------------------------------------------------
def test_memory_hand_calculation():
    from latentmoe_sim.memory import plan_memory, weight_bytes_per_gpu

    k = load_model("kimi-k2-1t")
    w = weight_bytes_per_gpu(k, ParallelPlan(tp=1, dp=8, ep=8, dp_sharded=frozenset()))
    assert w["routed_experts"] == 60 * 48 * 3 * 7168 * 2048 * 1.0  # 384/8 experts per GPU, FP8
    assert w["embedding_lm_head"] == 2 * 163840 * 7168 * 2.0  # both replicated over DP (TensorRT-LLM)
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


# ---- pipeline parallelism: micro-batches in flight ------------------------------------------------------
def test_pipeline_micro_batches_are_virtual_instances():
    """A PP2 instance serves 2 micro-batches: 2 virtual instances, each with the full-model step cost, half
    the GPUs and half of each rank's KV."""
    from latentmoe_sim.cost.pipeline import pipeline_micro_batches

    inst = build_instance_cost(load_model("kimi-k2-1.35t"), load_hw("h200_sxm"), ParallelPlan(tp=1, dp=8, ep=8, pp=2))
    virtual, copies = pipeline_micro_batches(inst, 2)
    assert copies == 2 and virtual.num_gpus == 8 and virtual.dp == 8
    assert virtual.kv_capacity_tokens == inst.kv_capacity_tokens // 2
    assert virtual.step_cost is inst.step_cost
    assert pipeline_micro_batches(inst, 1) == (inst, 1)


def test_pipeline_micro_batches_double_decode_throughput():
    """Closed form, step = 10 ms + 1 ms per token: 4 one-token prompts with 10 output tokens on a PP2
    instance run as 2 micro-batches of 2 requests (12 ms per traversal, all done at 10 x 12 ms) instead of
    one batch of 4 (10 x 14 ms)."""
    from latentmoe_sim.cost.base import InstanceCost, LinearStepCost
    from latentmoe_sim.cost.pipeline import pipeline_micro_batches
    from latentmoe_sim.engine import simulate_aggregated
    from latentmoe_sim.workloads import RequestSpecs
    import numpy as np

    inst = InstanceCost(LinearStepCost(0.010, 0.001, 0.0), dp=1, num_gpus=4, kv_capacity_tokens=10_000)
    specs = RequestSpecs(np.zeros(4), np.ones(4, np.int64), np.full(4, 10, np.int64))
    one = simulate_aggregated(inst, 1, specs)
    virtual, copies = pipeline_micro_batches(inst, 2)
    two = simulate_aggregated(virtual, copies, specs)
    assert one.records["finish_s"].to_numpy() == pytest.approx([0.14] * 4)
    assert two.records["finish_s"].to_numpy() == pytest.approx([0.12] * 4)
    assert two.num_gpus == one.num_gpus == 4


# ---- smaller conventions against published figures ---------------------------------------------------------
DEEPEP_LL_US = {16: (118, 195), 32: (155, 273), 64: (173, 314), 128: (192, 369), 256: (194, 360)}


@pytest.mark.parametrize("ep", sorted(DEEPEP_LL_US))
def test_alltoall_against_deepep_low_latency_benchmark(ep):
    """DeepEP's published low-latency kernel latencies (README, legacy V1 notes: H800, CX7 400 Gb/s RDMA,
    128 tokens per rank, hidden 7168, top-8, FP8 dispatch, BF16 combine) against our per-pair dispatch and
    combine with DeepSeek-V3 on an H800-like profile (NVLink 200 GB/s, 50 GB/s per NIC, 0.8 efficiency):
    within 15 % at EP16-256, where the latency is the bandwidth term, not the fixed 10 us."""
    from dataclasses import replace

    from latentmoe_sim.cost.roofline import Roofline

    h800 = replace(load_hw("h200_sxm"), nvlink_bandwidth_bytes_per_s=200e9, scaleout_bandwidth_bytes_per_s=50e9)
    g = {o.name: o for o in moe_group_ops(load_model("deepseek-v3"), ParallelPlan(tp=1, dp=ep, ep=ep), h800, 128 * ep, 128)}
    roof = Roofline(h800)
    t = [roof.comm_time(g[n].nvlink_bytes, g[n].scaleout_bytes, g[n].peers)[0] * 1e6 for n in ("moe.dispatch", "moe.combine")]
    dispatch_us, combine_us = DEEPEP_LL_US[ep]
    assert t[0] == pytest.approx(dispatch_us, rel=0.15)
    assert t[1] == pytest.approx(combine_us, rel=0.15)


def test_small_gemm_fixed_latency_against_measured_floor():
    """The per-op fixed latency (3 us, AIConfigurator's mem_empirical_constant_latency) on a memory-bound
    FP8 GEMM of N 7168, K 2048 on H200: 7168 * 2048 B / (4.8 TB/s * 0.8) + 3 us = 6.82 us, under the 8.8 us
    floor AIConfigurator measured for it at M <= 128 (shared/reference/aiconfigurator.md §3.5): charging a
    fixed latency per kernel does not overstate a CUDA-graph decode step's small kernels."""
    from latentmoe_sim.cost.roofline import Roofline

    roof = Roofline(load_hw("h200_sxm"))
    t, bound = roof.compute_time(2 * 16 * 7168 * 2048, 7168 * 2048 + 16 * (7168 + 2048) * 2, "fp8")
    assert bound == "memory"
    assert t == pytest.approx((7168 * 2048 + 16 * 9216 * 2) / (4.8e12 * 0.8) + 3e-6, rel=1e-9)
    assert 6.8e-6 < t < 8.8e-6


def test_convention_flags_reach_the_cost(capsys):
    """--expert-fusion / --dispatch-* / --tp-allreduce select the conventions of `lmsim cost` and of
    build_instance_cost; a bad value is a one-line error, exit 2."""
    base = ["cost", "--model", "kimi-k2-1t", "--hw", "h200_sxm", "--dp", "8", "--decode-seqs", "64", "--kv-len", "1024", "--json"]

    def experts_bytes(extra):
        assert main(base + extra) == 0
        ops = {o["name"]: o for o in json.loads(capsys.readouterr().out)["ops"]}
        return ops["moe.routed_experts"]["bytes"]

    fused, unfused = experts_bytes([]), experts_bytes(["--expert-fusion", "unfused"])
    # 64 x 8 tokens x 8 experts / 8 ranks = 512 pairs per slot on average, times the busiest rank's ratio of
    # 512 uniformly routed tokens; 60 layers: 45,056 - 25,952 B more per pair
    busiest = 512 * busiest_pairs_ratio(384, 8, 8, 512)
    assert unfused - fused == pytest.approx(60 * busiest * (45_056 - 25_952), rel=1e-9)
    assert main(base + ["--dispatch-decode", "per-token"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dispatch-decode" in err[0]
    inst = build_instance_cost(load_model("kimi-k2-1t"), load_hw("h200_sxm"), ParallelPlan(tp=1, dp=16, ep=16),
                               conventions=Conventions(dispatch_decode="per-rank"))
    assert inst.step_cost.cost.conventions.dispatch_decode == "per-rank"

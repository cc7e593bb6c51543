"""Roofline against measured op costs: the tables of docs/KERNELS.md, regenerated.

    python experiments/measured_costs.py            # prints the markdown tables (about 10 s)

1. per op, one Kimi-K2 decode step on 8xH200 (TP8/EP8, 32 decodes at KV 4500: AIConfigurator's
   `estimate` point, ../shared/reference/aiconfigurator.md §5.4), roofline vs measured; then Kimi-K2 and
   Kimi-K2-LatentMoE on GB200 NVL72 (DP16/EP16, FP4, 128 decodes per rank at KV 4096);
2. achieved efficiency of the full-width (Kimi-K2) and latent-width (LatentMoE) GEMMs and grouped expert
   GEMMs, from the bundled AIConfigurator tables (H200, GB200);
3. step times and ratios of the three Kimi-K2 variants, --costs roofline vs measured, at decode 8 and
   128 sequences per rank (KV 4096) and prefill 8,192 tokens per rank, on H200 (DP8/EP8, FP8) and
   GB200 NVL72 (DP16/EP16, FP8 and FP4).
"""

from __future__ import annotations

from latentmoe_sim.cost import CostModel, RankLoad
from latentmoe_sim.cost.measured import Query, load_tables
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan

VARIANTS = ("kimi-k2-1t", "kimi-k2-1t-latentmoe", "kimi-k2-1.35t")
POINTS = (("decode 8/rank", RankLoad(0, 0.0, 0, 8, 8 * 4096)), ("decode 128/rank", RankLoad(0, 0.0, 0, 128, 128 * 4096)),
          ("prefill 8192/rank", RankLoad(8192, 8192 * (8192 + 1) / 2.0, 8192, 0, 0)))
SYSTEMS = (("h200_sxm", ParallelPlan(tp=1, dp=8, ep=8), None), ("gb200_nvl72", ParallelPlan(tp=1, dp=16, ep=16), None),
           ("gb200_nvl72", ParallelPlan(tp=1, dp=16, ep=16), "fp4"))


def _model(name, precision):
    m = load_model(name)
    return m.with_precision(weights=precision, activations=precision, dispatch=precision) if precision else m


def per_op(hw_name="h200_sxm", plan=ParallelPlan(tp=8, dp=1, ep=8), load=RankLoad(0, 0.0, 0, 32, 32 * 4500),
           model="kimi-k2-1t", precision=None):
    hw = load_hw(hw_name)
    loads = [load] * plan.dp
    roof = CostModel(_model(model, precision), hw, plan).breakdown(loads)
    meas = CostModel(_model(model, precision), hw, plan, measured=load_tables(hw)).breakdown(loads)
    print("| op | roofline ms | measured ms | measured / roofline | source |\n|---|---|---|---|---|")
    for r, m in zip(roof["ops"], meas["ops"]):
        print(f"| {r.name} | {r.time_s * 1e3:.3f} | {m.time_s * 1e3:.3f} | {m.time_s / r.time_s:.2f} | {m.source} |")
    print(f"| **step** (incl. {hw.step_overhead_s * 1e3:.1f} ms overhead) | **{roof['step_time_s'] * 1e3:.2f}** | "
          f"**{meas['step_time_s'] * 1e3:.2f}** | {meas['step_time_s'] / roof['step_time_s']:.2f} | |\n")


def widths():
    print("| GPU | dtype | GEMM (N x K) | M=8 | M=64 | M=512 | M=4096 |\n|---|---|---|---|---|---|---|")
    for g in ("h200_sxm", "gb200_nvl72"):
        mt = load_tables(load_hw(g))
        for dt in ("fp8",):
            for label, n, k in (("Kimi o_proj-like 7168 x 7168", 7168, 7168), ("LatentMoE W_down 1792 x 7168", 1792, 7168),
                                ("LatentMoE W_up 7168 x 1792", 7168, 1792)):
                effs = [mt.efficiency(Query("gemm", {"dtype": dt, "m": float(m), "n": float(n), "k": float(k)})) for m in (8, 64, 512, 4096)]
                print(f"| {g} | {dt} | {label} | " + " | ".join(f"{e:.2f}" for e in effs) + " |")
    print()
    print("| GPU | dtype | routed experts (EP 8) | tokens/rank 8 | 128 | 1024 | 8192 |\n|---|---|---|---|---|---|---|")
    for g in ("h200_sxm", "gb200_nvl72"):
        mt = load_tables(load_hw(g))
        for dt in ("fp8",) + (("fp4",) if g.startswith("gb") else ()):
            for label, shape in (("Kimi-K2: 7168 wide, 384 experts, top-8", dict(hidden=7168, num_experts=384, topk=8)),
                                 ("LatentMoE: 1792 wide, 1536 experts, top-32", dict(hidden=1792, num_experts=1536, topk=32))):
                effs = []
                for t in (8, 128, 1024, 8192):
                    q = Query("moe", {"dtype": dt, "distribution": "balanced", "activation": "swiglu", "ffn": 2048.0, "ep": 8.0,
                                      "tokens": float(t * 8), **{k: float(v) for k, v in shape.items()}})
                    effs.append(mt.efficiency(q))
                print(f"| {g} | {dt} | {label} | " + " | ".join("-" if e is None else f"{e:.2f}" for e in effs) + " |")
    print()


def variants():
    print("| system | point | costs | " + " | ".join(VARIANTS) + " | LatentMoE / 1T | 1.35T / 1T |\n|---|---|---|---|---|---|---|---|")
    for g, plan, prec in SYSTEMS:
        hw = load_hw(g)
        tables = load_tables(hw)
        for label, load in POINTS:
            for costs, mt in (("roofline", None), ("measured", tables)):
                t = [CostModel(_model(v, prec), hw, plan, measured=mt).step_time([load] * plan.dp) for v in VARIANTS]
                print(f"| {g} {plan.describe().split(' =')[0]} {prec or 'fp8'} | {label} | {costs} | "
                      + " | ".join(f"{x * 1e3:.2f}" for x in t) + f" | {t[1] / t[0]:.3f} | {t[2] / t[0]:.3f} |")
    print()


if __name__ == "__main__":
    per_op()
    for name in VARIANTS[:2]:
        per_op("gb200_nvl72", ParallelPlan(tp=1, dp=16, ep=16), RankLoad(0, 0.0, 0, 128, 128 * 4096), name, "fp4")
    widths()
    variants()

"""Quickstart: cost one step, simulate one operating point, then a small throughput/interactivity frontier of
the paper's three Kimi-K2 variants (Kimi-K2-1T, Kimi-K2-1T-LatentMoE, Kimi-K2-1.35T).

Setting (docs/MODELING.md; the paper does not state its Figure 7 setting, see shared facts.md §3.1):
GB200 NVL72 at FP4 as NVFP4 checkpoints ship it (routed experts FP4, the rest FP8; the paper's §2 system), 16 GPUs as TP1 x DP16 with EP16, aggregated serving with
chunked-prefill piggybacking, decode-heavy traffic (ISL 1024, OSL lognormal around 8192), closed-loop
concurrency swept. Writes ``frontier.csv``, ``frontier.parquet`` and a self-contained ``frontier.html``.

    python experiments/quickstart.py [--out out/quickstart] [--concurrency 16,64,256,1024]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl

from latentmoe_sim.cost import CostModel, RankLoad, build_instance_cost
from latentmoe_sim.engine import simulate_aggregated
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan
from latentmoe_sim.precision import PRESETS, describe, fp4_warning
from latentmoe_sim.workloads import make_workload

MODELS = ("kimi-k2-1t", "kimi-k2-1t-latentmoe", "kimi-k2-1.35t")
FP4 = PRESETS["fp4"]  # what NVFP4 checkpoints ship: routed experts FP4, the rest as the catalog states


def pareto(df: pl.DataFrame) -> pl.DataFrame:
    """Rows not dominated in (tokens/s/user, tokens/s/GPU), per model."""
    df = df.sort(["model", "tokens_per_s_per_user_p50"], descending=[False, True])
    best = pl.col("output_tokens_per_s_per_gpu").cum_max().shift(1, fill_value=float("-inf")).over("model")
    return df.filter(pl.col("output_tokens_per_s_per_gpu") > best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/quickstart")
    ap.add_argument("--concurrency", default="16,64,256,1024", help="closed-loop concurrencies to sweep")
    ap.add_argument("--hw", default="gb200_nvl72")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hw, plan = load_hw(args.hw), ParallelPlan(tp=1, dp=16, ep=16)
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    ran = describe(load_model(MODELS[0]).with_precision(**FP4).precision, hw)
    warning = fp4_warning(load_model(MODELS[0]).with_precision(**FP4).precision, hw)
    if warning:
        print(warning)
    print(f"1) one decode step, {hw.name} ({ran}), {plan.describe()}, 64 decodes per rank at 4K context:")
    for name in MODELS:
        cm = CostModel(load_model(name).with_precision(**FP4), hw, plan)
        t = cm.step_time([RankLoad(0, 0.0, 0, 64, 64 * 4096)] * plan.dp)
        print(f"   {name:22s} {t * 1e3:7.2f} ms  ({64 * plan.dp / t / plan.num_gpus:7.1f} tokens/s/GPU)")

    rows, points, t_start = [], len(MODELS) * len(concurrencies), time.time()
    print(f"2) {points} simulated operating points (decode-heavy, aggregated):")
    for name in MODELS:
        inst = build_instance_cost(load_model(name).with_precision(**FP4), hw, plan)
        for c in concurrencies:
            work = make_workload("decode-heavy", output_len="lognormal:8192:0.5", concurrency=c,
                                 num_requests=max(400, 3 * c), seed=1)
            res = simulate_aggregated(inst, 1, work.generate())
            s = res.summary()
            rows.append({"model": name, "concurrency": c, **{k: s[k] for k in (
                "output_tokens_per_s_per_gpu", "output_tokens_per_s_per_gpu_ci95", "tokens_per_s_per_user_p50",
                "ttft_p50_s", "tpot_p50_s", "completed_requests", "preemptions", "num_gpus")}})
            done = len(rows)
            eta = (time.time() - t_start) / done * (points - done)
            print(f"   [{done}/{points}] {name:22s} C={c:5d}: {s['output_tokens_per_s_per_gpu']:8.1f} tokens/s/GPU at "
                  f"{s['tokens_per_s_per_user_p50']:6.1f} tokens/s/user  (ETA {eta:4.0f} s)")
    df = pl.DataFrame(rows)
    front = pareto(df)
    df.write_csv(out / "frontier.csv")
    df.write_parquet(out / "frontier.parquet")

    print("3) throughput ratio at equal concurrency (x = LatentMoE / other):")
    wide = df.pivot(on="model", index="concurrency", values="output_tokens_per_s_per_gpu")
    for r in wide.iter_rows(named=True):
        lm = r["kimi-k2-1t-latentmoe"]
        print(f"   C={r['concurrency']:5d}: vs 1.35T {lm / r['kimi-k2-1.35t']:.2f}x, vs 1T {lm / r['kimi-k2-1t']:.2f}x")

    import plotly.express as px

    fig = px.line(front, x="tokens_per_s_per_user_p50", y="output_tokens_per_s_per_gpu", color="model", markers=True,
                  hover_data=["concurrency", "ttft_p50_s", "tpot_p50_s"],
                  labels={"tokens_per_s_per_user_p50": "tokens/s/user (p50)", "output_tokens_per_s_per_gpu": "output tokens/s/GPU"},
                  title=f"Kimi-K2 variants, decode-heavy, {hw.name} ({ran}), {plan.describe()}")
    fig.write_html(out / "frontier.html", include_plotlyjs=True)
    print(f"wrote {out / 'frontier.html'}, frontier.csv and frontier.parquet ({time.time() - t_start:.0f} s)")


if __name__ == "__main__":
    main()

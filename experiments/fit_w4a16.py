"""Fit the W4A16 (weight-only INT4) grouped-GEMM efficiencies of a GPU to measured MoE kernel latencies.

INT4 checkpoints (Kimi-K2.5, Kimi-K2-Thinking: compressed-tensors W4A16, group 32) run their routed experts
through a weight-only INT4 grouped GEMM that dequantises in the kernel and multiplies in BF16 (vLLM's Marlin
MoE). It reaches neither the BF16 GEMM efficiency of the profile (0.72 of peak) nor its HBM efficiency (0.8):
AIConfigurator's measurements of vLLM 0.24.0's ``vllm_compressedtensorswna16marlinmoe`` kernel at the Kimi-K2
expert shape (hidden 7168, FFN 2048, 384 experts, top-8) are 1.3x to 5.5x this cost model's roofline.

This script reads those measurements (aiconfigurator-core 0.12.0, ``systems/data/<gpu>/moe/vllm/0.24.0/
moe_perf.parquet``, balanced routing, every (moe_tp, moe_ep) with moe_tp x moe_ep <= 8 and moe_ep in {1, 8}),
prices each row with the cost model's own ``moe.routed_experts`` op (FLOPs and bytes of the busiest slot), and
fits the two numbers of ``max(FLOPs / (BF16 peak x ce), bytes / (HBM bandwidth x me)) + mem_op_latency`` by a
grid search minimising the mean absolute log error on half of the rows (every other row, sorted by shape and
tokens); it prints the error on the other half, held out, against the error of the profile's general
efficiencies. The two numbers go into ``hwprofiles/<gpu>.yaml`` (``compute.w4a16_compute_efficiency``,
``memory.w4a16_memory_efficiency``) with this script as their source.

Usage: ``pip install 'latentmoe-sim[aic]' && python experiments/fit_w4a16.py [--gpu h200_sxm h100_sxm]``
(a few seconds; needs aiconfigurator-core, or ``--aic-data DIR``).
"""

from __future__ import annotations

import argparse
import math
import statistics

from latentmoe_sim.cost.ops import moe_group_ops
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.kernels.aic_import import aic_data_root
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan

#: AIConfigurator system name -> our profile (the GPUs with a vLLM INT4 MoE table)
GPUS = {"h200_sxm": "h200_sxm", "h100_sxm": "h100_sxm"}
#: grid searched: compute efficiency 0.05-0.59, memory efficiency 0.15-0.89, steps of 0.01
CE_GRID = [x / 100 for x in range(5, 60)]
ME_GRID = [x / 100 for x in range(15, 90)]


def rows(system: str, data_root: str | None):
    """(moe_tp, moe_ep, tokens, flops, bytes, measured seconds) per measured row."""
    import polars as pl

    path = aic_data_root(data_root) / system / "moe" / "vllm" / "0.24.0" / "moe_perf.parquet"
    df = pl.read_parquet(path).filter((pl.col("moe_dtype") == "int4_wo") & (pl.col("distribution") == "balanced")
                                      & (pl.col("hidden_size") == 7168) & (pl.col("inter_size") == 2048)
                                      & (pl.col("num_experts") == 384) & (pl.col("topk") == 8))
    hw = load_hw(GPUS[system])
    model = load_model("kimi-k2-1t").with_precision(expert_weights="int4", activations="bf16", attention_weights="bf16",
                                                     dense_weights="bf16")
    out = []
    for r in df.iter_rows(named=True):
        tp, ep, t = r["moe_tp_size"], r["moe_ep_size"], r["num_tokens"]
        if tp * ep > 8 or ep not in (1, 8):
            continue
        op = next(o for o in moe_group_ops(model, ParallelPlan(tp=tp * ep, dp=1, ep=ep), hw, t, t) if o.name == "moe.routed_experts")
        out.append((tp, ep, t, op.flops, op.mem_bytes, r["latency"] * 1e-3))  # AIConfigurator latency is in ms
    return sorted(out), hw


def mean_log_error(points, hw, ce: float, me: float) -> float:
    peak, bw, lat = hw.flops("bf16"), hw.hbm_bandwidth_bytes_per_s, hw.mem_op_latency_s
    return statistics.mean(abs(math.log((max(f / (peak * ce), b / (bw * me)) + lat) / t)) for *_, f, b, t in points)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", nargs="*", default=list(GPUS), choices=list(GPUS))
    ap.add_argument("--aic-data", help="aiconfigurator_core/systems/data folder (default: the installed package's)")
    args = ap.parse_args()
    for system in args.gpu:
        points, hw = rows(system, args.aic_data)
        fit, held = points[0::2], points[1::2]
        err, ce, me = min((mean_log_error(fit, hw, ce, me), ce, me) for ce in CE_GRID for me in ME_GRID)
        base = mean_log_error(held, hw, hw.compute_efficiency, hw.memory_efficiency)
        print(f"{system}: {len(points)} rows ({len(fit)} fitted, {len(held)} held out): w4a16_compute_efficiency {ce:.2f}, "
              f"w4a16_memory_efficiency {me:.2f}; mean |log error| fitted {err:.3f}, held out "
              f"{mean_log_error(held, hw, ce, me):.3f} (the general efficiencies {hw.compute_efficiency:g}/"
              f"{hw.memory_efficiency:g}: {base:.3f})")


if __name__ == "__main__":
    main()

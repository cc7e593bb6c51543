"""Derive the MLA decode-module overhead per layer (``conventions.MLA_DECODE_OVERHEAD_US``) from measured modules.

A framework's MLA decode module runs more kernels than this cost model's op list names (RMSNorms of the
latent projections, RoPE, the cache write, the split-KV combine, casts), each with its floor under CUDA
graphs. AIConfigurator measures the whole DeepSeek-V3 ``DeepseekV2MLAAttention`` decode module
(aiconfigurator-core 0.12.0, ``systems/data/<gpu>/mla/<framework>/<version>/mla_generation_module_perf.parquet``;
BF16 GEMMs and KV, CUDA graphs). For every measured point with 8, 16 or 32 heads per GPU, batch 1-128 and
context 2-8192 (the faster backend where two were measured), this script subtracts the cost model's roofline
of the same six ops (``attn.mla_qkv_a`` .. ``attn.o_proj`` of Kimi-K2, whose MLA has DeepSeek-V3's dimensions,
at TP 64/heads, per layer) and prints the median and the p10-p90 of the difference per (framework, GPU).

Usage: ``pip install 'latentmoe-sim[aic]' && python experiments/fit_mla_overhead.py [--aic-data DIR]`` (seconds).
"""

from __future__ import annotations

import argparse
import statistics

from latentmoe_sim.cost import CostModel, RankLoad
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.kernels.aic_import import SYSTEMS, aic_data_root
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan

MODULE_OPS = ("attn.mla_qkv_a", "attn.mla_q_b", "attn.mla_absorb_q", "attn.mla_decode_core", "attn.mla_absorb_o", "attn.o_proj")
FRAMEWORKS = {"vllm": "0.24.0", "trtllm": "1.3.0rc20"}


def excess_us(system: str, framework: str, version: str, data_root: str | None) -> list[float] | None:
    import polars as pl

    path = aic_data_root(data_root) / system / "mla" / framework / version / "mla_generation_module_perf.parquet"
    if not path.exists():
        return None
    df = pl.read_parquet(path).filter(
        (pl.col("kv_cache_dtype") == "bfloat16") & (pl.col("gemm_type") == "bfloat16") & pl.col("num_heads").is_in([8, 16, 32])
        & pl.col("batch_size").is_in([1, 2, 4, 8, 16, 32, 64, 128]) & pl.col("step").is_in([2, 128, 1024, 4096, 8192]))
    df = df.group_by(["num_heads", "batch_size", "step"]).agg(pl.col("latency").min())
    hw, model = load_hw(SYSTEMS[system]), load_model("kimi-k2-1t")
    layers = model.block_count("A")
    out = []
    for heads in (8, 16, 32):
        cm = CostModel(model, hw, ParallelPlan(tp=64 // heads, dp=1, ep=1))
        for r in df.filter(pl.col("num_heads") == heads).iter_rows(named=True):
            b, ctx = r["batch_size"], r["step"]
            roof = sum(o.time_s for o in cm.rank_breakdown(RankLoad(0, 0.0, 0, b, b * ctx)) if o.name in MODULE_OPS) / layers
            out.append((r["latency"] * 1e-3 - roof) * 1e6)  # AIConfigurator latency is in ms
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aic-data", help="aiconfigurator_core/systems/data folder (default: the installed package's)")
    args = ap.parse_args()
    for system in SYSTEMS:
        for framework, version in FRAMEWORKS.items():
            xs = excess_us(system, framework, version, args.aic_data)
            if not xs:
                continue
            xs.sort()
            print(f"{framework} {version} {SYSTEMS[system]}: median {statistics.median(xs):.1f} us, p10 {xs[len(xs) // 10]:.1f}, "
                  f"p90 {xs[9 * len(xs) // 10]:.1f} ({len(xs)} points)")


if __name__ == "__main__":
    main()

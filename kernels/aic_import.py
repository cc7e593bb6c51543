"""Convert the subset of AIConfigurator's silicon-measured tables this simulator uses into our format.

AIConfigurator (NVIDIA, Apache-2.0; ``pip install aiconfigurator-core==0.12.0``, the ``aic`` extra) ships
per-kernel latency tables as parquet under ``aiconfigurator_core/systems/data/<system>/<family>/<framework>/
<version>/`` (``../shared/reference/aiconfigurator.md`` §3). This module reads them with polars, never
importing the package itself (its Rust extension is not needed), and writes the tables of
:mod:`latentmoe_sim.cost.measured` (``hwprofiles/measured/<gpu>/<kind>.csv``).

Column semantics that AIConfigurator does not document, as inferred here (docs/KERNELS.md):

* **MoE ``num_tokens``** is the token count entering the MoE layer over the whole EP group, and
  ``latency`` is one GPU's time for its ``num_experts / moe_ep_size`` local experts. Evidence: at fixed
  ``num_tokens`` the Kimi-K2 shape's latency falls ~1/EP (EP1 24.1 ms, EP8 3.68 ms at 16,384 tokens,
  aiconfigurator.md §3.5).
* **NCCL ``message_size``** counts *elements* of ``nccl_dtype``, not bytes. Evidence: on H200 with 8 GPUs
  and the same ``message_size`` (64 Mi), every collective takes 1.84-1.88x longer in ``half`` than in
  ``int8`` (all_gather 0.380 vs 0.202 ms, alltoall 0.404 vs 0.217 ms), as twice the bytes would.
* **Generation MLA ``step``** is the number of cached tokens a decode attends (``isl`` is 1 in every
  row); we store ``context = isl + step``. ``num_heads`` is heads per GPU (``num_heads * tp_size`` is the
  model's 64 or 128 in every row).
* Latency is in milliseconds (bf16 GEMM 4353x65536x51200 = 41.1 ms = 711 TFLOP/s on H200, §3.1).
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
from pathlib import Path

from ..cost.measured import Table, write_table
from ..errors import InputError

#: AIConfigurator system name -> our hardware-profile name (hwprofiles/*.yaml).
SYSTEMS = {"h100_sxm": "h100_sxm", "h200_sxm": "h200_sxm", "b200_sxm": "b200", "b300_sxm": "b300",
           "gb200": "gb200_nvl72", "gb300": "gb300_nvl72"}
#: AIConfigurator GEMM/MoE dtype -> ours. Per-tensor "fp8" is skipped: the catalog's FP8 checkpoints
#: (Kimi-K2, DeepSeek-V3) are block-scaled, AIConfigurator's ``fp8_block``.
DTYPES = {"bfloat16": "bf16", "fp8_block": "fp8", "nvfp4": "fp4"}
KV_DTYPES = {"bfloat16": "bf16", "fp8": "fp8"}
#: GEMM axes kept (AIConfigurator measures 74 m x 22 n x 22 k per dtype; this thinned grid keeps the
#: committed subset a few hundred kB per GPU while bracketing every GEMM of the catalog models).
GEMM_M = (1, 2, 4, 8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 1536, 2048, 3072, 4096, 8192, 16384, 32768)
GEMM_NK = (128, 256, 512, 1024, 1536, 2048, 3072, 4096, 5120, 6144, 7168, 8192, 12288, 16384, 65536)
#: MoE token-to-expert distributions kept: balanced (our cost model's assumption at --expert-imbalance 1)
#: and AIConfigurator's default power law (alpha 1.01).
MOE_DISTRIBUTIONS = ("balanced", "power_law_1.01")
#: MoE token counts kept (AIConfigurator measures 27 from 1 to 16,384; powers of two bracket the rest).
MOE_TOKENS = tuple(2**i for i in range(15))
#: NCCL element sizes, bytes.
NCCL_ELEM_BYTES = {"half": 2, "int8": 1}

LICENSE = ("Apache-2.0. Converted subset of NVIDIA AIConfigurator's measured data "
           "(aiconfigurator-core 0.12.0, SPDX-FileCopyrightText: Copyright (c) 2026 NVIDIA CORPORATION & "
           "AFFILIATES; SPDX-License-Identifier: Apache-2.0); see hwprofiles/measured/NOTICE")


def aic_data_root(explicit: str | None = None) -> Path:
    """``aiconfigurator_core/systems/data`` without importing the package (its ``.so`` is not needed)."""
    if explicit:
        p = Path(explicit)
        if not p.is_dir():
            raise InputError(f"--aic-data {explicit}: not a folder")
        return p
    spec = importlib.util.find_spec("aiconfigurator_core")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("aiconfigurator-core is not installed: pip install 'latentmoe-sim[aic]' "
                         "(aiconfigurator-core==0.12.0), or pass --aic-data DIR")
    return Path(list(spec.submodule_search_locations)[0]) / "systems" / "data"


def _versions(d: Path) -> list[str]:
    return sorted((p.name for p in d.iterdir() if p.is_dir()), key=_vkey) if d.is_dir() else []


def _vkey(v: str):
    import re

    return [int(x) if x.isdigit() else x for x in re.split(r"[.]|(?<=\d)(?=\D)|(?<=\D)(?=\d)", v)]


def _prov(system: str, rel: str, software: str, command: str) -> dict[str, str]:
    return {"gpu": SYSTEMS[system], "source": f"AIConfigurator silicon data, aiconfigurator-core 0.12.0: systems/data/{system}/{rel}",
            "software": software, "date": _dt.date.today().isoformat(), "command": command, "license": LICENSE}


def convert(system: str, framework: str, version: str, out_root: str | Path, *, nccl_version: str | None = None,
            data_root: str | None = None, command: str = "") -> dict[str, int]:
    """Write the converted tables of one (system, framework, version) under ``out_root/<gpu>/``; returns
    rows written per kind. Missing source tables are skipped (a kind is absent, so the roofline stands)."""
    import polars as pl

    if system not in SYSTEMS:
        raise InputError(f"--system {system!r}: allowed {', '.join(SYSTEMS)}")
    root = aic_data_root(data_root) / system
    if not root.is_dir():
        raise InputError(f"--system {system}: no data folder {root}")
    out = Path(out_root) / SYSTEMS[system]
    fwv = f"{framework} {version}"
    written: dict[str, int] = {}

    def table(family: str, name: str, ver: str = version, fw: str = framework):
        p = root / family / fw / ver / name
        return (pl.read_parquet(p), f"{family}/{fw}/{ver}/{name}") if p.exists() else (None, None)

    def ms_to_us(col="latency"):
        return (pl.col(col) * 1000.0).alias("latency_us")

    # GEMM
    df, rel = table("gemm", "gemm_perf.parquet")
    if df is not None:
        df = df.filter(pl.col("gemm_dtype").is_in(list(DTYPES)) & pl.col("m").is_in(GEMM_M) & pl.col("n").is_in(GEMM_NK)
                       & pl.col("k").is_in(GEMM_NK))
        df = df.with_columns(pl.col("gemm_dtype").replace_strict(DTYPES).alias("dtype"), ms_to_us())
        df = df.group_by("dtype", "m", "n", "k").agg(pl.col("latency_us").median()).sort("dtype", "n", "k", "m")
        _write(out / "gemm.csv", "gemm", df, _prov(system, rel, fwv, command))
        written["gemm"] = df.height

    # MoE (moe_tp 1 only: the cost model's expert-TP path keeps the roofline)
    df, rel = table("moe", "moe_perf.parquet")
    if df is not None:
        df = df.filter(pl.col("moe_dtype").is_in(list(DTYPES)) & (pl.col("moe_tp_size") == 1)
                       & pl.col("distribution").is_in(MOE_DISTRIBUTIONS) & pl.col("num_tokens").is_in(MOE_TOKENS))
        df = df.with_columns(
            pl.col("moe_dtype").replace_strict(DTYPES).alias("dtype"),
            pl.when(pl.col("kernel_source").str.contains("nongated")).then(pl.lit("relu2")).otherwise(pl.lit("swiglu")).alias("activation"),
            pl.col("num_tokens").alias("tokens"), pl.col("hidden_size").alias("hidden"), pl.col("inter_size").alias("ffn"),
            pl.col("moe_ep_size").alias("ep"), ms_to_us())
        # several kernels measured for one shape: the framework runs the fastest
        df = df.group_by("dtype", "distribution", "activation", "tokens", "hidden", "ffn", "topk", "num_experts", "ep") \
            .agg(pl.col("latency_us").min()).sort("dtype", "distribution", "hidden", "ffn", "topk", "num_experts", "ep", "tokens")
        _write(out / "moe.csv", "moe", df, _prov(system, rel, fwv, command))
        written["moe"] = df.height

    # MLA decode / prefill attention cores
    df, rel = table("mla", "generation_mla_perf.parquet")
    if df is not None:
        df = df.filter(pl.col("kv_cache_dtype").is_in(list(KV_DTYPES))).with_columns(
            pl.col("kv_cache_dtype").replace_strict(KV_DTYPES).alias("kv_dtype"), pl.col("num_heads").alias("heads"),
            pl.col("batch_size").alias("batch"), (pl.col("isl") + pl.col("step")).alias("context"), ms_to_us())
        df = df.group_by("kv_dtype", "heads", "batch", "context").agg(pl.col("latency_us").median()).sort("kv_dtype", "heads", "batch", "context")
        _write(out / "mla_decode.csv", "mla_decode", df, _prov(system, rel, fwv, command))
        written["mla_decode"] = df.height
    df, rel = table("mla_bmm", "mla_bmm_perf.parquet")
    if df is not None:
        df = df.filter(pl.col("bmm_dtype").is_in(["bfloat16", "fp8"])).with_columns(
            pl.col("bmm_dtype").replace_strict({"bfloat16": "bf16", "fp8": "fp8"}).alias("dtype"),
            pl.col("op_name").replace_strict({"mla_gen_pre": "pre", "mla_gen_post": "post"}).alias("phase"),
            pl.col("num_heads").alias("heads"), pl.col("num_tokens").alias("tokens"), ms_to_us())
        df = df.group_by("dtype", "phase", "heads", "tokens").agg(pl.col("latency_us").min()).sort("dtype", "phase", "heads", "tokens")
        _write(out / "mla_bmm.csv", "mla_bmm", df, _prov(system, rel, fwv, command))
        written["mla_bmm"] = df.height
    df, rel = table("mla", "context_mla_perf.parquet")
    if df is not None:
        df = df.filter((pl.col("mla_dtype") == "bfloat16") & (pl.col("kv_cache_dtype") == "bfloat16")).with_columns(
            pl.lit("bf16").alias("dtype"), pl.col("num_heads").alias("heads"), pl.col("batch_size").alias("batch"), ms_to_us())
        df = df.group_by("dtype", "heads", "batch", "isl").agg(pl.col("latency_us").median()).sort("dtype", "heads", "batch", "isl")
        _write(out / "mla_prefill.csv", "mla_prefill", df, _prov(system, rel, fwv, command))
        written["mla_prefill"] = df.height

    # collectives: NCCL (framework-neutral), newest version unless given
    nv = nccl_version or (_versions(root / "comm" / "nccl") or [None])[-1]
    df, rel = table("comm", "nccl_perf.parquet", nv, "nccl") if nv else (None, None)
    if df is not None:
        df = df.filter(pl.col("nccl_dtype") == "half").with_columns(
            (pl.col("message_size") * NCCL_ELEM_BYTES["half"]).alias("bytes"), pl.col("num_gpus").alias("ranks"),
            pl.lit("bf16").alias("dtype"), pl.lit("nvlink").alias("domain"), ms_to_us())
        # the framework's own one-shot all-reduce (TRT-LLM custom_allreduce; same element semantics, equal to
        # NCCL at large messages) is far faster on small ones: the framework runs whichever is faster
        cv = [v for v in _versions(root / "comm" / framework) if (root / "comm" / framework / v / "custom_allreduce_perf.parquet").exists()]
        cv = version if version in cv else (cv[-1] if cv else None)
        car, crel = table("comm", "custom_allreduce_perf.parquet", cv) if cv else (None, None)
        for op, kind in (("all_reduce", "allreduce"), ("alltoall", "alltoall")):
            sub = df.filter(pl.col("op_name") == op)
            prov = _prov(system, rel, f"nccl {nv}", command)
            if kind == "alltoall":
                sub = sub.drop("dtype")
            elif car is not None:
                car = car.filter(pl.col("allreduce_dtype") == "bfloat16").with_columns(
                    (pl.col("message_size") * 2).alias("bytes"), pl.col("num_gpus").alias("ranks"), pl.lit("bf16").alias("dtype"),
                    pl.lit("nvlink").alias("domain"), ms_to_us())
                cols = ["dtype", "domain", "bytes", "ranks", "latency_us"]
                sub = pl.concat([sub.select(cols), car.select(cols)]).group_by(cols[:-1]).agg(pl.col("latency_us").min())
                prov = _prov(system, f"{rel} and {crel} (faster of the two per message)", f"nccl {nv}; {framework} {cv}", command)
            sub = sub.sort("ranks", "bytes")
            if sub.height:
                _write(out / f"{kind}.csv", kind, sub, prov)
                written[kind] = sub.height
    if not written:
        raise InputError(f"--framework {framework} --version {version}: no tables under {root} "
                         f"(gemm versions: {', '.join(_versions(root / 'gemm' / framework)) or 'none'})")
    return written


def _write(path: Path, kind: str, df, prov: dict) -> None:
    from ..cost.measured import KINDS

    spec = KINDS[kind]
    cols = spec.categorical + spec.numeric + ("latency_us",)
    rows = df.select(cols).to_dicts()
    write_table(path, Table(kind, prov, rows))


__all__ = ["SYSTEMS", "aic_data_root", "convert"]

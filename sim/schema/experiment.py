"""The experiment spec: a YAML file in ``experiments/`` that names a sweep of operating points.

Validated with the strict schema base (:mod:`latentmoe_sim.schema.base`): unknown keys, wrong types and
out-of-range values are one-line errors naming the file, the key and the allowed values. The grid
(:mod:`latentmoe_sim.sweep.grid`) turns a valid spec into operating points; docs/SWEEP.md describes every
key with an example. In short::

    name: quickstart
    hardware: gb200_nvl72            # a profile name or YAML path
    precision: fp4                   # bf16 | fp8 | fp4, or {weights: fp4, activations: fp8, kv_cache: ..., ...}
    models:                          # catalog names, model files, or EPM variants
      - kimi-k2-1t-latentmoe
      - {name: kimi-k2-1.35t, base: kimi-k2-1t, epm: 1.35}
    gpu_budget: 72                   # GPUs of one deployment, all instances together
    max_gpus_per_instance: 16
    seed: 1
    stopping: {ci_target: 0.02, max_requests: 16000}
    compare: [{baseline: kimi-k2-1.35t, target: kimi-k2-1t-latentmoe}]
    traffic:
      - name: decode-heavy
        workload: decode-heavy       # preset; input_len/output_len override it
        mode: agg                    # agg | disagg
        plans: all                   # or a list of {tp, dp, ep, pp}; 'all' searches `search`
        concurrency: [1, 4, 16, 64, 256, 1024]
        sla: {ttft_s: 10}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ..batching import DEFAULT_PREFILL_MAX_BATCH_TOKENS
from .base import StrictModel

Count = Annotated[int, Field(ge=1, le=1_000_000)]
GpuCount = Annotated[int, Field(ge=1, le=4096)]
Dtype = Literal["bf16", "fp16", "fp8", "fp4", "int4", "int8"]


class PrecisionSpec(StrictModel):
    """Per-tensor-class dtypes; an unset one keeps the catalog entry's."""

    weights: Dtype | None = None
    activations: Dtype | None = None
    kv_cache: Dtype | None = None
    dispatch: Dtype | None = None
    combine: Dtype | None = None


class EpmModel(StrictModel):
    """An iso-accuracy variant: ``base`` scaled in depth to ``epm`` x its nominal size (docs/EPM.md)."""

    name: Annotated[str, Field(min_length=1, max_length=120)]
    base: Annotated[str, Field(min_length=1, max_length=400)]
    epm: Annotated[float, Field(gt=1.0, le=10.0)]


class Plan(StrictModel):
    tp: GpuCount = 1
    dp: GpuCount = 1
    ep: GpuCount | None = None
    pp: Annotated[int, Field(ge=1, le=64)] = 1
    #: redundant expert slots (EPLB copies; ep must divide experts + R; sim/parallel.py)
    redundant_experts: Annotated[int, Field(ge=0, le=4096)] = 0


class Search(StrictModel):
    """What ``plans: all`` enumerates: every combination that passes the plan checks, fits the GPU caps
    and fits memory. ``ep: all`` tries every EP size that divides tp*dp and the expert count."""

    tp: list[GpuCount] = [1, 2, 4, 8]
    dp: list[GpuCount] = [1, 2, 4, 8, 16, 32, 64]
    pp: list[Annotated[int, Field(ge=1, le=64)]] = [1]
    ep: Literal["all", "full"] | list[GpuCount] = "full"
    #: ``eplb``: an EP size that does not divide the experts gets the fewest redundant slots that make it
    #: divide (DeepSeek's EPLB, SGLang ``--ep-num-redundant-experts``); ``none``: such plans are skipped
    redundant_experts: Literal["none", "eplb"] = "none"


class Sla(StrictModel):
    ttft_s: Annotated[float, Field(gt=0, le=1e6)] | None = None
    tpot_s: Annotated[float, Field(gt=0, le=1e3)] | None = None


class Stopping(StrictModel):
    ci_target: Annotated[float, Field(gt=0, le=0.5)] = 0.02
    min_measured_per_client: Annotated[float, Field(gt=0, le=100)] = 3.0
    min_requests: Annotated[int, Field(ge=10, le=1_000_000)] = 400
    max_requests: Annotated[int, Field(ge=10, le=1_000_000)] = 64000
    num_requests: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class Scheduler(StrictModel):
    max_batch_tokens: list[Annotated[int, Field(ge=16, le=1_048_576)]] = [2048]
    max_seqs: Annotated[int, Field(ge=1, le=4096)] = 128
    prefill_max_batch_tokens: Annotated[int, Field(ge=16, le=1_048_576)] = DEFAULT_PREFILL_MAX_BATCH_TOKENS
    block_size: Annotated[int, Field(ge=1, le=1024)] = 16


class Traffic(StrictModel):
    """One traffic pattern: a panel of the figure, with its own mode, plans and load grid."""

    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.+-]+$")]
    workload: Literal["decode-heavy", "prefill-heavy"] = "decode-heavy"
    input_len: Annotated[str, Field(max_length=400)] | None = None
    output_len: Annotated[str, Field(max_length=400)] | None = None
    mode: Literal["agg", "disagg"] = "agg"
    plans: Literal["all"] | list[Plan] = "all"
    search: Search = Search()
    instances: list[Annotated[int, Field(ge=1, le=4096)]] = [1]
    prefill_plans: Literal["all"] | list[Plan] = "all"
    decode_plans: Literal["all"] | list[Plan] = "all"
    prefill_instances: list[Annotated[int, Field(ge=1, le=4096)]] = [1]
    decode_instances: list[Annotated[int, Field(ge=1, le=4096)]] = [1]
    #: disagg: keep only pool sizes whose prefill GPUs / decode GPUs lies in [min, max]
    pool_ratio: Annotated[list[Annotated[float, Field(gt=0, le=1e3)]], Field(min_length=2, max_length=2)] | None = None
    concurrency: list[Count] | None = None
    rate: list[Annotated[float, Field(gt=0, le=1e6)]] | None = None
    sla: Sla = Sla()

    @model_validator(mode="after")
    def _one_load_grid(self):
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("traffic needs exactly one of concurrency (closed loop) or rate (open loop), as a list")
        return self


class Comparison(StrictModel):
    baseline: Annotated[str, Field(min_length=1, max_length=120)]
    target: Annotated[str, Field(min_length=1, max_length=120)]


class ExperimentSpec(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.+-]+$")]
    description: Annotated[str, Field(max_length=4000)] = ""
    hardware: Annotated[str, Field(min_length=1, max_length=400)]
    precision: Literal["bf16", "fp8", "fp4"] | PrecisionSpec | None = None
    models: Annotated[list[Annotated[str, Field(min_length=1, max_length=400)] | EpmModel], Field(min_length=1, max_length=64)]
    gpu_budget: GpuCount
    max_gpus_per_instance: GpuCount
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    stopping: Stopping = Stopping()
    scheduler: Scheduler = Scheduler()
    traffic: Annotated[list[Traffic], Field(min_length=1, max_length=16)]
    compare: list[Comparison] = []

    @model_validator(mode="after")
    def _names(self):
        if self.max_gpus_per_instance > self.gpu_budget:
            raise ValueError(f"max_gpus_per_instance = {self.max_gpus_per_instance} must be <= gpu_budget "
                             f"({self.gpu_budget})")
        names = [t.name for t in self.traffic]
        if len(set(names)) != len(names):
            raise ValueError(f"traffic names must be unique, got {names}")
        return self


def load_experiment(path: str) -> ExperimentSpec:
    """Read and validate an experiment spec (one-line :class:`~latentmoe_sim.errors.InputError` if bad)."""
    from . import load_file, validate

    data = load_file(path, what="experiment spec")
    return validate(ExperimentSpec, data, str(path))

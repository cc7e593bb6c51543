"""Operator-level cost model: op descriptions (ops), the roofline (roofline), the op-by-op reference
(model), the compiled per-step cost for the engine (step) and exact decode stretches (stretch)."""

from __future__ import annotations

from ..hw import HwProfile
from ..memory import plan_memory, require_fit
from ..models.spec import ModelSpec
from ..parallel import ParallelPlan
from .measured import resolve_costs
from .base import ConstantStepCost, InstanceCost, LinearStepCost, RankLoad, chunk_load
from .model import CostModel
from .step import CompiledStepCost
from .stretch import DecodeStretch


def build_instance_cost(model: ModelSpec, hw: HwProfile, plan: ParallelPlan, *, max_batch_tokens: int = 2048,
                        max_seqs: int = 128, expert_imbalance: float = 1.0, max_gpus: int | None = None,
                        costs: str = "roofline") -> InstanceCost:
    """Validate the plan, size memory, compile the step cost: everything the engine needs for one instance.
    ``costs``: ``roofline``, ``measured`` or ``auto`` (sim/cost/measured.py, docs/KERNELS.md)."""
    plan.validate(model.moe.num_experts if model.moe else None, hw, max_gpus, model.num_layers)
    mem = require_fit(plan_memory(model, hw, plan, max_batch_tokens=max_batch_tokens, max_seqs=max_seqs), model, hw, plan,
                      min_tokens=max_batch_tokens)
    step = CompiledStepCost(CostModel(model, hw, plan, expert_imbalance=expert_imbalance, measured=resolve_costs(costs, hw)))
    return InstanceCost(
        step_cost=step,
        dp=plan.dp,
        num_gpus=plan.num_gpus,
        kv_capacity_tokens=mem.kv_capacity_tokens,
        kv_bytes_per_token=model.kv_bytes_per_token,
        state_bytes_per_seq=model.state_bytes_per_seq,
        nvlink_bandwidth_bytes_per_s=hw.nvlink_bandwidth_bytes_per_s * hw.comm_efficiency,
        scaleout_bandwidth_bytes_per_s=hw.scaleout_bandwidth_bytes_per_s * hw.comm_efficiency,
        nvlink_latency_s=hw.nvlink_latency_s,
        scaleout_latency_s=hw.scaleout_latency_s,
        nvlink_domain_size=hw.nvlink_domain_size,
    )


__all__ = [
    "CompiledStepCost", "ConstantStepCost", "CostModel", "DecodeStretch", "InstanceCost", "LinearStepCost",
    "RankLoad", "build_instance_cost", "chunk_load",
]

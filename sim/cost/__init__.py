"""Operator-level cost model: op descriptions (ops), the roofline (roofline), the op-by-op reference
(model), the compiled per-step cost for the engine (step; its EP-group part from constants: group) and
exact decode stretches (stretch); serving
options that wrap the step cost: speculative decoding / MTP (spec_decode), two-batch overlap (overlap)."""

from __future__ import annotations

from ..hw import HwProfile
from ..memory import plan_memory, require_fit, seats_by_state
from ..models.spec import ModelSpec
from ..parallel import ParallelPlan
from .measured import MeasuredTables, resolve_costs
from .conventions import DEFAULT_CONVENTIONS, Conventions
from .base import ConstantStepCost, InstanceCost, LinearStepCost, RankLoad, chunk_load
from .model import CostModel
from .overlap import TwoBatchOverlapStepCost, build_tbo_cost
from .spec_decode import SpecDecode, SpecDecodeStepCost, build_spec_decode_cost, draft_model
from .step import CompiledStepCost
from .stretch import DecodeStretch


def build_step_cost(model: ModelSpec, hw: HwProfile, plan: ParallelPlan, *, expert_imbalance: float = 1.0,
                    spec_decode: SpecDecode | None = None, tbo: bool = False, measured: MeasuredTables | None = None,
                    conventions: Conventions = DEFAULT_CONVENTIONS):
    """The engine's step cost of one instance: compiled op by op, optionally with two-batch overlap
    (:mod:`.overlap`) and speculative decoding / MTP (:mod:`.spec_decode`) wrapped around it; ``measured``
    op tables (:mod:`.measured`) or None for the roofline; ``conventions`` (:mod:`.conventions`)."""
    def target(q: int):
        if tbo:
            return build_tbo_cost(model, hw, plan, expert_imbalance=expert_imbalance, decode_query_tokens=q, measured=measured,
                                  conventions=conventions)
        return CompiledStepCost(CostModel(model, hw, plan, expert_imbalance=expert_imbalance, decode_query_tokens=q,
                                          measured=measured, conventions=conventions))

    if spec_decode is None:
        return target(1)
    return build_spec_decode_cost(model, hw, plan, spec_decode, expert_imbalance=expert_imbalance, verify_factory=target,
                                  measured=measured)


def kv_shards_per_rank(model: ModelSpec, plan: ParallelPlan) -> int:
    """GPUs of one attention-DP rank holding distinct shards of a request's KV (see InstanceCost)."""
    a = model.attention
    per_stage = plan.tp if a is None else (1 if a.kind == "mla" else min(plan.tp, a.num_kv_heads))
    return per_stage * plan.pp


def build_instance_cost(model: ModelSpec, hw: HwProfile, plan: ParallelPlan, *, max_batch_tokens: int = 2048,
                        max_seqs: int = 128, expert_imbalance: float = 1.0, max_gpus: int | None = None,
                        spec_decode: SpecDecode | None = None, tbo: bool = False,
                        costs: str = "roofline", conventions: Conventions = DEFAULT_CONVENTIONS) -> InstanceCost:
    """Validate the plan, size memory, compile the step cost: everything the engine needs for one instance.

    With ``spec_decode`` the MTP draft layer's weights and its own KV cache are part of memory (the model is
    sized with its draft layer appended). ``costs``: ``roofline``, ``measured`` or ``auto`` op times
    (sim/cost/measured.py, docs/KERNELS.md). ``conventions``: kernel and all-to-all conventions
    (sim/cost/conventions.py, docs/MODELING.md §4a)."""
    plan.validate(model.moe.num_experts if model.moe else None, hw, max_gpus, model.num_layers)
    sized = model if spec_decode is None else model.with_layers(model.layers + draft_model(model).layers)
    # a hybrid model whose recurrent state for max_seqs seats leaves too little KV seats fewer (memory.seats_by_state)
    seats = seats_by_state(sized, hw, plan, max_batch_tokens=max_batch_tokens, max_seqs=max_seqs, min_tokens=max_batch_tokens)
    mem = require_fit(plan_memory(sized, hw, plan, max_batch_tokens=max_batch_tokens, max_seqs=seats or max_seqs), sized, hw,
                      plan, min_tokens=max_batch_tokens)
    step = build_step_cost(model, hw, plan, expert_imbalance=expert_imbalance, spec_decode=spec_decode, tbo=tbo,
                           measured=resolve_costs(costs, hw), conventions=conventions)
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
        kv_shards_per_rank=kv_shards_per_rank(model, plan),
        max_seqs_by_memory=seats,
    )


__all__ = [
    "CompiledStepCost", "ConstantStepCost", "CostModel", "DecodeStretch", "InstanceCost", "LinearStepCost",
    "RankLoad", "SpecDecode", "SpecDecodeStepCost", "TwoBatchOverlapStepCost", "build_instance_cost",
    "build_step_cost", "chunk_load",
]

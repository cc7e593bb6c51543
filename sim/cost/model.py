"""CostModel: the op-by-op cost of one engine step of a serving instance.

This is the readable reference: for a batch summary (one :class:`RankLoad` per attention-DP rank) it lists
every op with its FLOPs, bytes moved, bytes communicated, time and what bounds it. The engine uses
:class:`~latentmoe_sim.cost.step.CompiledStepCost`, which must equal :meth:`CostModel.step_time` (tested).

Step time = per-step overhead + the slowest rank's rank-local ops (attention, dense FFN, router, LatentMoE
projections, shared experts, Mamba, LM head) + the EP group's dispatch, routed experts and combine. Ranks
synchronise at every MoE layer's all-to-all, so the slowest rank paces the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..hw import HwProfile
from ..models.spec import ModelSpec
from ..parallel import ParallelPlan
from .base import RankLoad
from .conventions import DEFAULT_CONVENTIONS, Conventions
from .measured import MeasuredTables, op_time
from .ops import Op, moe_group_ops, rank_ops
from .roofline import Roofline


@dataclass(frozen=True)
class OpCost:
    """One op's cost in one step (per GPU of the slowest rank), all counts included."""

    name: str
    count: int
    flops: float
    mem_bytes: float
    comm_bytes: float
    time_s: float
    bound: str
    #: where ``time_s`` comes from: "roofline", or "measured:<table kind>" (sim/cost/measured.py)
    source: str = "roofline"
    #: the roofline's time for the op, seconds (equal to ``time_s`` when the source is the roofline)
    roofline_s: float | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "count": self.count, "flops": self.flops, "bytes": self.mem_bytes,
                "comm_bytes": self.comm_bytes, "time_s": self.time_s, "bound": self.bound, "source": self.source,
                "roofline_time_s": self.time_s if self.roofline_s is None else self.roofline_s}


def features(load: RankLoad) -> list[float]:
    """The feature vector of :data:`~latentmoe_sim.cost.ops.FEATURES` for one rank."""
    p, pairs, ctx, d, dk = load
    return [1.0, float(p + d), float(p), float(pairs), float(ctx), float(d), float(dk)]


class CostModel:
    """Costs of one (model, hardware, plan)."""

    def __init__(self, model: ModelSpec, hw: HwProfile, plan: ParallelPlan, *, expert_imbalance: float = 1.0,
                 decode_query_tokens: int = 1, only: str | None = None, measured: MeasuredTables | None = None,
                 conventions: Conventions = DEFAULT_CONVENTIONS):
        """``decode_query_tokens``: tokens verified per decoding sequence (1 + draft tokens, :mod:`.spec_decode`);
        ``only``: ``"compute"`` or ``"comm"`` keeps just that kind of op (the two streams of two-batch
        overlap, :mod:`.overlap`); None keeps all.
        ``measured``: the GPU's measured tables (``resolve_costs``); None prices every op on the roofline.
        ``conventions``: kernel and communication conventions (:mod:`.conventions`)."""
        if only not in (None, "compute", "comm"):
            raise ValueError(f"only must be None, 'compute' or 'comm', not {only!r}")
        self.model, self.hw, self.plan = model, hw, plan
        self.expert_imbalance = expert_imbalance
        self.only = only
        self.conventions = conventions
        self.roof = Roofline(hw)
        self.measured = measured
        ops = rank_ops(model, plan, hw, decode_query_tokens, conventions)
        self.ops: list[Op] = ops if only is None else [op for op in ops if bool(op.link) == (only == "comm")]

    # ---- one op ----------------------------------------------------------------------------------
    def op_cost(self, op: Op, x: Sequence[float]) -> OpCost:
        if not x[op.gate]:
            return OpCost(op.name, op.count, 0.0, 0.0, 0.0, 0.0, "idle")
        dot = lambda coefs: sum(c * x[f] for f, c in coefs.items())  # noqa: E731
        flops, mem, comm = dot(op.flops), dot(op.mem_bytes), dot(op.comm_bytes)
        if op.seconds:
            return OpCost(op.name, op.count, 0.0, 0.0, 0.0, dot(op.seconds) * op.count, "runtime")
        if op.link:
            t, bound = self.roof.comm_time(comm if op.link == "nvlink" else 0.0, comm if op.link == "scaleout" else 0.0, op.peers)
        else:
            t, bound = self.roof.compute_time(flops, mem, op.dtype)
        n = op.count
        m = op_time(self.measured, op.table, flops, mem, comm if op.link == "nvlink" else 0.0, op.dtype, x) \
            if op.link != "scaleout" else None
        if m is None:
            return OpCost(op.name, n, flops * n, mem * n, comm * n, t * n, bound)
        return OpCost(op.name, n, flops * n, mem * n, comm * n, m[0] * n, bound, m[1], t * n)

    def rank_breakdown(self, load: RankLoad) -> list[OpCost]:
        x = features(load)
        return [self.op_cost(op, x) for op in self.ops]

    def group_breakdown(self, total: float, busiest: float, prefill: bool = False) -> list[OpCost]:
        """EP-group ops for ``total`` tokens over all ranks, ``busiest`` on the busiest rank; ``prefill``: some
        rank runs a prefill chunk (selects the all-to-all dispatch mode)."""
        out = []
        for g in moe_group_ops(self.model, self.plan, self.hw, total, busiest, self.expert_imbalance, prefill=prefill,
                               conventions=self.conventions):
            is_comm = bool(g.nvlink_bytes or g.scaleout_bytes)
            if self.only is not None and is_comm != (self.only == "comm"):
                continue
            if is_comm:
                t, bound = self.roof.comm_time(g.nvlink_bytes, g.scaleout_bytes, g.peers)
            else:
                t, bound = self.roof.compute_time(g.flops, g.mem_bytes, g.dtype)
            n = g.count
            m = op_time(self.measured, g.table, g.flops, g.mem_bytes, g.nvlink_bytes, g.dtype) if not g.scaleout_bytes else None
            comm = (g.nvlink_bytes + g.scaleout_bytes) * n
            if m is None:
                out.append(OpCost(g.name, n, g.flops * n, g.mem_bytes * n, comm, t * n, bound))
            else:
                out.append(OpCost(g.name, n, g.flops * n, g.mem_bytes * n, comm, m[0] * n, bound, m[1], t * n))
        return out

    # ---- one step --------------------------------------------------------------------------------
    def breakdown(self, loads: Sequence[RankLoad]) -> dict:
        """Every op of the step: the slowest rank's rank-local ops, then the EP-group ops."""
        ranks = [self.rank_breakdown(l) for l in loads]
        rank_times = [sum(o.time_s for o in r) for r in ranks]
        slowest = max(range(len(loads)), key=lambda i: rank_times[i])
        tokens = [l[0] + l[3] for l in loads]
        group = self.group_breakdown(sum(tokens), max(tokens), any(l[0] for l in loads))
        step = self.hw.step_overhead_s + rank_times[slowest] + sum(o.time_s for o in group)
        return {
            "step_time_s": step,
            "overhead_s": self.hw.step_overhead_s,
            "slowest_rank": slowest,
            "rank_times_s": rank_times,
            "ops": [o for o in ranks[slowest] if o.bound != "idle"] + group,
        }

    def step_time(self, loads: Sequence[RankLoad]) -> float:
        return self.breakdown(loads)["step_time_s"]


__all__ = ["CostModel", "OpCost", "features"]

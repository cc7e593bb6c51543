"""GroupCost (the EP group's seconds from precomputed constants) equals the op-by-op reference float for float.

The reference is ``sum(o.time_s for o in CostModel.group_breakdown(total, busiest, prefill))``: every
EP-group op built by ``moe_group_ops`` and priced by the roofline or the measured tables. ``GroupCost.time``
must return the *identical* float (``==``, no tolerance) for random token totals on plans that exercise
every branch: EP inside and across NVLink domains (per-pair, per-rank and per-node dispatch, scale-out),
pure MoE tensor parallelism (EP 1) and expert TP under EP, the busiest rank's experts touched from the
exact chain (saturated or not, fractional totals) and from the normal approximation, LatentMoE, redundant experts, systematic
imbalance, precisions (FP4, FP8, BF16 and W4A16 experts), measured costs (all-to-all and grouped-GEMM
tables), the compute and communication streams of two-batch overlap, MTP's one-layer draft model, a
model without MoE blocks. Then the engine's step costs as the wrappers build them (plain, TBO, MTP,
measured) are checked through their own ``group_time``.
"""

from __future__ import annotations

import random

import pytest

from latentmoe_sim.cost import CompiledStepCost, CostModel, SpecDecode, build_step_cost
from latentmoe_sim.cost.conventions import Conventions
from latentmoe_sim.cost.group import GroupCost
from latentmoe_sim.cost.measured import load_tables
from latentmoe_sim.cost.spec_decode import draft_model
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models.catalog import load_model
from latentmoe_sim.parallel import ParallelPlan

FP4 = dict(weights="fp4", activations="fp4", dispatch="fp4")

#: (model, precision changes, hardware, plan, CostModel keywords, measured tables?)
CASES = [
    ("kimi-k2-1t", FP4, "gb200_nvl72", ParallelPlan(tp=1, dp=8, ep=8), {}, False),
    ("kimi-k2-1t", FP4, "gb200_nvl72", ParallelPlan(tp=1, dp=64, ep=64), {}, False),
    ("kimi-k2-1t", FP4, "gb200_nvl72", ParallelPlan(tp=4, dp=4, ep=16), {}, False),
    ("kimi-k2-1t", {}, "h200_sxm", ParallelPlan(tp=1, dp=16, ep=16), {}, False),  # across nodes: per-node, scale-out
    ("kimi-k2-1t", {}, "h200_sxm", ParallelPlan(tp=1, dp=32, ep=32), dict(expert_imbalance=1.3), False),
    ("kimi-k2-1t", {}, "h200_sxm", ParallelPlan(tp=2, dp=4, ep=4), {}, False),  # expert TP 2 under EP 4
    ("kimi-k2-1t", {}, "h200_sxm", ParallelPlan(tp=8, dp=1, ep=1), {}, False),  # pure MoE TP
    ("kimi-k2-1t", dict(weights="int4", activations="bf16"), "h200_sxm", ParallelPlan(tp=8, dp=1, ep=1), {}, False),  # W4A16
    ("kimi-k2-1t", dict(weights="int4", activations="bf16"), "h200_sxm", ParallelPlan(tp=1, dp=8, ep=8), {}, True),
    ("kimi-k2-1t-latentmoe", {}, "h200_sxm", ParallelPlan(tp=2, dp=4, ep=8), {}, False),
    ("kimi-k2-1t-latentmoe", FP4, "gb200_nvl72", ParallelPlan(tp=1, dp=32, ep=32), {}, False),
    ("kimi-k2-1t-latentmoe", FP4, "gb200_nvl72", ParallelPlan(tp=1, dp=4, ep=4), {}, False),  # 384 experts a rank: normal approx.
    ("deepseek-v3", {}, "h200_sxm", ParallelPlan(tp=1, dp=8, ep=8), {}, True),  # measured all-to-all and MoE tables
    ("deepseek-v3", {}, "h200_sxm", ParallelPlan(tp=1, dp=16, ep=16), {}, True),  # measured, scale-out all-to-all
    ("deepseek-v3", dict(weights="fp8", activations="fp8", dispatch="fp8"), "gb200_nvl72",
     ParallelPlan(tp=1, dp=72, ep=72, redundant_experts=32), {}, True),
    ("deepseek-v3", {}, "h200_sxm", ParallelPlan(tp=4, dp=2, ep=4), {}, True),  # measured, expert TP (no MoE table)
    ("qwen3-235b-a22b", {}, "h100_sxm", ParallelPlan(tp=1, dp=8, ep=8),
     dict(conventions=Conventions(expert_fusion="act-kernel", dispatch_prefill="per-rank", dispatch_decode="per-rank")), False),
    ("qwen3-235b-a22b", {}, "h100_sxm", ParallelPlan(tp=1, dp=16, ep=16),
     dict(conventions=Conventions(expert_fusion="unfused", dispatch_prefill="per-pair", dispatch_decode="per-node")), False),
    ("hybrid-73bt-8ba-latentmoe", {}, "b200", ParallelPlan(tp=1, dp=8, ep=8), {}, True),
    # expert popularity (routing_skew): fewer distinct experts, at EP1 and under EP with the imbalance on top
    ("hybrid-73bt-8ba", {}, "h100_sxm", ParallelPlan(tp=2, dp=1, ep=1), dict(conventions=Conventions(routing_skew=1.07)), False),
    ("kimi-k2-1t", {}, "h200_sxm", ParallelPlan(tp=1, dp=16, ep=16),
     dict(conventions=Conventions(routing_skew=1.07), expert_imbalance=1.207), True),
    ("kimi-k2-1t", FP4, "gb200_nvl72", ParallelPlan(tp=1, dp=8, ep=8), dict(only="compute"), False),  # TBO streams
    ("kimi-k2-1t", FP4, "gb200_nvl72", ParallelPlan(tp=1, dp=8, ep=8), dict(only="comm"), False),
    ("deepseek-v3", {}, "h200_sxm", ParallelPlan(tp=1, dp=16, ep=16), dict(only="comm"), True),
]


def cost_model(name, precision, hw_name, plan, kw, measured, draft=False) -> CostModel:
    model = load_model(name).with_precision(**precision)
    if draft:
        model = draft_model(model)
    hw = load_hw(hw_name)
    return CostModel(model, hw, plan, measured=load_tables(hw) if measured else None, **kw)


def reference(cm: CostModel, total, busiest, prefill) -> float:
    return sum(o.time_s for o in cm.group_breakdown(total, busiest, prefill))


def random_totals(rng: random.Random, dp: int):
    """(total, busiest, prefill) as the engine passes them: integers (single steps) or integral floats
    (stretches), from one decode to prefill-sized batches; a few fractional totals for the interpolation."""
    busiest = rng.choice([1, rng.randint(1, 64), rng.randint(64, 2048), rng.randint(2048, 16384)])
    total = busiest + sum(rng.randint(0, busiest) for _ in range(min(dp, 64) - 1))
    prefill = rng.random() < 0.4
    r = rng.random()
    if r < 0.3:
        return float(total), float(busiest), prefill
    if r < 0.4:
        return total + rng.random(), busiest + rng.random(), prefill
    return total, busiest, prefill


@pytest.mark.parametrize("name, precision, hw, plan, kw, measured", CASES)
def test_group_cost_equals_op_by_op_reference(name, precision, hw, plan, kw, measured):
    cm = cost_model(name, precision, hw, plan, kw, measured)
    fast = GroupCost(cm)
    rng = random.Random(hash((name, hw, plan.tp, plan.dp, plan.ep)) & 0xFFFF)
    for _ in range(200):
        total, busiest, prefill = random_totals(rng, plan.dp)
        assert fast.time(total, busiest, prefill) == reference(cm, total, busiest, prefill), (total, busiest, prefill)


def test_measured_tables_are_really_read():
    """The measured cases above do price group ops from tables (else they would only test the roofline)."""
    cm = cost_model("deepseek-v3", {}, "h200_sxm", ParallelPlan(tp=1, dp=8, ep=8), {}, True)
    sources = {o.name: o.source for o in cm.group_breakdown(800, 100)}
    assert sources == {"moe.dispatch": "measured:alltoall", "moe.combine": "measured:alltoall",
                       "moe.routed_experts": "measured:moe"}
    roof = cost_model("deepseek-v3", {}, "h200_sxm", ParallelPlan(tp=1, dp=8, ep=8), {}, False)
    assert GroupCost(cm).time(800, 100) != GroupCost(roof).time(800, 100)


def test_draft_model_and_no_moe():
    """MTP's one-layer draft (an MLA + MoE layer for DeepSeek-V3) and a model's cost without MoE blocks."""
    plan = ParallelPlan(tp=1, dp=8, ep=8)
    cm = cost_model("deepseek-v3", {}, "h200_sxm", plan, {}, False, draft=True)
    assert cm.model.block_count("E") == 1
    for total, busiest in ((8, 1), (640, 80), (40_000, 8192)):
        assert GroupCost(cm).time(total, busiest) == reference(cm, total, busiest, False) > 0
    # no MoE block: a one-layer model made of the hybrid's first Mamba layer (the catalog has no dense model)
    hybrid = load_model("hybrid-73bt-8ba")
    layer = next(l for l in hybrid.layers if "E" not in l)
    no_moe = CostModel(hybrid.with_layers((layer,)), load_hw("h200_sxm"), plan)
    assert no_moe.model.block_count("E") == 0
    assert GroupCost(no_moe).time(640, 80) == reference(no_moe, 640, 80, False) == 0


def _compiled(step_cost):
    """The CompiledStepCosts inside a step cost as ``build_step_cost`` wraps them."""
    if isinstance(step_cost, CompiledStepCost):
        return [step_cost]
    found = []
    for attr in ("compute", "comm", "verify", "draft"):
        inner = getattr(step_cost, attr, None)
        if inner is not None:
            found += _compiled(inner)
    return found


@pytest.mark.parametrize("tbo, mtp, measured", [(False, False, False), (True, False, False), (False, True, False),
                                                (True, True, True)])
def test_wrapped_step_costs_group_time(tbo, mtp, measured):
    """The engine's ``group_time`` (memoised GroupCost) of every compiled cost inside two-batch overlap and MTP
    wrappers equals its own cost model's op-by-op group sum."""
    model, hw = load_model("deepseek-v3"), load_hw("h200_sxm")
    plan = ParallelPlan(tp=1, dp=8, ep=8)
    step = build_step_cost(model, hw, plan, tbo=tbo, spec_decode=SpecDecode.parse(2) if mtp else None,
                           measured=load_tables(hw) if measured else None)
    inner = _compiled(step)
    assert len(inner) == (1 + tbo) + mtp  # TBO: two streams; MTP: plus the (plain) draft cost
    rng = random.Random(7)
    for c in inner:
        for _ in range(60):
            total, busiest, prefill = random_totals(rng, plan.dp)
            assert c.group_time(total, busiest, prefill) == reference(c.cost, total, busiest, prefill)


@pytest.mark.parametrize("dp", [8, 64])
def test_totals_around_saturation(dp):
    """Totals at and around the token count where every EP rank has touched all its experts (the end of the
    busiest-rank curve, routing._busiest_curve), whole and fractional."""
    from latentmoe_sim.cost.routing import _busiest_curve

    cm = cost_model("kimi-k2-1t", FP4, "gb200_nvl72", ParallelPlan(tp=1, dp=dp, ep=dp), {}, False)
    end = len(_busiest_curve(384, 8, dp)) - 1
    fast = GroupCost(cm)
    for total in (end - 2, end - 1, end - 0.5, end, end + 0.5, end + 1, float(end)):
        for prefill in (False, True):
            assert fast.time(total, total / dp, prefill) == reference(cm, total, total / dp, prefill), total

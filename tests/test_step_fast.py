"""The compiled step cost's shortcuts equal the readable op-by-op reference (``CostModel.step_time``).

``CompiledStepCost.step_time`` evaluates a decode-only rank in closed form from its decode count and KV
(only the rank with the most KV per decode count), and a rank with a prefill chunk as memoised
token-dependent ops plus its context-dependent ops term by term. Random steps mixing idle ranks, decode-only
ranks and ranks with chunks (and decodes) must cost what ``CostModel`` says, op for op, on several plans
and models (a LatentMoE one and a TP one included).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from latentmoe_sim.cost import CompiledStepCost, CostModel, RankLoad
from latentmoe_sim.cost.model import features
from latentmoe_sim.cost.ops import F_DK
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models.catalog import load_model
from latentmoe_sim.parallel import ParallelPlan

CASES = [
    ("kimi-k2-1t", "gb200_nvl72", ParallelPlan(tp=1, dp=8, ep=8)),
    ("kimi-k2-1t", "gb200_nvl72", ParallelPlan(tp=4, dp=4, ep=16)),
    ("kimi-k2-1t-latentmoe", "h200_sxm", ParallelPlan(tp=2, dp=4, ep=8)),
]


def random_load(rng: random.Random) -> RankLoad:
    kind = rng.random()
    if kind < 0.25:
        return RankLoad()
    d = rng.randint(1, 96)
    dk = d * rng.randint(1, 30_000)
    if kind < 0.6:
        return RankLoad(0, 0.0, 0, d, dk)
    chunk, offset = rng.randint(1, 4096), rng.choice([0, rng.randint(1, 60_000)])
    d = rng.choice([0, d])
    return RankLoad(chunk, chunk * (offset + (chunk + 1) / 2.0), offset + chunk, d, dk if d else 0)


@pytest.mark.parametrize("model,hw,plan", CASES)
def test_fast_step_time_equals_op_by_op_reference(model, hw, plan):
    ref = CostModel(load_model(model), load_hw(hw), plan)
    fast = CompiledStepCost(ref)
    rng = random.Random(hash((model, plan.tp, plan.dp)) & 0xFFFF)
    for _ in range(150):
        loads = [random_load(rng) for _ in range(plan.dp)]
        if not any(l[0] or l[3] for l in loads):
            continue
        assert fast.step_time(loads) == pytest.approx(ref.step_time(loads), rel=1e-12)


def test_only_the_most_kv_per_decode_count_matters():
    """Two decode-only ranks with the same decode count: the step costs what the one with more KV costs."""
    ref = CostModel(load_model("kimi-k2-1t"), load_hw("gb200_nvl72"), ParallelPlan(tp=1, dp=2, ep=2))
    fast = CompiledStepCost(ref)
    small, big = RankLoad(0, 0.0, 0, 16, 16 * 1000), RankLoad(0, 0.0, 0, 16, 16 * 50_000)
    assert fast.step_time([small, big]) == pytest.approx(fast.step_time([big, big]), rel=1e-15)
    assert fast.step_time([small, big]) > fast.step_time([small, small])


@pytest.mark.parametrize("model,hw,plan", CASES)
def test_token_time_equals_the_matrix_rows_and_the_ops(model, hw, plan):
    """``_token_time`` (the rank-local ops that read only token counts, rows sliced once per cost) is the same
    float as evaluating those rows of the full matrices at the rank's features, and the op-by-op reference's
    time of the same ops to rounding."""
    ref = CostModel(load_model(model), load_hw(hw), plan)
    fast = CompiledStepCost(ref)
    rows = fast._token_ops
    assert 0 < len(rows) < len(ref.ops)
    rng = random.Random(5)
    for _ in range(300):
        p = rng.choice([0, rng.randint(1, 16384)])
        d = rng.randint(0 if p else 1, 512)
        x = np.array(features(RankLoad(p, 0.0, 0, d, 0)))
        T = (np.maximum(fast._cf[rows] @ x, fast._cb[rows] @ x) + fast._lat[rows]) * (x[fast._gate[rows]] != 0)
        assert fast._token_time(p, d) == float(T.sum())
        ops = ref.rank_breakdown(RankLoad(p, 0.0, 0, d, 0))
        assert fast._token_time(p, d) == pytest.approx(sum(ops[i].time_s for i in rows), rel=1e-12)


def _decode_terms_unsliced(fast: CompiledStepCost, d: int, kv: int = 0) -> tuple:
    """``_decode_terms`` as written before its rows were sliced once per cost: slicing on every call."""
    x = np.array(features(RankLoad(0, 0.0, 0, d, 0)))
    measured = fast.cost.measured is not None
    r = fast._scale.ratios(np.array(features(RankLoad(0, 0.0, 0, d, kv)))) if measured else np.ones(len(fast._lat))
    cf, cb, lat, fixed = fast._cf, fast._cb, fast._lat, fast._fixed
    gates = x[fast._gate[fixed]] != 0
    base = float(((np.maximum(cf[fixed] @ x, cb[fixed] @ x) + lat[fixed]) * r[fixed])[gates].sum())
    options = tuple(((float((cf[v] @ x + lat[v]) * r[v]), float(cf[v, F_DK] * r[v])),
                     (float((cb[v] @ x + lat[v]) * r[v]), float(cb[v, F_DK] * r[v])))
                    for v in fast._vary if x[fast._gate[v]] != 0)
    return base, options


@pytest.mark.parametrize("model,hw,plan,measured", [c + (False,) for c in CASES] + [
    ("deepseek-v3", "h200_sxm", ParallelPlan(tp=1, dp=8, ep=8), True)])
def test_decode_terms_equal_unsliced_and_the_ops(model, hw, plan, measured):
    """A decode-only rank's fixed ops and KV lines (``_decode_terms``) are the same floats as slicing the
    matrices per call, and its time at some KV equals the op-by-op reference's to rounding."""
    from latentmoe_sim.cost.measured import load_tables

    h = load_hw(hw)
    ref = CostModel(load_model(model), h, plan, measured=load_tables(h) if measured else None)
    fast = CompiledStepCost(ref)
    rng = random.Random(9)
    for _ in range(60):
        d = rng.randint(1, 256)
        kv = d * rng.randint(1, 20_000) if measured else 0
        base, options = fast._decode_terms(d, kv)
        assert (base, options) == _decode_terms_unsliced(fast, d, kv)
        x = d * rng.randint(1, 20_000)
        if not measured:  # roofline: base + each KV op's larger line at KV x is the rank's time
            t = base + sum(max(a0 + b0 * x, a1 + b1 * x) for (a0, b0), (a1, b1) in options)
            assert t == pytest.approx(sum(o.time_s for o in ref.rank_breakdown(RankLoad(0, 0.0, 0, d, x))), rel=1e-12)

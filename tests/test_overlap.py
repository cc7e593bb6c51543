"""Two-batch overlap: the critical-path closed form and its two limits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from latentmoe_sim.cost import CompiledStepCost, CostModel, RankLoad, build_step_cost, chunk_load
from latentmoe_sim.cost.overlap import TwoBatchOverlapStepCost
from latentmoe_sim.cost.base import LinearStepCost
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan

MODEL = load_model("deepseek-v3")
PLAN = ParallelPlan(tp=1, dp=16, ep=16)  # EP16 on H100: the all-to-all leaves the 8-GPU NVLink domain
LOADS = {
    "decode 8": [RankLoad(0, 0.0, 0, 8, 8 * 2000)] * 16,
    "decode 256": [RankLoad(0, 0.0, 0, 256, 256 * 2000)] * 16,
    "prefill 4096": [RankLoad(*chunk_load(4096, 0), 0, 0)] * 16,
    "mixed": [RankLoad(*chunk_load(1024, 2048), 64, 64 * 3000)] * 16,
}


def streams(hw):
    return [CompiledStepCost(CostModel(MODEL, replace(hw, step_overhead_s=0.0), PLAN, only=k)) for k in ("compute", "comm")]


def test_closed_form_on_closed_form_streams():
    # compute 1 ms + 1 us/token, comm 0.5 us/token, L = 10 layers, overhead 2 ms; 1000 tokens -> C = 1.5 ms, M = 0.25 ms
    tbo = TwoBatchOverlapStepCost(LinearStepCost(0.001, 1e-6, 0.0), LinearStepCost(0.0, 5e-7, 0.0), 0.002, 10)
    assert tbo.step_time([RankLoad(0, 0.0, 0, 1000, 0)]) == pytest.approx(0.002 + 2 * 0.0015 + 0.00025 / 10)


@pytest.mark.parametrize("name", LOADS)
def test_zero_cost_alltoall_tbo_never_wins(name):
    hw = replace(load_hw("h100_sxm"), nvlink_bandwidth_bytes_per_s=1e30, scaleout_bandwidth_bytes_per_s=1e30,
                 nvlink_latency_s=0.0, scaleout_latency_s=0.0)
    loads = LOADS[name]
    plain = build_step_cost(MODEL, hw, PLAN).step_time(loads)
    tbo = build_step_cost(MODEL, hw, PLAN, tbo=True)
    c, m = tbo.parts(loads)
    assert m < 1e-12
    # with nothing to hide, TBO is the plain step plus the split's overhead (weights re-read, kernel latencies
    # paid twice): never faster, and the overhead is what splitting the compute costs, 2 C(half) - C(full)
    c_full = streams(hw)[0].step_time(loads)
    assert tbo.step_time(loads) >= plain * (1 - 1e-12)
    assert tbo.step_time(loads) - plain == pytest.approx(2 * c - c_full, rel=1e-6, abs=1e-12)


def test_large_compute_bound_prefill_split_overhead_is_small():
    hw = replace(load_hw("h100_sxm"), nvlink_bandwidth_bytes_per_s=1e30, scaleout_bandwidth_bytes_per_s=1e30,
                 nvlink_latency_s=0.0, scaleout_latency_s=0.0)
    loads = LOADS["prefill 4096"]
    ratio = build_step_cost(MODEL, hw, PLAN, tbo=True).step_time(loads) / build_step_cost(MODEL, hw, PLAN).step_time(loads)
    assert 1.0 <= ratio < 1.03


def test_comm_equal_to_compute_approaches_max():
    base = replace(load_hw("h100_sxm"), nvlink_latency_s=0.0, scaleout_latency_s=0.0, step_overhead_s=0.0)
    loads = LOADS["prefill 4096"]
    c_full, m_full = (s.step_time(loads) for s in streams(base))
    # scale both links so that the full batch's communication equals its compute
    f = m_full / c_full
    hw = replace(base, nvlink_bandwidth_bytes_per_s=base.nvlink_bandwidth_bytes_per_s * f,
                 scaleout_bandwidth_bytes_per_s=base.scaleout_bandwidth_bytes_per_s * f)
    c_full, m_full = (s.step_time(loads) for s in streams(hw))
    assert m_full == pytest.approx(c_full, rel=1e-6)
    plain = build_step_cost(MODEL, hw, PLAN).step_time(loads)
    tbo = build_step_cost(MODEL, hw, PLAN, tbo=True).step_time(loads)
    assert plain == pytest.approx(c_full + m_full, rel=1e-9)
    # max(C, M) plus the split's overhead and one layer of fill: within 3 % here
    assert max(c_full, m_full) <= tbo < 1.03 * max(c_full, m_full)


def test_tbo_stretch_equals_steps():
    hw = load_hw("h100_sxm")
    tbo = build_step_cost(MODEL, hw, PLAN, tbo=True)
    st = tbo.decode_stretch([96] * 16, [96 * 1500] * 16)
    for j in (0, 7, 300):
        assert st.step_time(j) == pytest.approx(tbo.step_time([RankLoad(0, 0.0, 0, 96, 96 * (1500 + j))] * 16), rel=1e-12)
    assert st.elapsed(3) == pytest.approx(sum(st.step_time(j) for j in range(3)))

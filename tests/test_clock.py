"""The engine's clock: timers run in (time, phase, creation) order, and the sources' timer chains send each
request at its closed-form time.

The clock replaced SimPy's ``Environment`` (same ordering key, no event object per timer), and the request
sources, once SimPy processes, became chains of timers; these tests pin what that must not change.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from latentmoe_sim.cost.base import ConstantStepCost, InstanceCost, LinearStepCost
from latentmoe_sim.engine import simulate_aggregated
from latentmoe_sim.engine.clock import COMPLETE, ROUTE, SCHEDULE, Clock, run_until_done
from latentmoe_sim.workloads import ClosedLoop, RequestSpecs


def test_timers_run_by_time_then_phase_then_creation():
    clock = Clock()
    ran = []

    class Pending:  # the run ends when the fifth timer has run
        remaining = 5

    def note(label):
        def callback(timer):
            ran.append((label, timer, clock.now))
            Pending.remaining -= 1
        return callback

    ids = [clock.at(2.0, SCHEDULE, note("schedule@2")), clock.at(2.0, COMPLETE, note("complete@2")),
           clock.at(1.0, SCHEDULE, note("schedule@1")), clock.at(2.0, ROUTE, note("route@2a")),
           clock.at(2.0, ROUTE, note("route@2b"))]
    assert ids == sorted(ids) and len(set(ids)) == 5  # unique, increasing: a superseded timer is told apart
    assert clock.peek() == 1.0
    assert run_until_done(clock, Pending) == 5
    assert [label for label, _, _ in ran] == ["schedule@1", "complete@2", "route@2a", "route@2b", "schedule@2"]
    assert [t for _, _, t in ran] == [1.0, 2.0, 2.0, 2.0, 2.0]
    assert [timer for _, timer, _ in ran] == [ids[2], ids[1], ids[3], ids[4], ids[0]]
    assert clock.peek() == math.inf


def test_a_run_with_requests_left_and_no_timer_is_an_engine_stall():
    class Pending:
        remaining = 2

    with pytest.raises(RuntimeError, match="stalled at t=0 s with 2 request"):
        run_until_done(Clock(), Pending)


def _instance(dp: int = 2) -> InstanceCost:
    return InstanceCost(LinearStepCost(0.01, 1e-5, 1e-9, dp=dp), dp=dp, kv_capacity_tokens=100_000, num_gpus=dp)


def test_closed_loop_ramp_sends_client_k_first_at_k_ramp_over_c():
    c, ramp = 5, 0.9
    n = 12
    # 200 output tokens at >= 10 ms a step: no request finishes (and sends the next) before the ramp ends
    specs = RequestSpecs(np.full(n, np.nan), np.full(n, 64, dtype=np.int64), np.full(n, 200, dtype=np.int64),
                         closed_loop=ClosedLoop(c, ramp_s=ramp))
    rec = simulate_aggregated(_instance(), 1, specs).records
    first = rec["arrival_s"].to_numpy()[:c]
    np.testing.assert_allclose(first, [k * ramp / c for k in range(c)], rtol=0, atol=1e-15)
    assert (rec["arrival_s"].to_numpy()[c:] > 0).all()  # later requests follow finishes


def test_open_loop_requests_arrive_at_their_times_ties_included():
    arrivals = np.array([0.0, 0.0, 0.25, 0.25, 0.25, 1.0, 3.5])
    n = arrivals.size
    specs = RequestSpecs(arrivals, np.full(n, 32, dtype=np.int64), np.full(n, 4, dtype=np.int64))
    rec = simulate_aggregated(_instance(), 2, specs).records
    assert rec["arrival_s"].to_list() == arrivals.tolist()
    assert (rec["first_token_s"].to_numpy() > arrivals).all()


@pytest.mark.parametrize("step_by_step", [False, True])
def test_an_emptied_instance_serves_a_request_arriving_at_that_instant_or_later(step_by_step):
    """Steps of 0.25 s (exact in binary). Request 0 (4 prompt tokens, 2 output) prefills in [0, 0.25) and
    decodes in [0.25, 0.5): the instance is empty at 0.5 and goes idle at once. Request 1 arrives exactly at
    0.5 and must start there: prefill [0.5, 0.75), decode [0.75, 1.0). Request 2 arrives at 0.6, during a
    step, and joins at the next boundary: its prefill rides with request 1's decode in [0.75, 1.0), then it
    decodes in [1.0, 1.25). A closed-loop client sends request 4 when request 3 finishes, at the same
    instant: the same, through the ROUTE phase."""
    inst = InstanceCost(ConstantStepCost(0.25), dp=1, kv_capacity_tokens=1024, num_gpus=1)
    n = 3
    specs = RequestSpecs(np.array([0.0, 0.5, 0.6]), np.full(n, 4, dtype=np.int64), np.full(n, 2, dtype=np.int64))
    rec = simulate_aggregated(inst, 1, specs, step_by_step=step_by_step).records
    assert rec["first_token_s"].to_list() == [0.25, 0.75, 1.0]
    assert rec["finish_s"].to_list() == [0.5, 1.0, 1.25]
    closed = RequestSpecs(np.full(2, np.nan), np.full(2, 4, dtype=np.int64), np.full(2, 2, dtype=np.int64),
                          closed_loop=ClosedLoop(1))
    rec = simulate_aggregated(inst, 1, closed, step_by_step=step_by_step).records
    assert rec["arrival_s"].to_list() == [0.0, 0.5]
    assert rec["finish_s"].to_list() == [0.5, 1.0]


# -- the SimPy clock gives the same run, timer for timer ------------------------------------------------------


def test_simpy_clock_runs_timers_in_the_same_order_with_the_same_ids():
    from latentmoe_sim.engine.clock import SimPyClock

    runs = []
    for clock in (Clock(), SimPyClock()):
        ran = []

        class Pending:
            remaining = 6

        def note(label, clock=clock, ran=ran, pending=Pending):
            def callback(timer):
                ran.append((label, timer, clock.now))
                pending.remaining -= 1
                if label == "complete@2":  # a timer set from a callback, at the same instant
                    clock.at(0.0, ROUTE, note("route@2 from complete"))
            return callback

        clock.at(2.0, SCHEDULE, note("schedule@2"))
        clock.at(2.0, COMPLETE, note("complete@2"))
        clock.at(1.0, SCHEDULE, note("schedule@1"))
        clock.at(2.0, ROUTE, note("route@2a"))
        clock.at(0.5, ROUTE, note("route@0.5"))
        assert clock.peek() == 0.5
        assert run_until_done(clock, Pending) == 6
        assert clock.peek() == math.inf
        runs.append(ran)
    assert runs[0] == runs[1]
    assert [label for label, _, _ in runs[0]] == ["route@0.5", "schedule@1", "complete@2", "route@2a",
                                                   "route@2 from complete", "schedule@2"]


def test_simpy_clock_reports_a_stall_like_the_heap():
    from latentmoe_sim.engine.clock import SimPyClock

    class Pending:
        remaining = 1

    with pytest.raises(RuntimeError, match="stalled at t=0 s with 1 request"):
        run_until_done(SimPyClock(), Pending)


def test_an_unknown_clock_is_refused_by_name():
    with pytest.raises(ValueError, match=r"clock: must be one of \['heap', 'simpy'\], got 'sundial'"):
        simulate_aggregated(_instance(), 1, RequestSpecs(np.zeros(1), np.ones(1, dtype=np.int64),
                                                         np.ones(1, dtype=np.int64)), clock="sundial")


def _same_run(a, b) -> None:
    """Records equal bit for bit (not within a tolerance: the same float operations in the same order)."""
    assert a.records.equals(b.records, null_equal=True)
    assert (a.steps, a.events, a.sim_end_s) == (b.steps, b.events, b.sim_end_s)


@pytest.mark.parametrize("arrivals, kv, step_by_step", [
    ("poisson", 9_000, False),  # open loop with preemptions
    ("closed", 9_000, False),  # closed loop with think time and preemptions
    ("poisson", 9_000, True),
])
def test_simpy_and_heap_clocks_give_identical_aggregated_runs(arrivals, kv, step_by_step):
    from latentmoe_sim.cost import build_instance_cost
    from latentmoe_sim.hwprofile_io import load_hw
    from latentmoe_sim.models.catalog import load_model
    from latentmoe_sim.parallel import ParallelPlan
    from latentmoe_sim.workloads import LogNormal, Poisson, Workload

    import dataclasses

    model = load_model("kimi-k2-1t").with_precision(weights="fp4", activations="fp4", dispatch="fp4")
    cost = build_instance_cost(model, load_hw("gb200_nvl72"), ParallelPlan(tp=1, dp=4, ep=4), max_batch_tokens=1024)
    cost = dataclasses.replace(cost, kv_capacity_tokens=kv)
    process = Poisson(12.0) if arrivals == "poisson" else ClosedLoop(48, 0.2)
    specs = Workload("clocks", LogNormal(600, 1.0, 1, 6000), LogNormal(200, 1.0, 1, 2000), process, 300, 5).generate()
    kw = dict(max_seqs=32, max_batch_tokens=1024, step_by_step=step_by_step)
    heap = simulate_aggregated(cost, 2, specs, engine="python", **kw)  # the Python engine's heap clock (the
    # compiled engine mirrors it: tests/test_engine_compiled.py)
    simpy_run = simulate_aggregated(cost, 2, specs, clock="simpy", **kw)
    _same_run(heap, simpy_run)
    assert heap.records["preemptions"].sum() > 0  # the KV pressure really bites


def test_simpy_and_heap_clocks_give_identical_disaggregated_runs():
    from latentmoe_sim.cost import build_instance_cost
    from latentmoe_sim.engine import simulate_disaggregated
    from latentmoe_sim.hwprofile_io import load_hw
    from latentmoe_sim.models.catalog import load_model
    from latentmoe_sim.parallel import ParallelPlan
    from latentmoe_sim.workloads import LogNormal, Poisson, Uniform, Workload

    model = load_model("kimi-k2-1t").with_precision(weights="fp4", activations="fp4", dispatch="fp4")
    hw = load_hw("gb200_nvl72")
    prefill = build_instance_cost(model, hw, ParallelPlan(tp=1, dp=4, ep=4), max_batch_tokens=8192)
    decode = build_instance_cost(model, hw, ParallelPlan(tp=1, dp=4, ep=4), max_batch_tokens=1024)
    specs = Workload("clocks", LogNormal(3000, 0.8, 1, 12_000), Uniform(1, 800), Poisson(8.0), 200, 11).generate()
    heap = simulate_disaggregated(prefill, 2, decode, 1, specs, decode_max_seqs=32)
    simpy_run = simulate_disaggregated(prefill, 2, decode, 1, specs, decode_max_seqs=32, clock="simpy")
    _same_run(heap, simpy_run)
    assert (heap.records["kv_transfer_s"] > 0).any()

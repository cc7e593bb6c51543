"""The compiled disaggregated engine (sim/engine/compiled_loop.py, the kernel both modes share) equals the Python engine, record for record.

As in tests/test_engine_compiled.py the comparison is exact: every column of every request's record (the
disaggregated ``prefill_instance`` and ``kv_transfer_s`` included) compared with ``==``, and the same timers
run, engine steps and end time. The workloads are random (seeded) and cover what disaggregated serving adds:
prefill-only instances handing requests over, the deferred transfers of one instant mixed with closed-loop
injections (their key order), shared ingress links with several transfers in flight (and with no latency,
where a transfer lands inside the drain), prefill blocks released at the landing (which wakes a prefill
instance blocked on KV), decode instances seating landed requests (first token at the step's start) and
preempting them under KV pressure, one-token requests that never leave the prefill pool, 1P+1D to 3P+2D under
both routers, and prompts chunked across prefill steps.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from latentmoe_sim.cost import ConstantStepCost, build_instance_cost
from latentmoe_sim.cost.base import InstanceCost
from latentmoe_sim.engine import compiled, compiled_loop, simulate_disaggregated
from latentmoe_sim.errors import InputError
from latentmoe_sim.parallel import ParallelPlan
from latentmoe_sim.workloads import ClosedLoop, Fixed, LogNormal, Poisson, Workload
from latentmoe_sim.workloads.workload import RequestSpecs

from test_engine_compiled import assert_identical, kimi  # noqa: F401 - the model fixture and the comparison

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba is not installed")


def instance(kimi, dp: int, max_batch_tokens: int, kv_tokens: int | None = None, **fields) -> InstanceCost:
    model, hw = kimi
    tp = max(1, 4 // dp)  # Kimi-K2-1T at FP4 needs 4 GPUs or more to fit
    cost = build_instance_cost(model, hw, ParallelPlan(tp=tp, dp=dp, ep=tp * dp), max_batch_tokens=max_batch_tokens)
    if kv_tokens is not None:
        fields["kv_capacity_tokens"] = kv_tokens
    return dataclasses.replace(cost, **fields) if fields else cost


def both(pre, npre, dec, ndec, specs, **kw):
    py = simulate_disaggregated(pre, npre, dec, ndec, specs, engine="python", **kw)
    fast = simulate_disaggregated(pre, npre, dec, ndec, specs, engine="compiled", **kw)
    assert_identical(fast, py)
    return fast


def lognormal(arrivals, n, seed, isl=3000, osl=150, osl_lo=1):
    return Workload("compiled-disagg", LogNormal(isl, 1.0, 1, 12_000), LogNormal(osl, 1.0, osl_lo, 1500), arrivals, n,
                    seed).generate()


CASES = [
    # (prefill dp, P, decode dp, D, router, arrivals, decode KV tokens per rank or None, decode max_seqs,
    #  prefill budget, decode budget)
    (4, 1, 4, 1, "least-loaded", Poisson(3.0), None, 128, 8192, 2048),  # 1P+1D
    (4, 2, 4, 1, "least-loaded", ClosedLoop(48, 0.2, 1.5), None, 64, 4096, 1024),  # 2P+1D, think time, ramp
    (2, 3, 4, 2, "least-loaded", Poisson(12.0), 14_000, 32, 2048, 1024),  # 3P+2D, decode KV pressure
    (4, 2, 8, 2, "round-robin", ClosedLoop(96), 14_000, 48, 1024, 512),  # chunked prompts, preemptions, RR
    (1, 2, 2, 3, "round-robin", Poisson(6.0), None, 128, 8192, 2048),  # DP1 prefill, three decode links
]


@pytest.mark.parametrize("pdp, npre, ddp, ndec, router, arrivals, kv, max_seqs, pbudget, dbudget", CASES)
def test_compiled_equals_python(kimi, pdp, npre, ddp, ndec, router, arrivals, kv, max_seqs, pbudget, dbudget):
    seed = pdp * 7 + npre * 5 + ddp + ndec + max_seqs
    specs = lognormal(arrivals, 250, seed=seed)
    pre = instance(kimi, pdp, pbudget)
    dec = instance(kimi, ddp, dbudget, kv)
    fast = both(pre, npre, dec, ndec, specs, prefill_max_batch_tokens=pbudget, decode_max_batch_tokens=dbudget,
                decode_max_seqs=max_seqs, router=router)
    rec = fast.records
    assert (rec["kv_transfer_s"] > 0).sum() > 200  # the case moves KV
    assert set(rec["prefill_instance"].to_list()) == set(range(npre))
    if kv is not None:
        assert rec["preemptions"].sum() > 0  # the case exercises preemption on the decode side


def test_tight_decode_budget(kimi):
    """A decode budget as small as the seats: after a preempted request's last re-prefill chunk, seated
    requests (one token of budget each) run out of budget before they run out of seats."""
    specs = lognormal(ClosedLoop(40), 250, seed=26)
    fast = both(instance(kimi, 4, 8192), 1, instance(kimi, 2, 24, 14_000), 1, specs, decode_max_seqs=24,
                decode_max_batch_tokens=24)
    assert fast.records["preemptions"].sum() > 0


def test_one_token_requests_ties_and_lock_step(kimi):
    """One-token requests (finished by the prefill pool), open-loop arrivals sharing timestamps."""
    rng = np.random.default_rng(3)
    n = 300
    arrivals = np.sort(np.round(rng.exponential(0.08, n).cumsum(), 1))  # many ties at 0.1 s resolution
    inputs = rng.integers(1, 6000, n).astype(np.int64)
    outputs = np.where(rng.random(n) < 0.3, 1, rng.integers(1, 300, n)).astype(np.int64)
    assert (np.diff(arrivals) == 0).sum() > 40
    fast = both(instance(kimi, 4, 4096), 2, instance(kimi, 4, 1024, 20_000), 1, RequestSpecs(arrivals, inputs, outputs),
                decode_max_seqs=32, prefill_max_batch_tokens=4096, decode_max_batch_tokens=1024)
    ones = fast.records.filter(fast.records["output_tokens"] == 1)
    assert ones.height > 50 and (ones["instance"] == ones["prefill_instance"]).all()


def test_fixed_lengths_mix_injections_and_transfers(kimi):
    """Fixed lengths in a closed loop with no think time: finishes, sends and transfers fall at one instant,
    so the deferred actions of an instant mix (INJECT, id) and (TRANSFER, id) keys."""
    specs = Workload("fixed", Fixed(2048), Fixed(64), ClosedLoop(64), 400, 5).generate()
    both(instance(kimi, 4, 8192), 2, instance(kimi, 4, 2048), 2, specs)


def test_no_link_latency_lands_inside_the_drain(kimi):
    """A link with no latency delivers inside its drain timer (no landing timer), before it re-arms."""
    pre = instance(kimi, 4, 4096, nvlink_latency_s=0.0, scaleout_latency_s=0.0)
    dec = instance(kimi, 4, 2048, nvlink_latency_s=0.0, scaleout_latency_s=0.0)
    both(pre, 2, dec, 1, lognormal(Poisson(8.0), 250, seed=9), prefill_max_batch_tokens=4096)


def test_landings_at_one_instant_out_of_id_order(kimi):
    """Landings at one instant reach a decode instance's inbox out of id order, and it plans them in
    (time, id) order. A link latency of 2**40 s puts the landing instants on a float grid of 2**-12 s, so
    transfers drained (in order of their size) a fraction of a millisecond apart land at one instant."""
    lat = 2.0**40
    pre = instance(kimi, 4, 8192, nvlink_latency_s=lat, scaleout_latency_s=lat)
    dec = instance(kimi, 4, 2048, nvlink_latency_s=lat, scaleout_latency_s=lat)
    both(pre, 2, dec, 1, lognormal(Poisson(20.0), 250, seed=7))


def test_prefill_pool_blocked_on_kv_is_woken_by_landings(kimi):
    """A prefill pool whose ranks hold little KV: prompts wait for blocks that only landings release
    (Instance.release wakes the idle instance); a seat cap from memory and another block size."""
    pre = instance(kimi, 2, 4096, 16_000)
    dec = instance(kimi, 4, 1024, max_seqs_by_memory=6)
    specs = lognormal(Poisson(20.0), 200, seed=21, isl=4000)
    both(pre, 1, dec, 1, specs, prefill_max_batch_tokens=4096, decode_max_batch_tokens=1024, block_size=32)


def test_one_cost_for_both_pools_and_a_prefill_seat_cap(kimi):
    """Both pools on one InstanceCost (one step cost: the pools share its side tables, with different seats
    and budgets), and a prefill pool whose seats are capped by memory."""
    cost = instance(kimi, 4, 2048)
    both(cost, 2, cost, 1, lognormal(Poisson(6.0), 200, seed=3), decode_max_seqs=64)
    pre = instance(kimi, 2, 4096, max_seqs_by_memory=3)
    both(pre, 2, instance(kimi, 4, 2048), 1, lognormal(Poisson(10.0), 200, seed=5), prefill_max_seqs=8,
         prefill_max_batch_tokens=4096)


def test_nothing_to_transfer(kimi):
    """No KV bytes and no link bandwidth: transfers of 0 bytes on the default 1 B/s link, latency only."""
    none = dict(kv_bytes_per_token=0.0, state_bytes_per_seq=0.0, nvlink_bandwidth_bytes_per_s=0.0,
                scaleout_bandwidth_bytes_per_s=0.0)
    fast = both(instance(kimi, 4, 8192, **none), 1, instance(kimi, 4, 2048, **none), 1,
                lognormal(ClosedLoop(32), 200, seed=4))
    assert fast.records["kv_transfer_s"].max() < 1e-3


def test_auto_falls_back_to_python_where_not_compiled(kimi):
    const = InstanceCost(step_cost=ConstantStepCost(0.01, dp=2), dp=2, num_gpus=2, kv_capacity_tokens=100_000)
    cost = instance(kimi, 2, 2048)
    specs = lognormal(Poisson(5.0), 40, seed=1)
    assert_identical(simulate_disaggregated(const, 1, cost, 1, specs),
                     simulate_disaggregated(const, 1, cost, 1, specs, engine="python"))
    with pytest.raises(InputError, match="compiled.*prefill step cost.*ConstantStepCost"):
        simulate_disaggregated(const, 1, cost, 1, specs, engine="compiled")
    with pytest.raises(InputError, match="compiled.*decode step cost.*ConstantStepCost"):
        simulate_disaggregated(cost, 1, const, 1, specs, engine="compiled")
    with pytest.raises(InputError, match="step_by_step"):
        simulate_disaggregated(cost, 1, cost, 1, specs, engine="compiled", step_by_step=True)
    with pytest.raises(InputError, match="simpy"):
        simulate_disaggregated(cost, 1, cost, 1, specs, engine="compiled", clock="simpy")
    with pytest.raises(InputError, match="engine: must be one of"):
        simulate_disaggregated(cost, 1, cost, 1, specs, engine="fortran")


def test_warm_up_loads_the_kernel():
    """A sweep compiles (or loads) the kernel before its workers start; afterwards the cache holds it."""
    compiled_loop.warm_up()
    assert compiled_loop.cache_is_warm()


def test_too_many_envelope_pieces_falls_back(kimi, monkeypatch):
    """A decode count whose step time has more envelope pieces than the tables hold: the run goes to the
    Python engine (auto) or fails with a one-line error (compiled)."""
    pre, dec = instance(kimi, 2, 4096), instance(kimi, 2, 2048)
    specs = lognormal(Poisson(5.0), 60, seed=4)
    monkeypatch.setattr(compiled, "LMAX", 0)
    compiled._TABLES.pop(pre.step_cost, None)
    compiled._TABLES.pop(dec.step_cost, None)
    auto = simulate_disaggregated(pre, 1, dec, 1, specs)
    compiled._TABLES.pop(dec.step_cost, None)
    with pytest.raises(InputError, match="envelope pieces"):
        simulate_disaggregated(pre, 1, dec, 1, specs, engine="compiled")
    monkeypatch.undo()
    compiled._TABLES.pop(pre.step_cost, None)
    compiled._TABLES.pop(dec.step_cost, None)
    assert_identical(auto, simulate_disaggregated(pre, 1, dec, 1, specs, engine="python"))

"""Decode stretches: advancing many steps in one event gives exactly what stepping one by one gives."""

from __future__ import annotations

import random

import numpy as np
import pytest

from latentmoe_sim.cost.base import InstanceCost, LinearStepCost
from latentmoe_sim.cost.stretch import DecodeStretch, upper_envelope
from latentmoe_sim.engine import simulate_aggregated, simulate_disaggregated
from latentmoe_sim.engine.kvcache import KVPool
from latentmoe_sim.workloads import ClosedLoop, Poisson, RequestSpecs


def workload(seed: int, n: int, *, rate: float | None, concurrency: int | None, max_in=2500, max_out=400,
             think: float = 0.0) -> RequestSpecs:
    rng = np.random.default_rng(seed)
    inputs = rng.integers(1, max_in, n)
    outputs = rng.integers(1, max_out, n)
    if concurrency:
        return RequestSpecs(np.full(n, np.nan), inputs, outputs, ClosedLoop(concurrency, think))
    return RequestSpecs(Poisson(rate).arrival_times(rng, n), inputs, outputs)


def assert_same(a, b) -> None:
    ra, rb = a.records, b.records
    assert ra["request_id"].to_list() == rb["request_id"].to_list()
    for col in ("arrival_s", "first_token_s", "finish_s"):
        np.testing.assert_allclose(ra[col].to_numpy(), rb[col].to_numpy(), rtol=1e-9, atol=0)
    for col in ("preemptions", "instance", "input_tokens", "output_tokens"):
        assert ra[col].to_list() == rb[col].to_list(), col
    assert a.steps == b.steps
    assert a.sim_end_s == pytest.approx(b.sim_end_s, rel=1e-9)


CASES = [
    # (dp, arrivals, kv tokens per rank, instances)
    (1, "poisson", 1_000_000, 1),
    (1, "poisson", 6_000, 2),
    (1, "closed", 6_000, 1),
    (3, "poisson", 5_000, 2),
    (3, "closed", 4_000, 2),
    (3, "closed", 1_000_000, 1),
    (2, "closed-think", 5_000, 3),
]


@pytest.mark.parametrize("dp, arrivals, kv, instances", CASES)
def test_stretch_mode_equals_step_by_step(dp, arrivals, kv, instances):
    specs = workload(dp * 100 + kv % 997 + instances, 150, rate=12.0 if arrivals == "poisson" else None,
                     concurrency=24 if arrivals.startswith("closed") else None,
                     think=0.37 if arrivals == "closed-think" else 0.0)
    inst = InstanceCost(LinearStepCost(0.0047, 2.3e-6, 1.7e-9, dp=dp), dp=dp, num_gpus=8, kv_capacity_tokens=kv)
    kw = dict(max_batch_tokens=512, max_seqs=24)
    fast = simulate_aggregated(inst, instances, specs, **kw)
    slow = simulate_aggregated(inst, instances, specs, step_by_step=True, **kw)
    assert_same(fast, slow)
    if kv < 10_000:
        assert fast.records["preemptions"].sum() > 0  # the KV pressure really bites
    assert fast.events < slow.events


def test_stretch_mode_equals_step_by_step_disaggregated():
    specs = workload(42, 150, rate=15.0, concurrency=None, max_in=6000, max_out=300)
    links = dict(kv_bytes_per_token=7e4, scaleout_bandwidth_bytes_per_s=5e9, scaleout_latency_s=1e-4,
                 nvlink_domain_size=8, num_gpus=8)
    pre = InstanceCost(LinearStepCost(0.0031, 2.9e-5, 1.1e-9, dp=2), dp=2, kv_capacity_tokens=8_000, **links)
    dec = InstanceCost(LinearStepCost(0.0047, 2.3e-6, 1.7e-9, dp=3), dp=3, kv_capacity_tokens=7_000, **links)
    kw = dict(prefill_max_batch_tokens=4096, decode_max_seqs=16)
    fast = simulate_disaggregated(pre, 2, dec, 2, specs, **kw)
    slow = simulate_disaggregated(pre, 2, dec, 2, specs, step_by_step=True, **kw)
    assert_same(fast, slow)
    np.testing.assert_allclose(fast.records["kv_transfer_s"].to_numpy(), slow.records["kv_transfer_s"].to_numpy(),
                               rtol=1e-9)
    assert fast.records["preemptions"].sum() > 0


# -- the pieces ----------------------------------------------------------------------------------------------------


def test_steps_within_matches_brute_force():
    rng = random.Random(1)
    for _ in range(500):
        lines = [(rng.uniform(1e-3, 0.05), rng.choice([0.0, rng.uniform(0, 1e-5), rng.uniform(0, 1e-3)]))
                 for _ in range(rng.randint(1, 4))]
        st = DecodeStretch(rng.uniform(0, 0.01), lines)
        n = rng.randint(0, 200)
        elapsed = [st.elapsed(k) for k in range(n + 1)]
        dt = rng.choice([rng.uniform(0, elapsed[-1] * 1.1) if n else 0.0, elapsed[rng.randint(0, n)]])
        assert st.steps_within(dt, n) == max(k for k in range(n + 1) if elapsed[k] <= dt)


def test_one_line_closed_forms_equal_the_segment_walk():
    """A one-line stretch takes closed forms (``elapsed`` without the walk over segments, ``steps_within``
    from the quadratic's root): the same floats and the same answers as the general code."""
    rng = random.Random(3)
    for _ in range(400):
        const, line = rng.uniform(0, 0.01), (rng.uniform(1e-4, 0.05), rng.choice([0.0, rng.uniform(0, 1e-6),
                                                                                 rng.uniform(0, 1e-3)]))
        st = DecodeStretch(const, [line])
        assert st._segs == [(x, const + a, b) for x, a, b in upper_envelope([line])]
        general = DecodeStretch.__new__(DecodeStretch)
        general._segs, general._one = st._segs, None  # the same envelope through the general code
        assert st._one is not None
        n = rng.randint(0, 5000)
        for k in (0, 1, n // 3, n):
            assert st.elapsed(k) == general.elapsed(k)
        for dt in (0.0, st.elapsed(rng.randint(0, n)), rng.uniform(0, st.elapsed(n) * 1.2 + 1e-9)):
            assert st.steps_within(dt, n) == general.steps_within(dt, n)


def test_kv_pool_block_counts_match_brute_force():
    rng = random.Random(2)
    for _ in range(300):
        bs = rng.choice([1, 4, 16])
        pool = KVPool(10_000, bs)
        c0 = rng.randint(0, 50)
        kvs = [rng.randint(1, 300) for _ in range(rng.randint(1, 12))]  # each decode's KV at counter c0
        for kv in kvs:
            pool.due[(c0 - kv) % bs] += 1
        pool.free = rng.randint(0, 60)
        n_max = rng.randint(1, 120)

        def need(j):  # blocks needed by step c0 + j: decodes whose KV fills its last block
            return sum(1 for kv in kvs if (kv + j) % bs == 0)

        for n in (0, 1, n_max // 2, n_max):
            assert pool.blocks_over(c0, n, len(kvs)) == sum(need(j) for j in range(n))
        fit, used = 0, 0  # brute force: the first step whose decodes find no free block
        while used + need(fit) <= pool.free:
            used += need(fit)
            fit += 1
        pool.synced = c0
        pool.refresh(len(kvs))
        assert pool.runs_out == c0 + fit
        free = pool.free  # lazily taken blocks: sync(c) takes exactly those of steps c0 .. c - 1
        pool.sync(c0 + n_max, len(kvs))
        assert pool.free == free - sum(need(j) for j in range(n_max)) and pool.synced == c0 + n_max

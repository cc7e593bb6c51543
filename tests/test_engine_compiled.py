"""The compiled aggregated engine (sim/engine/compiled.py) equals the Python engine, record for record.

The compiled engine mirrors every decision of the Python engine with the same float operations, and takes
every cost number from the same step cost, so the comparison is *exact*: every column of every request's
record compared with ``==`` (no tolerance), and the same timers run, engine steps and end time. The
workloads are random (seeded) and cover each mechanism the kernel re-implements: open-loop arrivals (with
ties) cutting stretches, closed loops with think time and a ramp, lognormal lengths with chunked prefills and
one-token requests, KV pools small enough to preempt by the thousands, one to 32 attention-DP ranks, several
instances under both routers, a seat cap from memory, other KV block sizes. The Python engine itself is held
to step-by-step simulation by tests/test_engine_exact.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from latentmoe_sim.cost import ConstantStepCost, build_instance_cost
from latentmoe_sim.cost.base import InstanceCost
from latentmoe_sim.engine import compiled, simulate_aggregated
from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models.catalog import load_model
from latentmoe_sim.parallel import ParallelPlan
from latentmoe_sim.workloads import ClosedLoop, Fixed, LogNormal, Poisson, Workload
from latentmoe_sim.workloads.workload import RequestSpecs

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba is not installed")


@pytest.fixture(scope="module")
def kimi():
    model = load_model("kimi-k2-1t").with_precision(weights="fp4", activations="fp4", dispatch="fp4")
    return model, load_hw("gb200_nvl72")


def instance(kimi, dp: int, kv_tokens: int | None = None, max_batch_tokens: int = 2048, seats_by_memory=None):
    model, hw = kimi
    tp = max(1, 4 // dp)  # Kimi-K2-1T at FP4 needs 4 GPUs or more to fit
    cost = build_instance_cost(model, hw, ParallelPlan(tp=tp, dp=dp, ep=tp * dp), max_batch_tokens=max_batch_tokens)
    if kv_tokens is not None:
        cost = dataclasses.replace(cost, kv_capacity_tokens=kv_tokens)
    if seats_by_memory is not None:
        cost = dataclasses.replace(cost, max_seqs_by_memory=seats_by_memory)
    return cost


def assert_identical(a, b) -> None:
    """Every column equal with ==, and the same timers, steps and end time."""
    assert a.records.columns == b.records.columns
    for col in a.records.columns:
        x, y = a.records[col].to_numpy(), b.records[col].to_numpy()
        assert x.dtype == y.dtype, col
        bad = np.flatnonzero(x != y)
        assert bad.size == 0, f"{col}: {bad.size} requests differ, first {bad[:5].tolist()}"
    assert (a.events, a.steps, a.sim_end_s, a.num_gpus, a.extra) == (b.events, b.steps, b.sim_end_s, b.num_gpus,
                                                                     b.extra)


def both(cost, instances, specs, **kw):
    py = simulate_aggregated(cost, instances, specs, engine="python", **kw)
    fast = simulate_aggregated(cost, instances, specs, engine="compiled", **kw)
    assert_identical(fast, py)
    return fast


def lognormal(arrivals, n, seed, isl=600, osl=200, osl_lo=1):
    return Workload("compiled", LogNormal(isl, 1.0, 1, 6000), LogNormal(osl, 1.0, osl_lo, 2000), arrivals, n,
                    seed).generate()


CASES = [
    # (dp, instances, router, arrivals, kv tokens per rank or None, max_seqs, max_batch_tokens, block size)
    (1, 1, "least-loaded", Poisson(2.0), None, 128, 2048, 16),
    (4, 1, "least-loaded", Poisson(4.0), None, 128, 1024, 16),
    (4, 1, "least-loaded", Poisson(12.0), 9_000, 32, 1024, 16),  # preemptions
    (4, 2, "least-loaded", ClosedLoop(48), 9_000, 24, 1024, 16),  # preemptions, two instances
    (4, 3, "round-robin", ClosedLoop(60, 0.3), 8_500, 32, 512, 16),  # think time, round-robin
    (8, 1, "least-loaded", ClosedLoop(64, 0.0, 2.0), None, 128, 2048, 16),  # ramped start
    (8, 3, "least-loaded", Poisson(80.0), 8_500, 32, 1024, 16),  # preemptions on many ranks of three instances
    (8, 2, "round-robin", Poisson(30.0), 20_000, 64, 256, 32),  # long chunked prefills, block size 32
    (16, 1, "least-loaded", Poisson(6.0), None, 128, 2048, 1),  # block size 1
    (32, 1, "least-loaded", Poisson(34.0), 7_000, 16, 1024, 16),  # many ranks, preemptions
    (2, 1, "least-loaded", ClosedLoop(256), 9_000, 256, 4096, 16),  # thrashing: preemption-heavy closed loop
]


@pytest.mark.parametrize("dp, instances, router, arrivals, kv, max_seqs, budget, bs", CASES)
def test_compiled_equals_python(kimi, dp, instances, router, arrivals, kv, max_seqs, budget, bs):
    seed = dp * 7 + instances + max_seqs + budget
    specs = lognormal(arrivals, 300, seed=seed)
    cost = instance(kimi, dp, kv, max_batch_tokens=budget)
    fast = both(cost, instances, specs, max_seqs=max_seqs, max_batch_tokens=budget, block_size=bs, router=router)
    if kv is not None and max_seqs <= 32:
        assert fast.records["preemptions"].sum() > 0  # the case exercises preemption


def test_one_token_requests_and_ties(kimi):
    """Requests that finish at their prefill (one output token), and open-loop arrivals sharing timestamps."""
    rng = np.random.default_rng(3)
    n = 400
    arrivals = np.sort(np.round(rng.exponential(0.05, n).cumsum(), 1))  # many ties at 0.1 s resolution
    inputs = rng.integers(1, 3000, n).astype(np.int64)
    outputs = np.where(rng.random(n) < 0.3, 1, rng.integers(1, 400, n)).astype(np.int64)
    specs = RequestSpecs(arrivals, inputs, outputs)
    assert (np.diff(arrivals) == 0).sum() > 50
    both(instance(kimi, 4, 15_000), 2, specs, max_seqs=32, max_batch_tokens=512)


def test_seat_cap_from_memory(kimi):
    cost = instance(kimi, 4, seats_by_memory=5)
    both(cost, 1, lognormal(ClosedLoop(64), 200, seed=11), max_seqs=64)


def test_fixed_lengths_lock_step(kimi):
    """Fixed lengths in a closed loop: requests finish in bursts at one instant (deferred injections)."""
    specs = Workload("fixed", Fixed(512), Fixed(256), ClosedLoop(96), 600, 5).generate()
    both(instance(kimi, 8), 2, specs, max_seqs=32)


def test_warm_tables_give_the_same_records(kimi):
    """The kernel's side tables persist per step cost; a second run (every entry there) is identical."""
    cost = instance(kimi, 8)
    specs = lognormal(Poisson(20.0), 300, seed=2)
    first = simulate_aggregated(cost, 1, specs, engine="compiled")
    second = simulate_aggregated(cost, 1, specs, engine="compiled")
    assert_identical(first, second)
    assert compiled._TABLES[cost.step_cost].lines_n.max() > 0


def test_auto_falls_back_to_python_where_not_compiled(kimi):
    const = InstanceCost(step_cost=ConstantStepCost(0.01, dp=2), dp=2, num_gpus=2, kv_capacity_tokens=100_000)
    specs = lognormal(Poisson(5.0), 50, seed=1)
    auto = simulate_aggregated(const, 1, specs)
    py = simulate_aggregated(const, 1, specs, engine="python")
    assert_identical(auto, py)
    with pytest.raises(InputError, match="compiled.*ConstantStepCost"):
        simulate_aggregated(const, 1, specs, engine="compiled")
    cost = instance(kimi, 2)
    with pytest.raises(InputError, match="step_by_step"):
        simulate_aggregated(cost, 1, specs, engine="compiled", step_by_step=True)
    with pytest.raises(InputError, match="engine: must be one of"):
        simulate_aggregated(cost, 1, specs, engine="fortran")


def test_too_many_envelope_pieces_falls_back(kimi, monkeypatch):
    """A decode count whose step time has more envelope pieces than the tables hold: the run goes to the
    Python engine (auto) or fails with a one-line error (compiled)."""
    cost = instance(kimi, 2)
    specs = lognormal(Poisson(5.0), 60, seed=4)
    monkeypatch.setattr(compiled, "LMAX", 0)
    compiled._TABLES.pop(cost.step_cost, None)
    auto = simulate_aggregated(cost, 1, specs)
    compiled._TABLES.pop(cost.step_cost, None)
    with pytest.raises(InputError, match="envelope pieces"):
        simulate_aggregated(cost, 1, specs, engine="compiled")
    monkeypatch.undo()
    compiled._TABLES.pop(cost.step_cost, None)
    assert_identical(auto, simulate_aggregated(cost, 1, specs, engine="python"))


def test_kernel_group_seconds_equal_group_cost():
    """The kernel's EP-group seconds (``_group_seconds``) equal ``GroupCost.time`` with == on every plan of
    tests/test_group_cost.py that it computes itself, for integer and fractional totals, both dispatch modes;
    the others are flagged off (the step cost answers them as misses)."""
    import random

    from latentmoe_sim.cost.group import GroupCost
    from test_group_cost import CASES, cost_model

    rng = random.Random(7)
    computed = 0
    for name, precision, hw, plan, kw, measured in CASES:
        gc = GroupCost(cost_model(name, precision, hw, plan, kw, measured))
        GP, GC = compiled.group_params(gc)
        if not GP[compiled.GP_ON]:
            assert measured or gc._curve is False or not gc.experts, name
            continue
        computed += 1
        for _ in range(300):
            total = rng.choice([rng.randint(1, 64), rng.randint(1, 4096), rng.randint(1, 300_000)])
            busiest = rng.randint(1, max(1, min(total, 16384)))
            prefill = rng.random() < 0.5
            for t in (total, float(total)):
                assert compiled._group_seconds(GP, GC, float(t), float(busiest), int(prefill)) == \
                    gc.time(t, busiest, prefill), (name, plan, t, busiest, prefill)
        frac = rng.uniform(1.0, 50.0)
        assert compiled._group_seconds(GP, GC, frac, 1.0, 0) == gc.time(frac, 1.0, False)
    assert computed >= 8


def test_side_tables_are_emptied_past_their_cap(kimi, monkeypatch):
    """The kernel's dicts start afresh after MAX_PUTS entries (bounded memory on long sweeps); a pending plan
    asks again for what was dropped, so the records stay the Python engine's."""
    cost = instance(kimi, 4)
    specs = lognormal(Poisson(8.0), 200, seed=21)
    compiled._TABLES.pop(cost.step_cost, None)
    monkeypatch.setattr(compiled._Tables, "MAX_PUTS", 3)
    fast = simulate_aggregated(cost, 1, specs, engine="compiled")
    assert compiled._TABLES[cost.step_cost].puts <= 3 + 64  # emptied at least once along the way
    monkeypatch.undo()
    assert_identical(fast, simulate_aggregated(cost, 1, specs, engine="python"))


def _numba_missing(monkeypatch):
    monkeypatch.setattr(compiled, "AVAILABLE", False)


def _numba_cannot_compile(monkeypatch):
    from numba.core.errors import TypingError

    from latentmoe_sim.engine import compiled_loop

    def broken(*_args):
        raise TypingError("no implementation for this platform")

    monkeypatch.setattr(compiled_loop, "_run", broken)


@pytest.mark.parametrize("breakage, why", [(_numba_missing, "numba is not installed"),
                                           (_numba_cannot_compile, "numba could not compile the engine")])
def test_without_a_working_numba_runs_on_python(kimi, monkeypatch, breakage, why):
    """Where numba is missing, or cannot compile the kernel on this platform, the default runs the Python
    engine; asking for the compiled one says why."""
    cost = instance(kimi, 2)
    specs = lognormal(Poisson(5.0), 40, seed=9)
    breakage(monkeypatch)
    auto = simulate_aggregated(cost, 1, specs)
    with pytest.raises(InputError, match=why):
        simulate_aggregated(cost, 1, specs, engine="compiled")
    monkeypatch.undo()
    assert_identical(auto, simulate_aggregated(cost, 1, specs, engine="python"))

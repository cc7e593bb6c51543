"""Aggregated serving engine: closed forms, invariants, queueing theory and bad input."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from latentmoe_sim import metrics
from latentmoe_sim.cost.base import ConstantStepCost, InstanceCost, LinearStepCost
from latentmoe_sim.engine import SimResult, simulate_aggregated
from latentmoe_sim.errors import InputError
from latentmoe_sim.workloads import ClosedLoop, Poisson, RequestSpecs


def instance(step_cost=None, dp=1, kv=1_000_000, gpus=8, **kw) -> InstanceCost:
    step_cost = step_cost or ConstantStepCost(0.01, dp=dp)
    return InstanceCost(step_cost, dp=dp, num_gpus=gpus, kv_capacity_tokens=kv, **kw)


def open_loop(arrivals, inputs, outputs) -> RequestSpecs:
    n = len(inputs)
    arr = np.broadcast_to(np.asarray(arrivals, dtype=float), (n,)).copy()
    outs = np.broadcast_to(np.asarray(outputs, dtype=np.int64), (n,)).copy()
    return RequestSpecs(arr, np.asarray(inputs, dtype=np.int64), outs)


def closed_loop(inputs, outputs, concurrency, think=0.0) -> RequestSpecs:
    n = len(inputs)
    return RequestSpecs(np.full(n, np.nan), np.asarray(inputs, dtype=np.int64), np.asarray(outputs, dtype=np.int64),
                        ClosedLoop(concurrency, think))


def random_specs(seed: int, n: int, *, rate: float | None = 20.0, concurrency: int | None = None,
                 max_in: int = 3000, max_out: int = 300) -> RequestSpecs:
    rng = np.random.default_rng(seed)
    inputs = rng.integers(1, max_in, n)
    outputs = rng.integers(1, max_out, n)
    if concurrency:
        return closed_loop(inputs, outputs, concurrency)
    return RequestSpecs(Poisson(rate).arrival_times(rng, n), inputs, outputs)


def both_modes(*args, **kw) -> tuple[SimResult, SimResult]:
    return simulate_aggregated(*args, **kw), simulate_aggregated(*args, step_by_step=True, **kw)


# -- closed forms with a constant step ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt, out, budget",
    [(100, 1, 2048), (2048, 5, 2048), (2049, 5, 2048), (5000, 10, 1024), (1, 3, 16), (700, 257, 256)],
)
def test_lone_request_latency_is_prefill_steps_plus_decode_steps(prompt, out, budget):
    step = 0.01
    specs = open_loop([0.5], [prompt], [out])
    inst = instance(ConstantStepCost(step))
    for res in both_modes(inst, 1, specs, max_batch_tokens=budget, max_seqs=min(16, budget)):
        rec = res.records.row(0, named=True)
        prefill_steps = math.ceil(prompt / budget)
        assert rec["first_token_s"] == pytest.approx(0.5 + prefill_steps * step, rel=1e-12)
        assert rec["finish_s"] == pytest.approx(0.5 + (prefill_steps + out - 1) * step, rel=1e-12)
        assert res.steps == prefill_steps + out - 1
        assert res.sim_end_s == pytest.approx(rec["finish_s"])


def test_lone_request_latency_with_a_linear_cost_sums_each_step():
    f, a, b, prompt, out, budget = 0.003, 2e-5, 3e-9, 3000, 40, 1024
    specs = open_loop([0.0], [prompt], [out])
    t, off = 0.0, 0
    while off < prompt:  # chunks of the prompt: causal pairs chunk * (offset + (chunk + 1) / 2)
        chunk = min(budget, prompt - off)
        t += f + a * chunk + b * chunk * (off + (chunk + 1) / 2)
        off += chunk
    ttft = t
    for g in range(1, out):  # decode step after g tokens: one token, attends prompt + g
        t += f + a + b * (prompt + g)
    for res in both_modes(instance(LinearStepCost(f, a, b)), 1, specs, max_batch_tokens=budget):
        rec = res.records.row(0, named=True)
        assert rec["first_token_s"] == pytest.approx(ttft, rel=1e-12)
        assert rec["finish_s"] == pytest.approx(t, rel=1e-12)


def test_full_decode_batch_throughput_is_batch_over_step():
    step, batch, out = 0.02, 32, 100
    specs = open_loop([0.0], [16] * batch, [out])
    res = simulate_aggregated(instance(ConstantStepCost(step)), 1, specs, max_seqs=batch)
    rec = res.records
    assert np.allclose(rec["first_token_s"].to_numpy(), step)  # all 32 prompts fit one step (512 <= 2048)
    assert np.allclose(rec["finish_s"].to_numpy(), out * step)
    tokens_per_s = rec["output_tokens"].sum() / res.sim_end_s
    assert tokens_per_s == pytest.approx(batch / step, rel=1e-12)


def test_max_seqs_caps_the_batch_and_the_next_wave_starts_when_seats_free():
    step, out = 0.01, 50
    specs = open_loop([0.0], [10] * 8, [out])
    res = simulate_aggregated(instance(ConstantStepCost(step)), 1, specs, max_seqs=4)
    finish = res.records["finish_s"].to_numpy()
    assert np.allclose(finish[:4], out * step)
    assert np.allclose(finish[4:], 2 * out * step)


def test_max_seqs_by_memory_caps_the_batch_too():
    step, out = 0.01, 50
    specs = open_loop([0.0], [10] * 4, [out])
    res = simulate_aggregated(instance(ConstantStepCost(step), max_seqs_by_memory=2), 1, specs, max_seqs=128)
    np.testing.assert_allclose(res.records["finish_s"].to_numpy(), [out * step] * 2 + [2 * out * step] * 2)


def test_decodes_come_first_and_prefill_takes_the_leftover_budget():
    # A decodes alone; B (prompt 100) arrives; budget 64 -> B's prefill runs in chunks of 63 then 37
    step = 0.25  # binary fraction: step boundaries are exact in both modes
    specs = open_loop([0.0, 1.0], [10, 100], [20, 2])
    for res in both_modes(instance(ConstantStepCost(step)), 1, specs, max_batch_tokens=64, max_seqs=8):
        b = res.records.row(1, named=True)
        assert b["first_token_s"] == 1.0 + 2 * step  # chunks of 63 and 37 tokens
        assert b["finish_s"] == 1.0 + 3 * step


def test_arrival_exactly_at_a_step_boundary_joins_the_next_step():
    step = 0.25
    for arrival, first in [(0.5, 0.75), (0.5 - 1e-9, 0.75), (0.5 + 1e-9, 1.0)]:
        specs = open_loop([0.0, arrival], [10, 10], [20, 1])
        for res in both_modes(instance(ConstantStepCost(step)), 1, specs):
            assert res.records["first_token_s"][1] == first


def test_completions_at_an_instant_come_before_routing_at_that_instant():
    # instance 1's request finishes at 0.5, exactly when request 2 arrives: the router must see load 0 there
    step = 0.25
    specs = open_loop([0.0, 0.0, 0.5], [10, 10, 10], [20, 2, 2])
    for res in both_modes(instance(ConstantStepCost(step)), 2, specs):
        assert res.records["instance"].to_list() == [0, 1, 1]


def test_dp_ranks_get_requests_least_loaded_and_the_step_waits_for_the_slowest_rank():
    per_token = 1e-3
    specs = open_loop([0.0], [100, 100], [1])
    res = simulate_aggregated(instance(LinearStepCost(0.0, per_token, 0.0, dp=2), dp=2), 1, specs)
    assert np.allclose(res.records["first_token_s"].to_numpy(), 100 * per_token)  # one prompt per rank
    specs = open_loop([0.0], [100, 300], [1])
    res = simulate_aggregated(instance(LinearStepCost(0.0, per_token, 0.0, dp=2), dp=2), 1, specs)
    assert np.allclose(res.records["first_token_s"].to_numpy(), 300 * per_token)  # slowest rank sets the pace


@pytest.mark.parametrize(
    "policy, expected", [("round-robin", [0, 1, 2, 0, 1, 2]), ("least-loaded", [0, 1, 2, 0, 1, 2])]
)
def test_router_policies(policy, expected):
    specs = open_loop([0.0], [10] * 6, [5])
    res = simulate_aggregated(instance(), 3, specs, router=policy)
    assert res.records["instance"].to_list() == expected
    assert res.num_gpus == 24


def test_least_loaded_avoids_a_busy_instance_where_round_robin_does_not():
    specs = open_loop([0.0, 0.0, 0.1, 0.2], [10] * 4, [1000, 2, 2, 2])
    ll = simulate_aggregated(instance(), 2, specs, router="least-loaded").records["instance"].to_list()
    rr = simulate_aggregated(instance(), 2, specs, router="round-robin").records["instance"].to_list()
    assert ll == [0, 1, 1, 1]
    assert rr == [0, 1, 0, 1]


# -- invariants ----------------------------------------------------------------------------------------------------


def check_records(res: SimResult, specs: RequestSpecs) -> pl.DataFrame:
    rec = res.records
    n = len(specs)
    assert rec.height == n
    assert rec["request_id"].to_list() == list(range(n))  # every request exactly once
    assert (rec["input_tokens"].to_numpy() == specs.input_tokens).all()
    assert (rec["output_tokens"].to_numpy() == specs.output_tokens).all()
    arr, first, fin = (rec[c].to_numpy() for c in ("arrival_s", "first_token_s", "finish_s"))
    assert (arr <= first).all() and (first <= fin).all()
    assert res.sim_end_s == pytest.approx(fin.max())
    one = specs.output_tokens == 1
    assert (first[one] == fin[one]).all()
    if specs.closed_loop is None:
        assert (arr == specs.arrival_s).all()
    metrics.summarize(rec, res.num_gpus)  # the metrics module accepts them
    return rec


@pytest.mark.parametrize("dp", [1, 2])
def test_every_request_finishes_once_with_its_tokens(dp):
    specs = random_specs(3, 400, rate=30.0)
    res = simulate_aggregated(instance(LinearStepCost(0.004, 1e-6, 1e-9, dp=dp), dp=dp, kv=20_000), 3, specs,
                              max_batch_tokens=1024, max_seqs=32)
    check_records(res, specs)


def test_same_input_same_result():
    specs = random_specs(5, 300, concurrency=24)
    inst = instance(LinearStepCost(0.004, 1e-6, 1e-9, dp=2), dp=2, kv=12_000)
    a = simulate_aggregated(inst, 2, specs)
    b = simulate_aggregated(inst, 2, specs)
    assert a.records.equals(b.records)
    assert (a.steps, a.events, a.sim_end_s) == (b.steps, b.events, b.sim_end_s)


def test_kv_exhaustion_preempts_but_loses_no_request():
    # 16 long decodes on a 4096-token rank: they outgrow the pool and must be recomputed
    specs = open_loop([0.0], [200] * 16, [400])
    for res in both_modes(instance(LinearStepCost(0.002, 1e-6, 1e-9), kv=4096), 1, specs):
        rec = check_records(res, specs)
        assert rec["preemptions"].sum() > 0
        assert rec["preemptions"][0] == 0  # the oldest request is never the victim


def test_preempted_request_pays_for_its_recompute():
    step = 0.01
    specs = open_loop([0.0], [100, 100], [200])
    res = simulate_aggregated(instance(ConstantStepCost(step), kv=320), 1, specs, block_size=16)
    rec = res.records
    assert rec["preemptions"].to_list() == [0, 1]
    assert rec["finish_s"][0] == pytest.approx(200 * step)  # the oldest runs as if alone
    assert rec["finish_s"][1] > rec["finish_s"][0]


def test_littles_law_over_the_whole_run():
    specs = random_specs(7, 500, rate=25.0)
    res = simulate_aggregated(instance(LinearStepCost(0.004, 1e-6, 1e-9), kv=30_000), 2, specs, max_seqs=32)
    rec = res.records
    t0, t1 = float(rec["arrival_s"].min()), float(rec["finish_s"].max())
    L = metrics.time_average_in_system(rec, t0, t1)
    lam = metrics.arrival_rate(rec, t0, t1)
    W = metrics.mean_sojourn_s(rec, t0, t1)
    assert L == pytest.approx(lam * W, rel=1e-9)
    # in the steady window it holds up to edge effects
    s = res.summary()
    assert s["requests_in_system_mean"] == pytest.approx(s["arrival_rate_per_s"] * s["e2e_mean_s"], rel=0.1)


def test_closed_loop_keeps_concurrency_requests_in_the_system():
    conc = 12
    specs = random_specs(11, 200, concurrency=conc)
    res = simulate_aggregated(instance(LinearStepCost(0.004, 1e-6, 1e-9), kv=20_000), 2, specs)
    rec = check_records(res, specs)
    last_arrival = float(rec["arrival_s"].max())
    times = np.linspace(0.0, last_arrival, 997, endpoint=False)
    assert (metrics.requests_in_system(rec, times) == conc).all()
    assert (rec["arrival_s"].sort().to_numpy()[:conc] == 0.0).all()


def test_closed_loop_think_time_delays_the_next_request():
    specs = closed_loop([10] * 3, [5] * 3, concurrency=1, think=0.5)
    res = simulate_aggregated(instance(ConstantStepCost(0.25)), 1, specs)
    rec = res.records
    assert rec["arrival_s"].to_list() == [0.0, 1.75, 3.5]
    assert rec["finish_s"].to_list() == [1.25, 3.0, 4.75]


def test_md1_mean_wait():
    # batch size 1, a prompt that fits one step, one output token: deterministic service S = one step
    step, rho, n = 0.01, 0.5, 20_000
    for seed in (0, 1):
        arrivals = Poisson(rho / step).arrival_times(np.random.default_rng(seed), n)
        specs = RequestSpecs(arrivals, np.full(n, 10), np.full(n, 1))
        res = simulate_aggregated(instance(ConstantStepCost(step), kv=1024), 1, specs, max_seqs=1)
        wait = (res.records["first_token_s"] - res.records["arrival_s"]).to_numpy() - step
        assert wait.min() >= -1e-12
        assert wait.mean() == pytest.approx(rho * step / (2 * (1 - rho)), rel=0.05)


def test_summary_passes_through_to_metrics():
    specs = random_specs(2, 100, concurrency=8)
    res = simulate_aggregated(instance(), 1, specs)
    s = res.summary(warmup_fraction=0.2)
    assert s["completed_requests"] == 100 and s["num_gpus"] == 8 and s["sim_end_s"] == res.sim_end_s
    assert res.events > 0 and res.steps > 0 and res.cpu_s >= 0


# -- bad input -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(num_instances=0), "num_instances"),
        (dict(num_instances=-2), "num_instances"),
        (dict(num_instances=True), "num_instances"),
        (dict(max_seqs=0), "max_seqs"),
        (dict(max_batch_tokens=-5), "max_batch_tokens"),
        (dict(max_seqs=300, max_batch_tokens=256), "max_seqs"),
        (dict(block_size=0), "block_size"),
        (dict(router="random"), "routing policy"),
    ],
)
def test_bad_arguments_are_input_errors(kw, match):
    args = dict(num_instances=1)
    args.update(kw)
    n = args.pop("num_instances")
    with pytest.raises(InputError, match=match):
        simulate_aggregated(instance(), n, open_loop([0.0], [10], [2]), **args)


def test_prompt_larger_than_kv_capacity_is_an_input_error():
    with pytest.raises(InputError, match="request 1: .*prompt"):
        simulate_aggregated(instance(kv=1024), 1, open_loop([0.0], [10, 2000], [1]))
    with pytest.raises(InputError, match="request 0"):  # prompt fits, but not with its output
        simulate_aggregated(instance(kv=1024), 1, open_loop([0.0], [1000], [100]))
    with pytest.raises(InputError, match="less than one KV block"):
        simulate_aggregated(instance(kv=8), 1, open_loop([0.0], [1], [1]))


def test_bad_instances_and_requests_are_input_errors():
    with pytest.raises(InputError, match="dp"):
        simulate_aggregated(instance(ConstantStepCost(0.01, dp=2), dp=1), 1, open_loop([0.0], [10], [2]))
    with pytest.raises(InputError, match="num_gpus"):
        simulate_aggregated(instance(gpus=0), 1, open_loop([0.0], [10], [2]))
    with pytest.raises(InputError, match="sorted"):
        simulate_aggregated(instance(), 1, open_loop([1.0, 0.0], [10, 10], [2, 2]))
    with pytest.raises(InputError, match="output_tokens"):
        simulate_aggregated(instance(), 1, RequestSpecs(np.zeros(1), np.array([10]), np.array([0])))
    with pytest.raises(InputError, match="no requests"):
        simulate_aggregated(instance(), 1, RequestSpecs(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)))

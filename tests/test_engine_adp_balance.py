"""Attention-DP balance (TensorRT-LLM ``attention_dp_config: enable_balance, timeout_iters``): closed forms of
the hold, and the fast-forward engine equal to step-by-step with it on."""

from __future__ import annotations

import numpy as np
import pytest

from latentmoe_sim.cost.base import ConstantStepCost, InstanceCost
from latentmoe_sim.engine import simulate_aggregated
from latentmoe_sim.errors import InputError
from latentmoe_sim.workloads import Poisson, RequestSpecs

STEP = 0.01  # seconds per engine iteration (ConstantStepCost)


def instance(dp: int = 2) -> InstanceCost:
    return InstanceCost(ConstantStepCost(STEP, dp=dp), dp=dp, num_gpus=dp, kv_capacity_tokens=1_000_000)


def specs(arrivals, inputs, outputs) -> RequestSpecs:
    return RequestSpecs(np.asarray(arrivals, dtype=float), np.asarray(inputs, dtype=np.int64),
                        np.asarray(outputs, dtype=np.int64))


def first_token(res, i: int) -> float:
    rec = res.records.sort("request_id")
    return float(rec["first_token_s"][i])


@pytest.mark.parametrize("step_by_step", [False, True])
def test_lone_arrival_waits_for_the_timeout_iteration(step_by_step):
    """Two long requests at t = 0 (one per rank: every rank ready, released at once, counter 0), then a third
    at t = 0.155, during iteration 15. Iteration j runs from j * 10 ms; from iteration 1 on the counter is
    j mod T. The newcomer is ready from iteration 16, but rank 1 has nothing to start, so it is held until the
    iteration whose counter reaches T = 10 (iteration 20, at 0.20 s), which runs its one-step prefill: first
    token at 0.21 s. Without the balance it starts at iteration 16: 0.17 s."""
    s = specs([0.0, 0.0, 0.155], [10, 10, 10], [1000, 1000, 5])
    held = simulate_aggregated(instance(), 1, s, adp_balance_iters=10, step_by_step=step_by_step)
    free = simulate_aggregated(instance(), 1, s, step_by_step=step_by_step)
    assert first_token(held, 2) == pytest.approx(0.21, abs=1e-9)
    assert first_token(free, 2) == pytest.approx(0.17, abs=1e-9)
    assert first_token(held, 0) == first_token(free, 0) == pytest.approx(STEP)


def test_every_rank_ready_releases_at_once():
    """A newcomer on each rank at t = 0.155: every rank can start one in iteration 16, so no hold."""
    s = specs([0.0, 0.0, 0.155, 0.155], [10, 10, 10, 10], [1000, 1000, 5, 5])
    res = simulate_aggregated(instance(), 1, s, adp_balance_iters=10)
    assert first_token(res, 2) == pytest.approx(0.17, abs=1e-9)
    assert first_token(res, 3) == pytest.approx(0.17, abs=1e-9)


def test_idle_rank_releases_at_once():
    """TensorRT-LLM proceeds when some rank has no generation requests: one long request on rank 0, rank 1
    idle; a newcomer at t = 0.155 starts in iteration 16 (0.17 s) although the counter is far from T."""
    s = specs([0.0, 0.155], [10, 10], [1000, 5])
    res = simulate_aggregated(instance(), 1, s, adp_balance_iters=50)
    assert first_token(res, 1) == pytest.approx(0.17, abs=1e-9)


def test_single_rank_instance_ignores_the_balance():
    s = specs([0.0, 0.155], [10, 10], [1000, 5])
    a = simulate_aggregated(instance(dp=1), 1, s, adp_balance_iters=10)
    b = simulate_aggregated(instance(dp=1), 1, s)
    assert a.records.equals(b.records)


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_forward_equals_step_by_step(seed):
    rng = np.random.default_rng(seed)
    n = 300
    s = RequestSpecs(Poisson(40.0).arrival_times(rng, n), rng.integers(1, 3000, n), rng.integers(1, 300, n))
    inst = InstanceCost(ConstantStepCost(STEP, dp=4), dp=4, num_gpus=4, kv_capacity_tokens=60_000)
    fast = simulate_aggregated(inst, 2, s, adp_balance_iters=7, max_seqs=16, max_batch_tokens=2048)
    slow = simulate_aggregated(inst, 2, s, adp_balance_iters=7, max_seqs=16, max_batch_tokens=2048, step_by_step=True)
    a, b = fast.records, slow.records
    assert a.columns == b.columns
    for col in a.columns:
        if a[col].dtype.is_float():
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-9, atol=1e-12, err_msg=col)
        else:
            assert a[col].to_list() == b[col].to_list(), col
    assert fast.steps == slow.steps and fast.events < slow.events
    # the balance really held prefills: the median TTFT is longer than without it
    free = simulate_aggregated(inst, 2, s, max_seqs=16, max_batch_tokens=2048)
    ttft = lambda r: float((r.records["first_token_s"] - r.records["arrival_s"]).median())  # noqa: E731
    assert ttft(fast) > ttft(free)


def test_bad_value_is_an_input_error():
    with pytest.raises(InputError):
        simulate_aggregated(instance(), 1, specs([0.0], [10], [5]), adp_balance_iters=0)

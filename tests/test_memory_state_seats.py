"""Seats of a hybrid (Mamba) model whose per-sequence recurrent state does not fit for max_seqs sequences
(memory.seats_by_state): a hand calculation, and the engine-facing InstanceCost field."""

from __future__ import annotations

import math

from latentmoe_sim.cost import build_instance_cost
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.memory import activation_bytes_per_gpu, kv_bytes_per_token_per_gpu, seats_by_state, weight_bytes_per_gpu
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan


def _hybrid(state: str):
    return load_model("hybrid-73bt-8ba").with_precision(weights="fp8", activations="fp8", ssm_state=state)


def test_fp32_state_of_1024_seats_does_not_fit_and_seats_are_cut_by_hand():
    model, hw, plan = _hybrid("fp32"), load_hw("h100_sxm"), ParallelPlan(tp=2, dp=1, ep=1)
    # Mamba-2 state per sequence (whole model), SSM state and conv window both at the state dtype (the model's
    # convention): 24 layers x (128 heads x 64 x 128 + (8192 + 2 x 8 x 128) x 3) x 4 B = 103,612,416 B; per GPU
    # of TP2 half of it
    state_per_gpu = 24 * (128 * 64 * 128 + (8192 + 2 * 8 * 128) * 3) * 4 / 2
    assert model.state_bytes_per_seq / 2 == state_per_gpu
    hbm_left = (hw.hbm_capacity_bytes - sum(weight_bytes_per_gpu(model, plan).values())
                - activation_bytes_per_gpu(model, plan, 8192, 1024) - hw.runtime_reserve_bytes)
    assert 1024 * state_per_gpu > hbm_left  # 49.4 GiB of state for vLLM's 1024 seats does not fit
    kv = kv_bytes_per_token_per_gpu(model, plan)  # 4 attention layers x 2 x 4 kv heads x 128 x 2 B = 8 KiB
    assert kv == 4 * 2 * 4 * 128 * 2
    want = math.floor(hbm_left / (state_per_gpu + model.max_context * kv))
    assert seats_by_state(model, hw, plan, max_batch_tokens=8192, max_seqs=1024, min_tokens=8192) == want
    assert 300 < want < 400  # 361: each seat keeps its state and 8192 tokens of KV
    inst = build_instance_cost(model, hw, plan, max_batch_tokens=8192, max_seqs=1024)
    assert inst.max_seqs_by_memory == want
    assert inst.kv_capacity_tokens >= want * model.max_context


def test_state_that_fits_leaves_the_seats_alone():
    model, hw, plan = _hybrid("bf16"), load_hw("h100_sxm"), ParallelPlan(tp=2, dp=1, ep=1)
    assert seats_by_state(model, hw, plan, max_batch_tokens=8192, max_seqs=1024, min_tokens=8192) is None
    kimi = load_model("kimi-k2-1t")
    assert seats_by_state(kimi, load_hw("h200_sxm"), ParallelPlan(tp=8, dp=1, ep=1), max_batch_tokens=8192, max_seqs=1024,
                          min_tokens=8192) is None  # no recurrent state
    assert build_instance_cost(model, hw, plan, max_batch_tokens=8192, max_seqs=1024).max_seqs_by_memory is None

"""The per-sequence step overhead (``runtime.seq_overhead_us``, HwProfile.seq_overhead_s): a runtime cost per
decoding sequence of a rank, in series with the GPU work. Hand calculations, the compiled step = the op-by-op
reference, decode stretches = step by step, and the profile field."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from latentmoe_sim.cost import CompiledStepCost, CostModel, RankLoad
from latentmoe_sim.hwprofile_io import load_hw, validate_hw_file
from latentmoe_sim.models.catalog import load_model
from latentmoe_sim.parallel import ParallelPlan

PER_SEQ_S = 150e-6


def _costs(hw_name="h100_sxm", model="hybrid-73bt-8ba", plan=ParallelPlan(tp=2, dp=1, ep=1), q=1):
    m, hw = load_model(model).with_precision(weights="fp8", activations="fp8"), load_hw(hw_name)
    return (CostModel(m, hw, plan, decode_query_tokens=q),
            CostModel(m, replace(hw, seq_overhead_s=PER_SEQ_S), plan, decode_query_tokens=q))


def test_each_decoding_sequence_adds_its_overhead_by_hand():
    base, charged = _costs()
    for d in (1, 16, 128):
        load = [RankLoad(0, 0.0, 0, d, d * 1500)]
        # 150 us x d decodes, nothing else moves (d = 128: 19.2 ms)
        assert charged.step_time(load) - base.step_time(load) == pytest.approx(d * PER_SEQ_S, rel=1e-12)
    prefill_only = [RankLoad(2048, 2048 * 1024.5, 2048, 0, 0)]
    assert charged.step_time(prefill_only) == pytest.approx(base.step_time(prefill_only), rel=1e-12)
    op = [o for o in charged.breakdown([RankLoad(0, 0.0, 0, 16, 16 * 1500)])["ops"] if o.name == "runtime.seq_overhead"]
    assert len(op) == 1 and op[0].bound == "runtime" and op[0].time_s == pytest.approx(16 * PER_SEQ_S)


def test_a_verify_step_pays_it_once_per_sequence_not_per_query_token():
    base, charged = _costs(q=3)  # MTP verify of 1 + 2 draft tokens: the decode features count 3 per sequence
    load = [RankLoad(0, 0.0, 0, 3 * 8, 3 * 8 * 1500)]
    assert charged.step_time(load) - base.step_time(load) == pytest.approx(8 * PER_SEQ_S, rel=1e-12)


@pytest.mark.parametrize("model,hw,plan", [("hybrid-73bt-8ba", "h100_sxm", ParallelPlan(tp=2, dp=1, ep=1)),
                                           ("kimi-k2-1t", "h200_sxm", ParallelPlan(tp=2, dp=4, ep=8))])
def test_compiled_step_and_stretch_equal_the_reference(model, hw, plan):
    _, ref = _costs(hw, model, plan)
    fast = CompiledStepCost(ref)
    rng = random.Random(7)
    for _ in range(60):
        loads = []
        for _ in range(plan.dp):
            d = rng.randint(0, 64)
            chunk = rng.choice([0, rng.randint(1, 2048)])
            loads.append(RankLoad(chunk, chunk * (chunk + 1) / 2.0, chunk, d, d * rng.randint(1, 8000)))
        if any(l[0] or l[3] for l in loads):
            assert fast.step_time(loads) == pytest.approx(ref.step_time(loads), rel=1e-12)
    seqs, kv = [12] * plan.dp, [12 * 3000] * plan.dp
    stretch = fast.decode_stretch(seqs, kv)
    by_step = sum(ref.step_time([RankLoad(0, 0.0, 0, s, k + j * s) for s, k in zip(seqs, kv)]) for j in range(50))
    assert stretch.elapsed(50) == pytest.approx(by_step, rel=1e-9)


def test_profile_field_loads_in_microseconds_and_defaults_to_zero(tmp_path):
    assert load_hw("h100_sxm").seq_overhead_s == 0.0
    text = open(load_hw.__globals__["bundled_dir"]() / "h100_sxm.yaml").read()
    text = text.replace("runtime:\n", 'runtime:\n  seq_overhead_us: {value: 120, source: "test"}\n', 1)
    path = tmp_path / "h100_seq.yaml"
    path.write_text(text)
    assert validate_hw_file(path).seq_overhead_s == pytest.approx(120e-6)

"""MTP / speculative decoding: the acceptance model, closed forms through the engine, tokens conserved."""

from __future__ import annotations

import numpy as np
import pytest

from latentmoe_sim.cli import main
from latentmoe_sim.cost import CompiledStepCost, CostModel, RankLoad, SpecDecode, build_instance_cost, build_step_cost
from latentmoe_sim.cost.base import InstanceCost, LinearStepCost
from latentmoe_sim.cost.spec_decode import SpecDecodeStepCost
from latentmoe_sim.engine import simulate_aggregated
from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan
from latentmoe_sim.workloads import ClosedLoop, RequestSpecs


def test_tokens_per_step_hand_values():
    # 1 + a1 + a1 a2 + a1 a2 a3
    assert SpecDecode(3, (0.9, 0.7, 0.5)).tokens_per_step == pytest.approx(1 + 0.9 + 0.63 + 0.315)
    assert SpecDecode.parse(3, 1.0).tokens_per_step == 4.0
    assert SpecDecode.parse(3, 0.0).tokens_per_step == 1.0
    # DeepSeek-V3 report §5.4.3: one MTP token accepted 85-90 % -> 1.85 tokens per step at the default
    assert SpecDecode.parse(1).tokens_per_step == pytest.approx(1.85)
    # a mean accepted length is matched by one rate: 1 + a + a^2 = 2.0 -> a = 0.618 (golden ratio - 1)
    s = SpecDecode.parse(2, "len:2.0")
    assert s.tokens_per_step == pytest.approx(2.0, abs=1e-9)
    assert s.acceptance[0] == pytest.approx((5**0.5 - 1) / 2, abs=1e-9)


@pytest.mark.parametrize("k,acc", [(0, None), (2, "0.9,0.8,0.7"), (1, "1.2"), (2, "len:3.5"), (1, "fast")])
def test_bad_acceptance_is_one_line_error(k, acc):
    with pytest.raises(InputError):
        SpecDecode.parse(k, acc)


# -- closed forms through the engine ------------------------------------------------------------------------------
# verify: a + b * (query tokens) per step; draft: c per decoding sequence per pass (LinearStepCost closed forms)
A, B, C = 0.010, 0.0001, 0.00002


def mtp_instance(k: int, acc: float, dp: int = 1) -> tuple[InstanceCost, SpecDecode]:
    spec = SpecDecode.parse(k, acc)
    cost = SpecDecodeStepCost(LinearStepCost(A, B, 0.0, dp=dp), LinearStepCost(0.0, C, 0.0, dp=dp), spec)
    return InstanceCost(cost, dp=dp, num_gpus=8, kv_capacity_tokens=10_000_000), spec


def closed(n, prompt, out, conc):
    return RequestSpecs(np.full(n, np.nan), np.full(n, prompt, np.int64), np.full(n, out, np.int64), ClosedLoop(conc))


@pytest.mark.parametrize("k", [1, 3])
def test_acceptance_one_emits_k_plus_one_tokens_per_step(k):
    inst, spec = mtp_instance(k, 1.0)
    d, out = 8, 401
    res = simulate_aggregated(inst, 1, closed(d, 64, out, d), max_batch_tokens=64 * d)
    rec = res.records
    # all 8 prefill in one step, then decode together: a real step verifies (k+1) tokens of each of d
    # sequences and drafts k times; it emits k+1 tokens per sequence
    real_step = A + B * (k + 1) * d + k * C * d
    decode = rec["finish_s"] - rec["first_token_s"]
    steps_real = (out - 1) / (k + 1)
    assert np.allclose(decode.to_numpy(), steps_real * real_step, rtol=1e-9)
    assert int(rec["output_tokens"].sum()) == d * out


@pytest.mark.parametrize("k", [1, 2])
def test_acceptance_zero_is_no_mtp_plus_draft_cost(k):
    inst, _ = mtp_instance(k, 0.0)
    d, out = 8, 101
    res = simulate_aggregated(inst, 1, closed(d, 64, out, d), max_batch_tokens=64 * d)
    no_mtp = A + B * d
    draft_cost = B * k * d + k * C * d  # k more verified tokens per sequence, k draft passes
    tpot = ((res.records["finish_s"] - res.records["first_token_s"]) / (out - 1)).to_numpy()
    assert np.allclose(tpot, no_mtp + draft_cost, rtol=1e-9)


def test_tokens_conserved_and_stretch_equals_step_by_step():
    inst, spec = mtp_instance(2, 0.7, dp=2)
    rng = np.random.default_rng(3)
    n = 60
    specs = RequestSpecs(np.full(n, np.nan), rng.integers(1, 900, n), rng.integers(1, 300, n), ClosedLoop(12))
    fast = simulate_aggregated(inst, 1, specs, max_batch_tokens=512)
    slow = simulate_aggregated(inst, 1, specs, max_batch_tokens=512, step_by_step=True)
    assert int(fast.records["output_tokens"].sum()) == int(specs.output_tokens.sum())
    assert np.allclose(fast.records["finish_s"].to_numpy(), slow.records["finish_s"].to_numpy(), rtol=1e-9)


# -- on the real cost model ----------------------------------------------------------------------------------------

def test_real_model_verify_reads_kv_once_and_tau_scales_step():
    m, hw, plan = load_model("deepseek-v3"), load_hw("h200_sxm"), ParallelPlan(tp=1, dp=8, ep=8)
    one = CostModel(m, hw, plan)
    two = CostModel(m, hw, plan, decode_query_tokens=2)
    core = lambda cm, d, kv: next(o for o in cm.breakdown([RankLoad(0, 0.0, 0, d, d * kv)] * 8)["ops"]
                                  if o.name == "attn.mla_decode_core")  # noqa: E731
    # 2 query tokens per sequence: twice the FLOPs of the core, the same latent-cache bytes
    a, b = core(one, 32, 4000), core(two, 64, 4000)
    assert b.flops == pytest.approx(2 * a.flops)
    # the extra bytes are the 32 more query tokens' activations (61 layers x 128 heads x (576 + 512) x BF16);
    # the latent cache, 61 x 32 x 4000 x 576 x 2 B, is read once either way
    assert b.mem_bytes - a.mem_bytes == pytest.approx(61 * 32 * 128 * (576 + 512) * 2.0)
    loads = [RankLoad(0, 0.0, 0, 48, 48 * 3000)] * 8
    full = build_step_cost(m, hw, plan, spec_decode=SpecDecode.parse(3, 1.0))
    assert full.step_time(loads) * 4 == pytest.approx(full.real_step(loads))
    st = full.decode_stretch([48] * 8, [48 * 3000] * 8)
    assert st.step_time(5) == pytest.approx(full.step_time([RankLoad(0, 0.0, 0, 48, 48 * 3005)] * 8))


def test_mtp_memory_holds_the_draft_layer():
    m, hw, plan = load_model("deepseek-v3"), load_hw("h200_sxm"), ParallelPlan(tp=1, dp=8, ep=8)
    plain = build_instance_cost(m, hw, plan)
    mtp = build_instance_cost(m, hw, plan, spec_decode=SpecDecode.parse(1))
    # one more MLA layer's latent KV per token (576 x BF16) and the draft layer's weights: less KV room
    assert mtp.kv_capacity_tokens < plain.kv_capacity_tokens * 61 / 62 + 1


def test_cli_mtp_raises_throughput_and_reports_it(capsys):
    import json

    base = ["simulate", "--model", "deepseek-v3", "--hw", "h200_sxm", "--dp", "8", "--mode", "decode-only",
            "--input-len", "2000", "--output-len", "200", "--concurrency", "256", "--num-requests", "400", "--json"]
    assert main(base) == 0
    off = json.loads(capsys.readouterr().out)
    assert main(base + ["--mtp", "1", "--mtp-acceptance", "0.9"]) == 0
    on = json.loads(capsys.readouterr().out)
    assert on["mtp_tokens_per_step"] == pytest.approx(1.9) and off["mtp"] is None
    assert 1.0 < on["output_tokens_per_s_per_gpu"] / off["output_tokens_per_s_per_gpu"] < 1.9
    assert main(base[:-1] + ["--mtp-acceptance", "0.9"]) == 2
    assert "--mtp" in capsys.readouterr().err


def test_cli_cost_reports_the_serving_step(capsys):
    import json

    base = ["cost", "--model", "deepseek-v3", "--hw", "h200_sxm", "--dp", "8", "--decode-seqs", "32", "--kv-len", "2000",
            "--json"]
    assert main(base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "serving_step_time_s" not in plain
    assert main(base + ["--mtp", "3", "--mtp-acceptance", "1.0"]) == 0
    mtp = json.loads(capsys.readouterr().out)
    # acceptance 1: every engine step is a quarter of the real (verify 4 + draft 3) step
    assert mtp["serving_step_time_s"] * 4 == pytest.approx(mtp["mtp_real_step_time_s"])
    assert mtp["mtp_real_step_time_s"] > plain["step_time_s"]

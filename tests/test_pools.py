"""Single-pool modes: an ideal source in front of one pool (decode-only, prefill-only)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentmoe_sim import metrics
from latentmoe_sim.cli import main
from latentmoe_sim.cost import RankLoad
from latentmoe_sim.cost.base import InstanceCost, LinearStepCost
from latentmoe_sim.cost.pools import DecodeOnlyStepCost
from latentmoe_sim.engine import simulate_aggregated
from latentmoe_sim.workloads import ClosedLoop, RequestSpecs


def test_decode_only_throughput_is_batch_over_step():
    # every step is a decode step of the full batch: a + b * d seconds for d tokens, whatever the prompt length
    a, b, d, gpus = 0.02, 1e-4, 32, 8
    cost = DecodeOnlyStepCost(LinearStepCost(a, b, 0.0))
    assert cost.step_time([RankLoad(4000, 4000 * 2000.5, 4000, 0, 0)]) == 0.0  # prefill is free
    assert cost.step_time([RankLoad(4000, 4000 * 2000.5, 4000, 3, 300)]) == pytest.approx(a + b * 3)
    inst = InstanceCost(cost, dp=1, num_gpus=gpus, kv_capacity_tokens=10_000_000)
    n = 400
    specs = RequestSpecs(np.full(n, np.nan), np.full(n, 4000, np.int64), np.full(n, 300, np.int64), ClosedLoop(d))
    res = simulate_aggregated(inst, 1, specs, max_batch_tokens=8192, max_seqs=64)
    s = res.summary()
    assert s["output_tokens_per_s_per_gpu"] == pytest.approx(d / (a + b * d) / gpus, rel=0.02)
    # a finishing request leaves d - 1 decodes for the step that admits its successor: TPOT a hair below a + b d
    assert s["tpot_p50_s"] == pytest.approx(a + b * d, rel=1e-3)


def run(capsys, args):
    rc = main(args)
    return rc, capsys.readouterr()


BASE = ["simulate", "--model", "deepseek-v3", "--hw", "h200_sxm", "--dp", "8", "--json", "--num-requests", "120"]


def test_prefill_only_reports_input_tokens_per_gpu(capsys):
    rc, out = run(capsys, BASE + ["--mode", "prefill-only", "--input-len", "2000", "--concurrency", "32"])
    assert rc == 0
    res = json.loads(out.out)
    assert res["input_tokens_per_s_per_gpu"] > 1000
    # only the prefill's token is generated
    assert res["output_tokens_per_s_per_gpu"] == pytest.approx(res["input_tokens_per_s_per_gpu"] / 2000)
    rc, out = run(capsys, BASE + ["--mode", "prefill-only", "--output-len", "5"])
    assert rc == 2 and "--output-len" in out.err


def test_decode_only_cli_faster_than_agg(capsys):
    args = ["--input-len", "2000", "--output-len", "100", "--concurrency", "128"]
    rc, out = run(capsys, BASE + ["--mode", "decode-only"] + args)
    dec = json.loads(out.out)
    rc2, out = run(capsys, BASE + ["--mode", "agg"] + args)
    agg = json.loads(out.out)
    assert rc == rc2 == 0
    assert dec["output_tokens_per_s_per_gpu"] > agg["output_tokens_per_s_per_gpu"]

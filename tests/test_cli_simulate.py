"""`lmsim simulate`: the JSON contract, both modes on the real cost model, and one-line errors."""

import json

import pytest

from latentmoe_sim.cli import main

BASE = ["simulate", "--model", "kimi-k2-1t", "--hw", "h200_sxm", "--json", "--num-requests", "60"]


def run(capsys, args):
    rc = main(args)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_agg_json_contract(capsys, tmp_path):
    rec = tmp_path / "r.parquet"
    rc, out, _ = run(capsys, BASE + ["--mode", "agg", "--dp", "16", "--workload", "decode-heavy", "--output-len", "256",
                                     "--concurrency", "32", "--records", str(rec)])
    assert rc == 0
    res = json.loads(out)
    for key in ("output_tokens_per_s_per_gpu", "tokens_per_s_per_user_p50", "ttft_p50_s", "tpot_p50_s",
                "completed_requests", "num_gpus"):
        assert res[key] is not None, key
    assert res["completed_requests"] == 60 and res["num_gpus"] == 16
    assert res["output_tokens_per_s_per_gpu"] > 0 and res["tpot_p50_s"] > 0
    import polars as pl

    assert pl.read_parquet(rec).height == 60


def test_disagg_json_ttft_includes_transfer(capsys):
    rc, out, _ = run(capsys, BASE + ["--mode", "disagg", "--prefill-dp", "16", "--decode-dp", "16", "--workload",
                                     "prefill-heavy", "--output-len", "64", "--rate", "2"])
    assert rc == 0
    res = json.loads(out)
    assert res["num_gpus"] == 32 and res["completed_requests"] == 60
    assert res["ttft_p50_s"] > 0


def test_disagg_max_batch_tokens_reaches_decode_pool(capsys):
    """--max-batch-tokens is the decode pool's budget: 8,192 tokens with 4,096 seats is accepted (it used to
    fail against the decode pool's fixed 2,048); the prefill pool's budget has one default (8,192)."""
    from latentmoe_sim.engine.disaggregated import DEFAULT_PREFILL_MAX_BATCH_TOKENS
    from latentmoe_sim.point import OperatingPoint

    assert OperatingPoint().prefill_max_batch_tokens == DEFAULT_PREFILL_MAX_BATCH_TOKENS == 8192
    rc, out, err = run(capsys, BASE + ["--mode", "disagg", "--prefill-dp", "16", "--decode-dp", "16", "--output-len", "16",
                                       "--rate", "4", "--max-batch-tokens", "8192", "--max-seqs", "4096"])
    assert rc == 0, err
    assert json.loads(out)["completed_requests"] == 60


def test_plan_that_does_not_fit_exits_3(capsys):
    rc, out, err = run(capsys, BASE + ["--dp", "1"])
    assert rc == 3 and out == ""
    assert err.count("\n") == 1 and "does not fit" in err and "Traceback" not in err


@pytest.mark.parametrize("extra,needle", [
    (["--dp", "16", "--rate", "-1"], "rate"),
    (["--dp", "16", "--concurrency", "0"], "concurrency"),
    (["--dp", "16", "--concurrency", "4", "--workload", "chatty"], "preset"),
    (["--dp", "16", "--trace", "/nonexistent.csv"], "nonexistent"),
    (["--mode", "disagg", "--prefill-dp", "16", "--decode-dp", "16", "--decode-ep", "7", "--rate", "1"], "--decode-ep 7"),
])
def test_bad_input_one_line_exit_2(capsys, extra, needle):
    rc, _, err = run(capsys, BASE + extra)
    assert rc == 2
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_precision_shorthand(capsys):
    """--precision fp4 = NVFP4 checkpoints: routed experts FP4, FP4 activations and dispatch (sim/precision.py)."""
    rc, out, _ = run(capsys, ["cost", "--model", "kimi-k2-1t", "--hw", "gb200_nvl72", "--dp", "8", "--decode-seqs", "8",
                              "--kv-len", "1024", "--precision", "fp4", "--json"])
    fp4 = json.loads(out)["step_time_s"]
    rc2, out2, _ = run(capsys, ["cost", "--model", "kimi-k2-1t", "--hw", "gb200_nvl72", "--dp", "8", "--decode-seqs", "8",
                                "--kv-len", "1024", "--expert-weights-dtype", "fp4", "--activations-dtype", "fp4",
                                "--dispatch-dtype", "fp4", "--json"])
    assert rc == rc2 == 0 and fp4 == json.loads(out2)["step_time_s"]


def test_role_plans_fall_back_to_plain_flags_and_explicit_one_wins(capsys):
    """--decode-dp 1 given explicitly must not be overridden by --dp (a default cannot be told from a 1)."""
    args = BASE + ["--mode", "disagg", "--dp", "16", "--prefill-instances", "1", "--workload", "prefill-heavy",
                   "--output-len", "16", "--rate", "1", "--num-requests", "10"]
    rc, out, _ = run(capsys, args)
    assert rc == 0 and json.loads(out)["num_gpus"] == 32  # both pools take --dp 16
    rc, _, err = run(capsys, args + ["--decode-dp", "1"])
    assert rc == 3 and "does not fit" in err and "TP1 x DP1" in err  # the explicit 1 was used

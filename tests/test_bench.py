"""The GPU benchmark harness's table-writing path, on CPU with a fake timer (no torch needed): it writes the
documented format, the cost model reads it back, the time budget stops it, and a failing shape is skipped."""

from __future__ import annotations

import io

import pytest

from latentmoe_sim.cost.measured import KINDS, MeasuredTables, Query, Sol, read_table
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.kernels import bench

H200 = load_hw("h200_sxm")


def test_bench_columns_are_the_table_format():
    for kind, cols in bench.COLUMNS.items():
        assert cols == KINDS[kind].categorical + KINDS[kind].numeric


def _fake_timer(eff: float, fail_kind: str | None = None):
    sol = Sol(H200)

    def timer(case, warmup, repeats):
        if case.row.get("dtype") == "fp8" and case.kind == fail_kind:
            raise RuntimeError("no FP8 on this GPU")
        return sol.of(case.kind, {k: (float(v) if not isinstance(v, str) else v) for k, v in case.row.items()}) / eff
    return timer


def test_bench_writes_tables_the_cost_model_reads(tmp_path):
    log = io.StringIO()
    written = bench.run(tmp_path, gpu="h200_sxm", timer=_fake_timer(0.5, fail_kind="gemm"), software_str="fake",
                        command="test", log=log)
    grid = bench.cases()
    n_gemm_bf16 = sum(1 for c in grid if c.kind == "gemm" and c.row["dtype"] == "bf16")
    assert written["gemm"] == n_gemm_bf16  # every FP8 GEMM "failed" and was skipped, with a line each
    assert log.getvalue().count("no FP8 on this GPU") == len([c for c in grid if c.kind == "gemm"]) - n_gemm_bf16
    assert set(written) == {"gemm", "moe", "mla_decode", "mla_prefill"}
    t = read_table(tmp_path / "moe.csv")
    assert t.provenance["gpu"] == "h200_sxm" and t.provenance["software"] == "fake" and "timed" in t.provenance["shapes"]
    mt = MeasuredTables(H200, [read_table(tmp_path / f"{k}.csv") for k in written])
    # at a measured point the efficiency is what the fake timer imposed (latency written to 4 digits)
    q = Query("moe", {"dtype": "fp8", "distribution": "balanced", "activation": "swiglu", "tokens": 8.0 * 1024, "hidden": 1792.0,
                      "ffn": 2048.0, "topk": 32.0, "num_experts": 1536.0, "ep": 8.0})
    assert mt.efficiency(q) == pytest.approx(0.5, rel=1e-3)
    assert mt.efficiency(Query("mla_decode", {"kv_dtype": "bf16", "heads": 8.0, "batch": 32.0, "context": 4096.0})) == pytest.approx(0.5, rel=1e-3)


def test_bench_stops_at_the_budget(tmp_path):
    ticks = iter(range(10**6))
    log = io.StringIO()
    written = bench.run(tmp_path, gpu="h200_sxm", timer=_fake_timer(0.5), software_str="fake", budget_s=4.5,
                        clock=lambda: float(next(ticks)), log=log)
    # the clock advances 1 s per reading: shapes start at t = 1..4 (<= 4.5 s after the start at 0), then it stops
    assert sum(written.values()) == 4 and "budget of 4 s reached after 4 of" in log.getvalue()
    assert read_table(tmp_path / "moe.csv").provenance["shapes"].startswith("4 timed")


def test_bench_grid_is_what_the_issue_asks():
    grid = bench.cases()
    moe = [c.row for c in grid if c.kind == "moe"]
    assert {r["hidden"] for r in moe} == {7168, 1792} and {r["ffn"] for r in moe} == {2048}
    assert {r["tokens"] // r["ep"] for r in moe} == {1, 4, 16, 64, 256, 1024, 4096, 16384}
    assert {(1792, 7168), (7168, 1792)} <= {(c.row["n"], c.row["k"]) for c in grid if c.kind == "gemm"}
    assert len(bench.cases(quick=True)) < len(grid) / 10


def test_bench_cli_rejects_bad_repeats(capsys):
    from latentmoe_sim.cli import main

    assert main(["kernels", "bench", "--out", "x", "--repeats", "0"]) == 2
    assert "--repeats" in capsys.readouterr().err


def test_bench_without_a_gpu_is_one_line(capsys, tmp_path):
    from latentmoe_sim.cli import main

    if bench.gpu_problem() is None:  # pragma: no cover - a GPU machine
        pytest.skip("a GPU is available here")
    assert main(["kernels", "bench", "--out", str(tmp_path / "h200_sxm")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lmsim kernels bench:" in err
    assert not (tmp_path / "h200_sxm").exists()

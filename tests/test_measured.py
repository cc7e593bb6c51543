"""Measured operator costs (sim/cost/measured.py, kernels/aic_import.py, `--costs`): interpolation against
hand calculations, the table format, the bundled AIConfigurator subset against the figures quoted in
../shared/reference/aiconfigurator.md, and the cost model's use of it."""

from __future__ import annotations

import json
import math

import pytest

from latentmoe_sim.cli import main
from latentmoe_sim.cost import CompiledStepCost, CostModel, RankLoad
from latentmoe_sim.cost.measured import (
    LogInterp, MeasuredTables, Query, Sol, Table, load_tables, read_table, resolve_costs, write_table,
)
from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan

H200 = load_hw("h200_sxm")


# ---- interpolation ---------------------------------------------------------------------------------------
def test_log_interp_is_exact_at_points_and_geometric_between():
    f = LogInterp([((1.0,), 1.0), ((4.0,), 4.0)])
    assert f([1.0]) == pytest.approx(1.0) and f([4.0]) == pytest.approx(4.0)
    # log-log linear through (1, 1) and (4, 4) is y = x: at 2 it is 2 (the arithmetic mean would be 2.5)
    assert f([2.0]) == pytest.approx(2.0)


def test_log_interp_bilinear_in_log_space():
    # value = x * y^2 at the four corners of [1, 4] x [1, 4] -> log-bilinear reproduces it exactly inside
    pts = [((x, y), x * y * y) for x in (1.0, 4.0) for y in (1.0, 4.0)]
    f = LogInterp(pts)
    assert f([2.0, 2.0]) == pytest.approx(8.0)
    assert f([2.0, 3.0]) == pytest.approx(2.0 * 9.0)


def test_log_interp_holds_edge_within_factor_then_gives_up():
    f = LogInterp([((2.0,), 5.0), ((8.0,), 7.0)], hold=2.0)
    assert f([16.0]) == pytest.approx(7.0) and f([1.0]) == pytest.approx(5.0)
    assert f([17.0]) is None and f([0.9]) is None


def test_log_interp_ragged_subtables():
    # the second axis has different values under each first-axis value
    f = LogInterp([((1.0, 1.0), 1.0), ((1.0, 4.0), 4.0), ((4.0, 2.0), 8.0), ((4.0, 8.0), 8.0)])
    # at x = 4: y = 4 lies between 2 and 8 -> 8; at x = 1: y = 4 -> 4; halfway (x = 2) in log -> sqrt(32)
    assert f([2.0, 4.0]) == pytest.approx(math.sqrt(4.0 * 8.0))


# ---- the table format --------------------------------------------------------------------------------------
def _gemm_table(eff: float, hw=H200, ms=(1, 1024), nks=(1024, 4096)) -> Table:
    sol = Sol(hw)
    rows = []
    for m in ms:
        for n in nks:
            for k in nks:
                s = {"dtype": "bf16", "m": float(m), "n": float(n), "k": float(k)}
                rows.append({**s, "latency_us": sol.of("gemm", s) / eff * 1e6})
    return Table("gemm", {"gpu": hw.name, "source": "synthetic"}, rows)


def test_table_round_trip(tmp_path):
    t = _gemm_table(0.5)
    write_table(tmp_path / "gemm.csv", t)
    back = read_table(tmp_path / "gemm.csv")
    assert back.kind == "gemm" and back.provenance["source"] == "synthetic" and back.provenance["gpu"] == "h200_sxm"
    assert len(back.rows) == len(t.rows)
    for a, b in zip(t.rows, back.rows):
        assert b["m"] == a["m"] and b["latency_us"] == pytest.approx(a["latency_us"], rel=1e-3)


@pytest.mark.parametrize("text, msg", [
    ("# kind: nope\ndtype,m\n", "kind"),
    ("# kind: gemm\ndtype,m,n\n", "columns"),
    ("# kind: gemm\ndtype,m,n,k,latency_us\nbf16,1,2,3,-4\n", "must be > 0"),
    ("# kind: gemm\ndtype,m,n,k,latency_us\nbf16,1,2,x,4\n", "not a number"),
])
def test_bad_tables_name_file_and_field(tmp_path, msg, text):
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=msg):
        read_table(p)


# ---- transfer through efficiency ----------------------------------------------------------------------------
def test_constant_efficiency_table_scales_the_speed_of_light():
    mt = MeasuredTables(H200, [_gemm_table(0.5)])
    # hand calculation, M=1024, N=K=4096 BF16 on H200: 2*1024*4096^2 = 34.36 GFLOP / 989 TFLOP/s = 34.74 us;
    # bytes 4096^2*2 + 1024*8192*2 = 50.33 MB / 4.8 TB/s = 10.5 us -> SOL 34.74 us; at efficiency 0.5: 69.5 us
    q = Query("gemm", {"dtype": "bf16", "m": 1024.0, "n": 4096.0, "k": 4096.0})
    assert mt.time(q) == pytest.approx(2 * 34.36e9 / 989e12, rel=1e-3)
    # a shape between the table's points transfers the same efficiency
    q2 = Query("gemm", {"dtype": "bf16", "m": 300.0, "n": 2000.0, "k": 3000.0})
    assert mt.efficiency(q2) == pytest.approx(0.5)
    # out of reach (N 4x beyond the largest) or an unmeasured dtype: no answer, the roofline stands
    assert mt.efficiency(Query("gemm", {"dtype": "bf16", "m": 8.0, "n": 16384.0 * 2, "k": 1024.0})) is None
    assert mt.efficiency(Query("gemm", {"dtype": "fp8", "m": 8.0, "n": 1024.0, "k": 1024.0})) is None


def test_cost_model_uses_the_table_and_labels_sources():
    model = load_model("kimi-k2-1t")
    plan = ParallelPlan(tp=8, dp=1, ep=8)
    # a synthetic BF16 GEMM table: Kimi-K2's GEMMs are FP8, so only the BF16 ones (router, LM head) change
    mt = MeasuredTables(H200, [_gemm_table(0.25, ms=(1, 64), nks=(128, 65536))])
    roof = CostModel(model, H200, plan)
    meas = CostModel(model, H200, plan, measured=mt)
    loads = [RankLoad(0, 0.0, 0, 32, 32 * 4500)]
    r = {o.name: o for o in roof.breakdown(loads)["ops"]}
    m = {o.name: o for o in meas.breakdown(loads)["ops"]}
    assert m["lm_head"].source == "measured:gemm" and m["lm_head"].roofline_s == pytest.approx(r["lm_head"].time_s)
    assert m["attn.o_proj"].source == "roofline" and m["attn.o_proj"].time_s == r["attn.o_proj"].time_s
    # the LM head: SOL (BF16 weights 7168 x 163840/8, memory-bound) / 0.25
    sol = Sol(H200).compute(m["lm_head"].flops, m["lm_head"].mem_bytes, "bf16")
    assert m["lm_head"].time_s == pytest.approx(sol / 0.25, rel=1e-9)


# ---- the bundled AIConfigurator subset against aiconfigurator.md ---------------------------------------------
def test_bundled_h200_gemm_floor_matches_aiconfigurator_note():
    mt = load_tables(H200)
    assert mt is not None and {"gemm", "moe", "mla_decode", "mla_prefill", "allreduce", "alltoall"} <= set(mt.kinds)
    # aiconfigurator.md §3.5: H200 fp8_block GEMM N=7168 K=2048 has an ~8.8 us floor up to M=128, ~35 % of the
    # memory roofline (our SOL: 7168*2048 B / 4.8 TB/s = 3.06 us)
    for m in (1, 16, 128):
        t = mt.time(Query("gemm", {"dtype": "fp8", "m": float(m), "n": 7168.0, "k": 2048.0}))
        assert 7.5e-6 < t < 10.5e-6, (m, t)
    assert 0.28 < mt.efficiency(Query("gemm", {"dtype": "fp8", "m": 128.0, "n": 7168.0, "k": 2048.0})) < 0.42


def test_bundled_h200_mla_bmm_is_the_measured_row():
    # AIConfigurator h200_sxm mla_bmm_perf (trtllm 1.3.0rc20): mla_gen_pre, fp8, 32 tokens, 8 heads = 0.007037 ms
    mt = load_tables(H200)
    assert mt.time(Query("mla_bmm", {"dtype": "fp8", "phase": "pre", "heads": 8.0, "tokens": 32.0})) == pytest.approx(7.037e-6, rel=1e-3)


def test_bundled_h200_moe_matches_aiconfigurator_note():
    mt = load_tables(H200)
    # aiconfigurator.md §3.5: Kimi-K2 MoE fp8_block, power law 1.01, EP8: 0.42 ms at 128 tokens, 0.75 ms at
    # 1,024, 3.68 ms at 16,384 (the table stops at 16,384)
    shape = {"dtype": "fp8", "distribution": "power_law_1.01", "activation": "swiglu", "hidden": 7168.0, "ffn": 2048.0,
             "topk": 8.0, "num_experts": 384.0, "ep": 8.0}
    for tokens, ms in ((128, 0.42), (1024, 0.75), (16384, 3.68)):
        assert mt.time(Query("moe", {**shape, "tokens": float(tokens)})) == pytest.approx(ms * 1e-3, rel=0.03)


# ---- --costs ------------------------------------------------------------------------------------------------
DONE_WHEN = ["cost", "--model", "kimi-k2-1t", "--hw", "h200_sxm", "--tp", "8", "--ep", "8", "--decode-seqs", "32",
             "--kv-len", "4500", "--json"]


def _run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cost_json_measured_differs_and_names_sources(capsys):
    roof = _run_json(capsys, DONE_WHEN + ["--costs", "roofline"])
    meas = _run_json(capsys, DONE_WHEN + ["--costs", "measured"])
    assert {o["source"] for o in roof["ops"]} == {"roofline"}
    sources = {o["name"]: o["source"] for o in meas["ops"]}
    assert sources["moe.routed_experts"] == "measured:moe" and sources["attn.mla_decode_core"] == "measured:mla_decode"
    assert sources["attn.mla_absorb_q"] == "measured:mla_bmm" and sources["attn.o_proj"] == "measured:gemm"
    assert sources["attn.norm"] == "roofline"  # no norm table
    assert meas["step_time_s"] != pytest.approx(roof["step_time_s"], rel=0.01)
    # the compiled step (what the engine uses) equals the op-by-op reference under measured costs too
    assert meas["compiled_step_time_s"] == pytest.approx(meas["step_time_s"], rel=1e-9)
    for o in meas["ops"]:
        if o["source"] == "roofline":
            assert o["time_s"] == o["roofline_time_s"]


def test_costs_measured_without_tables_is_one_line_error(tmp_path, capsys):
    y = tmp_path / "my_gpu.yaml"
    from latentmoe_sim.hwprofile_io import bundled_dir

    y.write_text((bundled_dir() / "h200_sxm.yaml").read_text().replace("name: h200_sxm", "name: my_gpu"))
    assert main(DONE_WHEN[:4] + [str(y)] + DONE_WHEN[5:] + ["--costs", "measured"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--costs measured" in err and "my_gpu" in err
    # auto on the same GPU quietly keeps the roofline
    assert resolve_costs("auto", load_hw(str(y))) is None


def test_measured_decode_stretch_starts_at_the_step_time():
    model = load_model("kimi-k2-1t")
    cm = CostModel(model, H200, ParallelPlan(tp=8, dp=1, ep=8), measured=resolve_costs("measured", H200))
    step = CompiledStepCost(cm)
    st = step.decode_stretch([32], [32 * 4500])
    assert st.step_time(0) == pytest.approx(step.step_time([RankLoad(0, 0.0, 0, 32, 32 * 4500)]), rel=1e-9)
    # the attention core's efficiency is held along the stretch: 100 steps later it is within 1 % of a fresh step
    later = step.step_time([RankLoad(0, 0.0, 0, 32, 32 * 4600)])
    assert st.step_time(100) == pytest.approx(later, rel=0.01)


def test_site_interp_blends_nearest_sites_by_inverse_square_log_distance():
    from latentmoe_sim.cost.measured import SiteInterp

    one = lambda v: LogInterp([((1.0,), v), ((64.0,), v)])  # noqa: E731 - constant curves over the last axis
    f = SiteInterp({(1.0,): one(2.0), (4.0,): one(8.0), (64.0,): one(1000.0)})
    assert f([4.0, 8.0]) == pytest.approx(8.0)  # an exact site alone
    # at 2: sites 1 and 4 are 1 log2-unit away, 64 is 5 away: weights 1, 1, 1/25 on log values
    w = (math.log(2.0) + math.log(8.0) + math.log(1000.0) / 25) / (2 + 1 / 25)
    assert f([2.0, 8.0]) == pytest.approx(math.exp(w))


# ---- the AIConfigurator converter on a synthetic data tree (no aiconfigurator-core needed) ------------------
def _fake_aic(root):
    import polars as pl

    d = root / "h200_sxm"
    common = {"framework": "TRTLLM", "version": "1.3.0rc20", "device": "NVIDIA H200"}

    def put(rel, rows):
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame([{**common, **r} for r in rows]).write_parquet(p)

    put("gemm/trtllm/1.3.0rc20/gemm_perf.parquet", [
        {"op_name": "gemm", "kernel_source": "torch_flow", "gemm_dtype": "fp8_block", "m": 128, "n": 7168, "k": 2048, "latency": 0.0088},
        {"op_name": "gemm", "kernel_source": "torch_flow", "gemm_dtype": "fp8", "m": 128, "n": 7168, "k": 2048, "latency": 0.005},
        {"op_name": "gemm", "kernel_source": "torch_flow", "gemm_dtype": "bfloat16", "m": 129, "n": 7168, "k": 2048, "latency": 0.01}])
    put("moe/trtllm/1.3.0rc20/moe_perf.parquet", [
        {"op_name": "moe", "kernel_source": k, "moe_dtype": "fp8_block", "num_tokens": 1024, "hidden_size": 7168, "inter_size": 2048,
         "topk": 8, "num_experts": 384, "moe_tp_size": 1, "moe_ep_size": 8, "distribution": "balanced", "latency": lat}
        for k, lat in (("moe_torch_flow", 0.9), ("moe_torch_flow_cutlass", 0.75))])
    put("mla/trtllm/1.3.0rc20/generation_mla_perf.parquet", [
        {"op_name": "mla_generation", "kernel_source": "default", "mla_dtype": "bfloat16", "kv_cache_dtype": "fp8", "num_heads": 8,
         "batch_size": 32, "isl": 1, "tp_size": 8, "step": 4095, "latency": 0.05}])
    put("comm/nccl/2.29.2/nccl_perf.parquet", [
        {"op_name": op, "kernel_source": "NCCL", "nccl_dtype": dt, "num_gpus": 8, "message_size": 1024, "latency": lat}
        for op, dt, lat in (("all_reduce", "half", 0.016), ("alltoall", "half", 0.02), ("all_reduce", "int8", 0.015))])
    put("comm/trtllm/1.3.0rc20/custom_allreduce_perf.parquet", [
        {"op_name": "all_reduce", "kernel_source": "TRTLLM", "allreduce_dtype": "bfloat16", "num_gpus": 8, "message_size": 1024,
         "latency": 0.004, "implementation": "trtllm"}])
    return root


def test_import_aic_converts_units_and_semantics(tmp_path, capsys):
    src = _fake_aic(tmp_path / "aic")
    out = tmp_path / "out"
    assert main(["kernels", "import-aic", "--system", "h200_sxm", "--framework", "trtllm", "--version", "1.3.0rc20",
                 "--aic-data", str(src), "--out", str(out)]) == 0
    g = read_table(out / "h200_sxm" / "gemm.csv")
    # fp8_block -> fp8 (per-tensor fp8 dropped), ms -> us; m = 129 is off the kept grid
    assert [(r["dtype"], r["m"], r["latency_us"]) for r in g.rows] == [("fp8", 128.0, 8.8)]
    assert "Apache-2.0" in g.provenance["license"] and "import-aic" in g.provenance["command"]
    m = read_table(out / "h200_sxm" / "moe.csv").rows
    assert len(m) == 1 and m[0]["latency_us"] == 750.0 and m[0]["activation"] == "swiglu"  # the faster kernel
    d = read_table(out / "h200_sxm" / "mla_decode.csv").rows
    assert d[0]["context"] == 4096.0 and d[0]["kv_dtype"] == "fp8" and d[0]["heads"] == 8.0
    ar = read_table(out / "h200_sxm" / "allreduce.csv").rows
    # 1024 half elements = 2048 bytes; the custom all-reduce (4 us) beats NCCL (16 us)
    assert [(r["bytes"], r["latency_us"]) for r in ar] == [(2048.0, 4.0)]
    a2a = read_table(out / "h200_sxm" / "alltoall.csv").rows
    assert [(r["bytes"], r["latency_us"]) for r in a2a] == [(2048.0, 20.0)]


def test_import_aic_bad_system_is_one_line(tmp_path, capsys):
    assert main(["kernels", "import-aic", "--system", "tpu_v9", "--version", "x", "--aic-data", str(tmp_path)]) == 2
    assert "--system" in capsys.readouterr().err


def test_saturating_last_axis_holds_above_only():
    f = LogInterp([((1.0, 1.0), 2.0), ((1.0, 8.0), 4.0)], hold=2.0, hold_above_last=math.inf)
    assert f([1.0, 1000.0]) == pytest.approx(4.0)  # far above the last axis: the edge
    assert f([1.0, 0.25]) is None  # below it, the usual factor-2 limit
    assert f([4.0, 1000.0]) is None  # other axes keep their limit


def test_validate_passes_costs_to_every_point(monkeypatch):
    from latentmoe_sim.validation import validate as V

    seen = []

    def fake_execute(points, executor, workers, progress=False):
        seen.extend(points)
        return {p.point_id: {"status": "infeasible", "reason": "not run in this test"} for p in points}

    monkeypatch.setattr(V, "execute", fake_execute)
    V.run_validation(only=["latentmoe_h100_c4_latent", "sglang_kimik2_h200"], costs="measured")
    assert seen and {p.costs for p in seen} == {"measured"}


def test_compiled_step_equals_reference_under_measured_costs_for_mixed_ranks():
    model = load_model("kimi-k2-1t-latentmoe")
    cm = CostModel(model, H200, ParallelPlan(tp=1, dp=4, ep=4), measured=resolve_costs("measured", H200))
    loads = [RankLoad(512, 512 * (1024 + 256.5), 1536, 3, 3 * 2000), RankLoad(0, 0.0, 0, 40, 40 * 3000),
             RankLoad(0, 0.0, 0, 0, 0), RankLoad(2048, 2048 * 1024.5, 2048, 0, 0)]
    step = CompiledStepCost(cm)
    assert step.step_time(loads) == pytest.approx(cm.step_time(loads), rel=1e-9)
    # every rank, not only the slowest: the vectorised ratios equal op-by-op measured times
    assert list(step.rank_times(loads)) == pytest.approx(cm.breakdown(loads)["rank_times_s"], rel=1e-9)

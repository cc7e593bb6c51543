"""`lmsim validate`: the measured-results reader, the row -> configuration mapping, the error summaries and
the per-GPU conventions of the simulated metrics (closed forms and invariants, a few rows only)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest

from latentmoe_sim.cli import main
from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.parallel import ParallelPlan
from latentmoe_sim.validation.configure import (REAL_ROUTING_IMBALANCE, REAL_ROUTING_SKEW, Case, Unexpressible, configure,
                                               pool_rows)
from latentmoe_sim.validation.rows import COLUMNS, MTP_ON, parse_measured, read_measured
from latentmoe_sim.validation.runner import simulate_case
from latentmoe_sim.validation.search import candidate_plans
from latentmoe_sim.validation.summary import stats
from latentmoe_sim.validation.validate import DEFAULT_FILE


def _csv(*rows: dict) -> str:
    """A file in the format with the given fields set (the rest blank)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS)
    w.writeheader()
    base = {"source": "test", "source_ref": "-", "framework": "vllm", "weight_dtype": "fp8", "mode": "agg",
            "phase": "both", "confidence": "high", "notes": "a note, with a comma"}
    for r in rows:
        w.writerow(base | r)
    return out.getvalue()


def _row(**fields):
    return parse_measured(_csv(fields))[0]


# ---- reader ----------------------------------------------------------------------------------------

def test_shipped_file_reads_every_row():
    rows = read_measured(DEFAULT_FILE)
    assert len(rows) == 33 and len({r.id for r in rows}) == 33
    by_id = {r.id: r for r in rows}
    assert by_id["ix_dsr1_8k1k_h200"].mtp == 1  # InferenceX's config: MTP=1 with attention DP
    on = parse_measured(_csv({"id": "a", "model": "deepseek-v3", "hw": "h200_sxm", "mtp": "on"}), "test.csv")[0]
    assert on.mtp == MTP_ON  # 'on' = used, depth not stated
    assert by_id["latentmoe_h100_c128_base"].measured == {"output_tps_per_gpu": 1725.9}  # paper Table 5
    assert by_id["latentmoe_h100_c1_latent"].isl is None  # blank stays blank, no default filled in


@pytest.mark.parametrize("fields, message", [
    ({"id": "a", "model": "gpt-4", "hw": "h100_sxm"}, "test.csv:2: column model = 'gpt-4'; allowed: deepseek-v3"),
    ({"id": "a", "model": "deepseek-v3", "hw": "h100"}, "column hw = 'h100'; allowed: h100_sxm"),
    ({"id": "a", "model": "deepseek-v3", "hw": "h100_sxm", "concurrency": "0"}, "column concurrency = 0 must be >= 1"),
    ({"id": "a", "model": "deepseek-v3", "hw": "h100_sxm", "ttft_ms": "-3"}, "column ttft_ms = -3 must be a finite number > 0"),
    ({"id": "a", "model": "deepseek-v3", "hw": "h100_sxm", "mtp": "yes"}, "column mtp = 'yes'; allowed: a whole number >= 0, 'on'"),
])
def test_bad_fields_name_file_line_column_and_range(fields, message):
    with pytest.raises(InputError, match=None) as exc:
        parse_measured(_csv(fields), "test.csv")
    assert message in str(exc.value)


def test_header_and_duplicate_ids_are_checked():
    with pytest.raises(InputError, match="missing columns: .*ttft_ms"):
        parse_measured("id,model\nx,deepseek-v3\n", "f.csv")
    text = _csv({"id": "a", "model": "deepseek-v3", "hw": "h100_sxm"}, {"id": "a", "model": "deepseek-v3", "hw": "h100_sxm"})
    with pytest.raises(InputError, match="f.csv:3: id 'a' appears twice"):
        parse_measured(text, "f.csv")


def test_other_framework_prefix_is_allowed():
    assert _row(id="a", model="deepseek-v3", hw="h100_sxm", framework="other:atom").framework == "other:atom"


# ---- row -> configuration --------------------------------------------------------------------------

def test_table5_row_maps_to_tp2_fp8_with_every_default_stated():
    row = {r.id: r for r in read_measured(DEFAULT_FILE)}["latentmoe_h100_c64_latent"]
    case = configure(row)
    assert isinstance(case, Case)
    assert case.plan == ParallelPlan(tp=2, dp=1, ep=1, pp=1) and case.instances == 1
    # vLLM keeps a NemotronH-family model's SSM state in float32 (FRAMEWORK_SSM_STATE)
    assert dict(case.precision) == {"weights": "fp8", "activations": "fp8", "dispatch": "fp8", "ssm_state": "fp32"}
    assert (case.isl, case.osl, case.concurrency) == (1024, 1024, 64)
    text = " | ".join(case.assumptions)
    assert "isl blank: 1024" in text and "osl blank: 1024" in text and "plan not stated" in text
    assert "Mamba SSM state in fp32" in text


def test_ssm_state_dtype_follows_the_framework_for_mamba_models_only():
    hybrid = dict(id="h", model="hybrid-73bt-8ba", hw="h100_sxm", tp="2", num_gpus="2", concurrency="4",
                  output_tps_per_gpu="100")
    assert dict(configure(_row(**hybrid)).precision)["ssm_state"] == "fp32"
    assert "ssm_state" not in dict(configure(_row(**hybrid | {"framework": "sglang"})).precision)
    kimi = dict(id="k", model="kimi-k2-1t", hw="h200_sxm", tp="8", num_gpus="8", concurrency="4", output_tps_per_gpu="9")
    assert "ssm_state" not in dict(configure(_row(**kimi)).precision)


def test_unexpressible_rows_say_why():
    rows = {r.id: r for r in read_measured(DEFAULT_FILE)}
    assert "includes prefix/KV-cache hits" in configure(rows["ds_prod_prefill"]).reason
    assert isinstance(configure(rows["ds_profile_prefill"]), Case)  # its notes say "excluding cache hits"
    assert "pool sizes unpublished" in configure(rows["ix_dsr1_1k1k_h200"]).reason
    # the Kimi-K2 blog's pools: prefill 7000 tok/s x 32 GPUs / ISL 2000 = 112 req/s; decode 3000 x 96 / OSL 100
    # = 2880 req/s: not one balanced system
    reason = configure(rows["sglang_kimik2_h200"]).reason
    assert "prefill serves 112 req/s, decode 2880 req/s" in reason
    assert isinstance(configure(_row(id="x", model="deepseek-v3", hw="h100_sxm", isl="1", osl="1")), Unexpressible)  # no metric


def test_plan_degrees_and_instances():
    case = configure(_row(id="a", model="hybrid-73bt-8ba", hw="h100_sxm", num_gpus="4", tp="2", concurrency="8",
                          isl="100", osl="10", output_tps_per_gpu="1"))
    assert case.plan == ParallelPlan(tp=2, dp=1, ep=1, pp=1) and case.instances == 2 and case.num_gpus == 4


def test_candidate_plans_on_8_gpus():
    # tp in 1,2,4,8 with dp = 8/tp; EP 1 or 8 (384 experts divide by 8)
    got = {(p.tp, p.dp, p.ep) for p in candidate_plans(8, 8, 384)}
    assert got == {(1, 8, 1), (1, 8, 8), (2, 4, 1), (2, 4, 8), (4, 2, 1), (4, 2, 8), (8, 1, 1), (8, 1, 8)}
    assert {(p.tp, p.dp, p.ep) for p in candidate_plans(8, 8, None)} == {(1, 8, 1), (2, 4, 1), (4, 2, 1), (8, 1, 1)}


# ---- errors and summaries ---------------------------------------------------------------------------

def test_stats_by_hand():
    s = stats([0.1, -0.2, 0.3])
    # |e| sorted 0.1 0.2 0.3: median 0.2; p90 at rank 0.9*2 = 1.8 -> 0.2 + 0.8*0.1 = 0.28; signed median 0.1
    assert s["n"] == 3 and s["median_abs"] == pytest.approx(0.2) and s["p90_abs"] == pytest.approx(0.28)
    assert s["bias"] == pytest.approx(0.1)
    assert stats([])["median_abs"] is None


# ---- simulated metrics follow the format's per-GPU conventions ---------------------------------------

def test_concurrency_one_throughput_is_one_request_at_a_time():
    """Closed loop with one client: output tok/s = OSL / (TTFT + (OSL - 1) TPOT), over the instance's GPUs."""
    case = configure(_row(id="a", model="hybrid-73bt-8ba", hw="h100_sxm", num_gpus="2", tp="2", concurrency="1",
                          isl="512", osl="64", output_tps_per_gpu="1"))
    sim = simulate_case(case)
    per_request_s = sim["ttft_ms"] / 1e3 + 63 * sim["tpot_ms"] / 1e3
    assert sim["output_tps_per_gpu"] == pytest.approx(64 / per_request_s / 2, rel=0.02)
    assert sim["input_tps_per_gpu"] == pytest.approx(sim["output_tps_per_gpu"] * 512 / 64, rel=0.02)


def test_disaggregated_rates_are_per_pool_gpu():
    """Both pools serve the same requests: output/s per decode GPU x decode GPUs / OSL equals input/s per
    prefill GPU x prefill GPUs / ISL (steady state)."""
    row = _row(id="d", model="hybrid-73bt-8ba", hw="h100_sxm", mode="disagg", prefill_gpus="2", prefill_tp="2",
               decode_gpus="4", decode_tp="2", concurrency="32", isl="1000", osl="100", output_tps_per_gpu="1")
    case = configure(row)
    assert case.prefill_instances == 1 and case.decode_instances == 2
    sim = simulate_case(case)  # run_point's stopping rule: a steady window with a 2% throughput CI
    assert sim["output_tps_per_gpu"] * 4 / 100 == pytest.approx(sim["input_tps_per_gpu"] * 2 / 1000, rel=0.05)


# ---- CLI ----------------------------------------------------------------------------------------------

def test_cli_on_a_user_file(tmp_path, capsys):
    f = tmp_path / "mine.csv"
    f.write_text(_csv(
        {"id": "t5", "model": "hybrid-73bt-8ba", "hw": "h100_sxm", "num_gpus": "2", "concurrency": "4", "isl": "256",
         "osl": "32", "output_tps_per_gpu": "300", "tpot_ms": "5"},
        {"id": "nopools", "model": "deepseek-v3", "hw": "h100_sxm", "mode": "disagg", "concurrency": "4", "isl": "256",
         "osl": "32", "output_tps_per_gpu": "300"},
    ))
    assert main(["validate", "--file", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    assert row["id"] == "t5" and set(row["measured"]) == {"output_tps_per_gpu", "tpot_ms"}
    assert row["error"] == pytest.approx(row["simulated"]["output_tps_per_gpu"] / 300 - 1)
    assert row["config"]["plan"].startswith("TP2 x DP1")
    assert out["unexpressible"] == [{"id": "nopools", "reason": "disaggregated row without prefill_gpus/decode_gpus (pool sizes unpublished)"}]
    assert out["median_abs_error"]["output_tps_per_gpu"] == pytest.approx(abs(row["error"]))
    assert main(["validate", "--file", str(f)]) == 0
    text = capsys.readouterr().out
    assert "t5" in text and "not expressible" in text and "nopools: disaggregated row" in text


def test_cli_bad_file_is_one_line_exit_2(tmp_path, capsys):
    f = tmp_path / "bad.csv"
    f.write_text(_csv({"id": "a", "model": "deepseek-v3", "hw": "tpu"}))
    assert main(["validate", "--file", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.csv:2: column hw = 'tpu'" in err
    assert main(["validate", "--file", str(tmp_path / "missing.csv")]) == 2


def test_pool_rows_map_to_single_pool_modes():
    rows = {r.id: r for r in read_measured(DEFAULT_FILE)}
    dec = configure(rows["ds_profile_decode"])
    # 128 decode GPUs at 128 sequences each; context 4096 = prompt 3968 + half of the 256 outputs
    assert dec.mode == "decode-only" and dec.concurrency == 128 * 128 and (dec.isl, dec.osl) == (3968, 256)
    assert dec.plan == ParallelPlan(tp=1, dp=128, ep=128, pp=1)
    pre = configure(rows["sglang_h100_prefill_4096"])
    assert pre.mode == "prefill-only" and pre.osl == 1 and pre.plan == ParallelPlan(tp=1, dp=32, ep=32, pp=1)
    assert pre.tbo  # its notes: "DeepEP + EPLB + two-batch overlap (TBO)"
    # SGLang's DeepGEMM + activation kernel; its large-scale EP launch flags replicate LM head and dense layers
    assert dict(pre.conventions) == {"expert_fusion": "act-kernel", "dp_sharded": "none",
                                     "expert_imbalance": REAL_ROUTING_IMBALANCE, "routing_skew": REAL_ROUTING_SKEW}
    # vLLM: the project's default conventions; a real router's expert popularity
    assert dict(configure(rows["latentmoe_h100_c4_base"]).conventions) == {"routing_skew": REAL_ROUTING_SKEW}
    mtp = configure(replace(rows["ix_dsr1_8k1k_h200"], mtp=MTP_ON))
    assert mtp.mtp == 1 and any("depth not stated" in a for a in mtp.assumptions)
    stated = configure(rows["ix_dsr1_8k1k_h200"])  # plan and MTP depth from InferenceX's benchmark config
    assert stated.plan == ParallelPlan(tp=1, dp=8, ep=8, pp=1) and stated.mtp == 1 and stated.search_gpus is None
    # its config's attention-DP balance is stated, said, and not applied (docs/VALIDATION.md, TTFT)
    assert any("attention-DP balance (timeout_iters 60); NOT applied" in a for a in stated.assumptions)
    assert "options" not in dict(stated.conventions)


def test_framework_deployment_conventions():
    """DP sharding and two-batch overlap follow the framework's deployment (configure.FRAMEWORK_DP_SHARDED,
    FRAMEWORK_TBO): DeepSeek's system replicates everything outside the routed experts and always overlaps two
    micro-batches; SGLang multi-node EP launches with --enable-dp-lm-head --moe-dense-tp-size 1; a plan
    without attention DP has nothing to shard; a searched plan takes the framework's setting."""
    rows = {r.id: r for r in read_measured(DEFAULT_FILE)}
    ds = configure(rows["ds_profile_decode"])
    assert ds.tbo and dict(ds.conventions) == {"dp_sharded": "none"}  # balanced routing: no systematic imbalance
    assert any("always overlaps" in a for a in ds.assumptions) and any("routing balanced" in a for a in ds.assumptions)
    kimi = configure(next(r for r in pool_rows(rows["sglang_kimik2_h200"]) if r.id.endswith(":decode")))
    assert dict(kimi.conventions)["dp_sharded"] == "none" and kimi.tbo  # the OME runtime's --enable-two-batch-overlap
    c4 = dict(configure(rows["latentmoe_h100_c4_base"]).conventions)
    assert "dp_sharded" not in c4 and "expert_imbalance" not in c4  # TP2, DP1, EP1: nothing to shard or balance
    # a searched plan takes the framework's setting and the real-routing imbalance (moot for EP1 candidates)
    searched = configure(rows["ix_kimik25_best_8k1k_h200"])
    assert searched.plan is None and dict(searched.conventions)["dp_sharded"] == "none"
    assert dict(searched.conventions)["expert_imbalance"] == REAL_ROUTING_IMBALANCE
    dsr1 = dict(configure(rows["ix_dsr1_8k1k_h200"]).conventions)
    assert dsr1.pop("mla_decode_overhead_us") == 29.1  # TensorRT-LLM's measured MLA decode-module overhead on H200
    assert dsr1 == {"dp_sharded": "trtllm", "expert_imbalance": REAL_ROUTING_IMBALANCE,  # DP8 x EP8 stated
                    "routing_skew": REAL_ROUTING_SKEW}
    one_node = replace(rows["sglang_h100_prefill_4096"], prefill_gpus=8, num_gpus=8, prefill_ep=8, prefill_dp_attn=8)
    assert "dp_sharded" not in dict(configure(one_node).conventions)  # SGLang's defaults inside one node


def test_disagg_row_with_stated_pools_batch_cap_and_no_eplb():
    """ix_dsr1_1k1k_h100 carries InferenceX's recipe (2 prefill DEP16 instances, 1 decode DEP16 capped at 256
    sequences per GPU, FP8 KV, no EPLB): without EPLB it is not expressible (an unbalanced router's
    imbalance is not modelled); the same row with EPLB maps to the two pools with the decode seat cap."""
    row = {r.id: r for r in read_measured(DEFAULT_FILE)}["ix_dsr1_1k1k_h100"]
    out = configure(row)
    assert isinstance(out, Unexpressible) and "without EPLB" in out.reason
    case = configure(replace(row, notes=row.notes.replace("no EPLB", "EPLB")))
    assert case.mode == "disagg" and case.concurrency == 4916
    assert case.prefill_plan == ParallelPlan(tp=1, dp=16, ep=16) and case.prefill_instances == 2
    assert case.decode_plan == ParallelPlan(tp=1, dp=16, ep=16) and case.decode_instances == 1
    assert case.max_seqs == 256 and any("decode seats capped" in a for a in case.assumptions)
    assert dict(case.precision)["kv_cache"] == "fp8"


def test_real_routing_imbalance_reproduces_sglang_perfect_eplb_ablation():
    """REAL_ROUTING_IMBALANCE: SGLang's DeepSeek-V3 prefill on 32 H100 (EP32, 16,384 tokens per GPU of 4K
    prompts, TBO, DP LM head/dense, DeepGEMM act-kernel) ran 59,337 tokens/s per node with simulated perfect
    EPLB and 50,302 with its real routing (LMSYS large-scale EP blog): the model's ratio between imbalance 1
    and the constant is that 1.180 (within 1%)."""
    from latentmoe_sim.cost import RankLoad, build_step_cost
    from latentmoe_sim.cost.conventions import Conventions
    from latentmoe_sim.models import load_model

    model = load_model("deepseek-v3").with_precision(weights="fp8", activations="fp8", dispatch="fp8")
    hw, plan = load_hw("h100_sxm"), ParallelPlan(tp=1, dp=32, ep=32, dp_sharded=frozenset())
    loads = [RankLoad(16384, 4 * 4096 * 4097 / 2, 16384, 0, 0)] * 32
    step = {x: build_step_cost(model, hw, plan, tbo=True, expert_imbalance=x,
                               conventions=Conventions(expert_fusion="act-kernel")).step_time(loads)
            for x in (1.0, REAL_ROUTING_IMBALANCE)}
    assert step[REAL_ROUTING_IMBALANCE] / step[1.0] == pytest.approx(59_337 / 50_302, rel=0.01)


def test_decode_pool_throughput_is_batch_times_user_rate():
    """Decode-only keeps every seat full: output tok/s per GPU = batch per GPU x tokens/s per user."""
    case = configure(_row(id="d", model="hybrid-73bt-8ba", hw="h100_sxm", mode="disagg", phase="decode",
                          decode_gpus="2", decode_tp="2", decode_batch_per_gpu="8", isl="2048", output_tps_per_gpu="1"))
    assert case.mode == "decode-only" and case.concurrency == 16
    sim = simulate_case(case)
    assert sim["output_tps_per_gpu"] == pytest.approx(8 * sim["tps_per_user"], rel=0.03)
    assert sim["ttft_ms"] is None and sim["input_tps_per_gpu"] is None  # the ideal prefill side is not measured


# ---- calibration ------------------------------------------------------------------------------------

from latentmoe_sim.validation.calibration import parse_calibration  # noqa: E402

CAL = {"name": "t", "fitted_on": ["a"], "held_out": ["b"],
       "layers": [{"match": {"hw": ["h100_sxm"]}, "fields": {"step_overhead_us": 100, "memory_efficiency": 0.9}},
                  {"match": {"hw": ["h100_sxm"], "framework": ["vllm"]}, "fields": {"step_overhead_us": 2500}}]}


def test_calibration_layers_apply_in_order_in_si():
    cal = parse_calibration(CAL, "c.yaml")
    assert cal.hw_fields("h100_sxm", "vllm") == {"step_overhead_s": pytest.approx(2.5e-3), "memory_efficiency": 0.9}
    assert cal.hw_fields("h100_sxm", "sglang") == {"step_overhead_s": pytest.approx(1e-4), "memory_efficiency": 0.9}
    assert cal.hw_fields("h200_sxm", "vllm") == {}


@pytest.mark.parametrize("change, message", [
    ({"layers": [{"fields": {"hbm_bandwidth_TBps": 5}}]}, "hbm_bandwidth_TBps: not calibratable"),
    ({"layers": [{"fields": {"memory_efficiency": 1.5}}]}, "memory_efficiency = 1.5: allowed [0.01, 1]"),
    ({"held_out": ["a"]}, "row 'a' is both in fitted_on and held_out"),
    ({"per_row": {}}, "unknown key 'per_row'"),
])
def test_calibration_file_errors(change, message):
    with pytest.raises(InputError) as exc:
        parse_calibration(CAL | change, "c.yaml")
    assert message in str(exc.value)


def test_step_overhead_calibration_moves_tpot_by_exactly_its_change():
    """A decode pool at a fixed batch: every step is pure decode, so TPOT = step time, and a calibration layer
    that adds 2 ms of step overhead adds 2 ms to TPOT: exactly per decode step; a request's first interval
    (from its ideal prefill, mid-step, to the end of its first decode step) is a partial step, so TPOT over
    the request's osl - 1 intervals may differ by at most one step's change / (osl - 1)."""
    case = configure(_row(id="d", model="hybrid-73bt-8ba", hw="h100_sxm", mode="disagg", phase="decode",
                          decode_gpus="2", decode_tp="2", decode_batch_per_gpu="4", isl="1024", output_tps_per_gpu="1"))
    raw = simulate_case(case)
    cal = parse_calibration({"name": "t", "fitted_on": [], "held_out": [],
                             "layers": [{"fields": {"step_overhead_us": 2500}}]}, "c.yaml")
    # the row (framework vllm) runs its framework's step overhead (configure.FRAMEWORK_RUNTIME), not the profile's
    base_overhead_s = dict(case.runtime).get("step_overhead_s", load_hw("h100_sxm").step_overhead_s)
    assert base_overhead_s == 160e-6
    shifted = simulate_case(case, hw_fields=cal.hw_fields("h100_sxm", "vllm"))
    change_ms = (2.5e-3 - base_overhead_s) * 1e3
    assert shifted["tpot_ms"] - raw["tpot_ms"] == pytest.approx(change_ms, abs=change_ms / (case.osl - 1))
    assert case.osl == 256


def test_cli_uncalibrated_and_calibration_file(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("name: slow\nfitted_on: []\nheld_out: [latentmoe_h100_c1_base]\n"
                 "layers:\n  - match: {framework: [vllm]}\n    fields: {step_overhead_us: 5000}\n")
    assert main(["validate", "--rows", "latentmoe_h100_c1_base", "--calibration", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    assert out["calibration"]["name"] == "slow" and row["group"]["calibration"] == "held-out"
    raw_error = out["uncalibrated"]["errors"]["latentmoe_h100_c1_base"]["output_tps_per_gpu"]
    assert row["error"] < raw_error  # 5 ms per step instead of 0.5 ms: slower than the raw model
    assert main(["validate", "--rows", "latentmoe_h100_c1_base", "--uncalibrated", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["calibration"] is None and out["rows"][0]["error"] == pytest.approx(raw_error)
    assert main(["validate", "--rows", "latentmoe_h100_c1_base", "--json"]) == 0  # the default is the raw model
    assert json.loads(capsys.readouterr().out)["rows"][0]["error"] == pytest.approx(raw_error)


def test_redundant_experts_from_notes_or_fewest_that_divide():
    from latentmoe_sim.validation.configure import redundant_experts

    row = _row(id="a", model="deepseek-v3", hw="h100_sxm", output_tps_per_gpu="1", notes="x; 32 redundant experts")
    assert redundant_experts(row, 144, 256, []) == 32  # DeepSeek's EP144 decode unit: 288 slots, 2 per GPU
    odd = _row(id="b", model="deepseek-v3", hw="h100_sxm", output_tps_per_gpu="1", notes="96 redundant experts")
    notes = []
    assert redundant_experts(odd, 72, 256, notes) == 32 and "32 redundant expert slots" in notes[0]  # 352 % 72 != 0
    assert redundant_experts(odd, 8, 256, []) == 96  # stated, and 352 slots divide over 8
    plain = _row(id="c", model="deepseek-v3", hw="h100_sxm", output_tps_per_gpu="1")
    assert redundant_experts(plain, 8, 256, []) == 0 and redundant_experts(plain, 96, 384, []) == 0


def test_calibration_travels_in_the_operating_point():
    from latentmoe_sim.point import OperatingPoint, run_point

    base = OperatingPoint(model="hybrid-73bt-8ba", hw="h100_sxm", tp=2, concurrency=1, num_requests=8)
    cal = OperatingPoint(model="hybrid-73bt-8ba", hw="h100_sxm", tp=2, concurrency=1, num_requests=8,
                         hw_fields={"step_overhead_s": 5e-3})
    assert base.point_id != cal.point_id and cal.hw_fields == (("step_overhead_s", 5e-3),)
    assert run_point(OperatingPoint(hw_fields={"no_such_field": 1.0}, concurrency=1))["status"] == "infeasible"


def test_pools_measured_separately_become_two_pool_rows():
    from latentmoe_sim.validation.configure import pool_rows

    row = {r.id: r for r in read_measured(DEFAULT_FILE)}["sglang_kimik2_h200"]
    pre, dec = pool_rows(row)
    assert (pre.id, pre.phase, pre.measured) == ("sglang_kimik2_h200:prefill", "prefill", {"input_tps_per_gpu": 7000.0})
    assert (dec.id, dec.phase, dec.measured) == ("sglang_kimik2_h200:decode", "decode", {"output_tps_per_gpu": 3000.0})
    assert dec.isl == 2000 + 100 // 2  # the mean decode context
    case = configure(dec)
    assert case.concurrency == 480 * 96 and case.plan.redundant_experts == 96  # "96 redundant experts on decode"
    assert configure(pre).plan.redundant_experts == 0
    assert pool_rows(row.__class__(**{**row.__dict__, "mode": "agg"})) == []


def test_every_calibratable_field_is_a_profile_field():
    from latentmoe_sim.validation.calibration import CALIBRATABLE, field_spec

    for name in CALIBRATABLE:
        assert field_spec(name).attr  # a rename in the profile schema must be followed here


def test_shipped_calibration_names_real_rows_and_fits_only_guessed_constants():
    from latentmoe_sim.validation.calibration import load_calibration
    from latentmoe_sim.validation.validate import expand_rows

    cal = load_calibration("hopper")
    ids = {r.id for r in expand_rows(read_measured(DEFAULT_FILE))}
    assert set(cal.fitted_on) <= ids and set(cal.held_out) <= ids and cal.fitted_on and cal.held_out
    assert not set(cal.fitted_on) & set(cal.held_out)
    fitted = {name for layer in cal.layers for name in layer.fields}
    # the profile constants sourced as "guess: ... (calibrate)" in hwprofiles/h100_sxm.yaml, nothing cited
    assert fitted <= {"comm_efficiency", "scaleup_latency_us", "step_overhead_us"}

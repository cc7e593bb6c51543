"""Scale-up fabric types (switch | full-mesh), fabric-neutral field names, old files, AMD Instinct profiles."""

from __future__ import annotations

import pytest
import yaml

from latentmoe_sim.cost import CostModel, RankLoad
from latentmoe_sim.cost.roofline import Roofline
from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import bundled_dir, load_hw, validate_hw_file
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan


def test_full_mesh_bandwidth_follows_the_peers_in_the_group():
    mi = load_hw("mi300x")
    assert mi.scaleup_fabric == "full-mesh"
    # 7 xGMI links of 64 GB/s per direction: a pair gets one link, the whole node all seven (= 448 GB/s)
    assert mi.scaleup_bandwidth(2) == pytest.approx(64e9)
    assert mi.scaleup_bandwidth(4) == pytest.approx(3 * 64e9)
    assert mi.scaleup_bandwidth(8) == pytest.approx(448e9)
    assert mi.scaleup_bandwidth(64) == pytest.approx(448e9)  # a bigger group still has only 7 peers in the node
    h = load_hw("h200_sxm")
    assert h.scaleup_fabric == "switch" and h.scaleup_bandwidth(2) == h.scaleup_bandwidth(8) == 450e9


def test_tp2_allreduce_on_a_mesh_uses_one_link():
    mi = load_hw("mi300x")
    m = load_model("qwen3-235b-a22b")
    cm = CostModel(m, mi, ParallelPlan(tp=2, ep=2))
    op = next(o for o in cm.rank_breakdown(RankLoad(0, 0.0, 0, 64, 64 * 1000)) if o.name == "attn.tp_allreduce")
    # ring all-reduce: 2 (tp-1)/tp x h x 2 B per token = 4096 x 2 B x 64 tokens per layer, over ONE 64 GB/s link
    per_layer_bytes = 2 * (2 - 1) / 2 * 4096 * 2.0 * 64
    t = per_layer_bytes / (64e9 * mi.comm_efficiency) + mi.nvlink_latency_s
    assert op.time_s / op.count == pytest.approx(t)


def test_ep8_alltoall_on_a_mesh_uses_all_seven_links():
    mi = load_hw("mi355x")
    r = Roofline(mi)
    t, _ = r.comm_time(1e9, 0.0, group=8)
    assert t == pytest.approx(1e9 / (7 * 76.8e9 * mi.comm_efficiency) + mi.nvlink_latency_s)


def _doc(name="h100_sxm"):
    return yaml.safe_load((bundled_dir() / f"{name}.yaml").read_text())


def test_old_files_with_nvlink_names_keep_loading(tmp_path):
    doc = _doc()
    inter = doc["interconnect"]
    for old, new in (("nvlink_GBps_per_direction", "scaleup_GBps_per_direction"), ("nvlink_domain_size", "scaleup_domain_size"),
                     ("nvlink_latency_us", "scaleup_latency_us")):
        inter[old] = inter.pop(new)
    del inter["scaleup_fabric"]
    f = tmp_path / "old.yaml"
    f.write_text(yaml.safe_dump(doc))
    old, new = validate_hw_file(f), load_hw("h100_sxm")
    assert old.scaleup_bandwidth_bytes_per_s == new.scaleup_bandwidth_bytes_per_s == 450e9
    assert old.scaleup_domain_size == 8 and old.scaleup_fabric == "switch"
    inter["scaleup_domain_size"] = inter["nvlink_domain_size"]
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="nvlink_domain_size"):
        validate_hw_file(f)


def test_full_mesh_needs_the_per_peer_bandwidth(tmp_path):
    doc = _doc("mi300x")
    del doc["interconnect"]["scaleup_GBps_per_peer"]
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="scaleup_GBps_per_peer"):
        validate_hw_file(f)
    doc = _doc("mi300x")
    doc["interconnect"]["scaleup_fabric"]["value"] = "torus"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="scaleup_fabric"):
        validate_hw_file(f)


@pytest.mark.parametrize("name,bf16,hbm_tbps,fp4", [("mi300x", 1307.4, 5.3, None), ("mi325x", 1307.4, 6.0, None),
                                                    ("mi355x", 2516.6, 8.0, 10066.4)])
def test_amd_profiles_carry_their_datasheet_numbers_and_sources(name, bf16, hbm_tbps, fp4):
    p = load_hw(name)
    assert p.peak_flops["bf16"] == pytest.approx(bf16 * 1e12)
    assert p.hbm_bandwidth_bytes_per_s == pytest.approx(hbm_tbps * 1e12)
    assert p.peak_flops.get("fp4") == (None if fp4 is None else pytest.approx(fp4 * 1e12))
    assert all(src.strip() for src in p.sources.values()) and "scaleup_fabric" in p.sources


def test_simulate_expresses_an_mi355x_row_and_a_deepseek_fp4_mtp_row(capsys):
    """The two kinds of published rows issue 11 names: DeepSeek-R1 FP4 + MTP disaggregated on GB200 NVL72
    (InferenceX 2026-05-22) and DeepSeek-R1 FP4 on MI355X TP8 (InferenceX sglang); small runs, shape only."""
    import json

    from latentmoe_sim.cli import main

    common = ["simulate", "--model", "deepseek-v3", "--precision", "fp4", "--workload", "prefill-heavy",
              "--input-len", "1024", "--output-len", "64", "--num-requests", "60", "--json"]
    assert main(common + ["--hw", "mi355x", "--tp", "8", "--ep", "1", "--concurrency", "16"]) == 0
    amd = json.loads(capsys.readouterr().out)
    assert amd["precision_ran"] == "experts FP4, attention/dense FP8, embedding BF16" and amd["num_gpus"] == 8
    assert main(common + ["--hw", "gb200_nvl72", "--mode", "disagg", "--mtp", "1", "--prefill-tp", "4", "--prefill-ep", "4",
                          "--decode-dp", "16", "--decode-ep", "16", "--concurrency", "32"]) == 0
    nv = json.loads(capsys.readouterr().out)
    assert nv["mtp_tokens_per_step"] == pytest.approx(1.85) and nv["num_gpus"] == 20

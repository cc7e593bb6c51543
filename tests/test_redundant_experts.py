"""Redundant experts (EPLB): E + R slots over EP ranks, memory and weight traffic count the copies."""

from __future__ import annotations

import pytest

from latentmoe_sim.cli import main
from latentmoe_sim.cost.ops import moe_group_ops
from latentmoe_sim.cost.routing import busiest_pairs_ratio
from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.memory import weight_bytes_per_gpu
from latentmoe_sim.models import load_model
from latentmoe_sim.parallel import ParallelPlan

DSV3 = load_model("deepseek-v3")  # 256 routed experts, 58 MoE layers, FP8 weights


def test_ep72_needs_redundant_experts():
    with pytest.raises(InputError, match="redundant-experts"):
        ParallelPlan(tp=1, dp=72, ep=72).validate(256)
    # DeepSeek's decode unit: EP144 with 32 redundant experts -> 288 slots, 2 per GPU (open-infra-index day 6)
    ParallelPlan(tp=1, dp=144, ep=144, redundant_experts=32).validate(256)
    ParallelPlan(tp=1, dp=72, ep=72, redundant_experts=32).validate(256)
    with pytest.raises(InputError):
        ParallelPlan(tp=1, dp=72, ep=72, redundant_experts=-8).validate(256)


def test_memory_counts_the_copies():
    plan = ParallelPlan(tp=1, dp=72, ep=72, redundant_experts=32)
    w = weight_bytes_per_gpu(DSV3, plan)["routed_experts"]
    # 288 / 72 = 4 experts per GPU x 58 layers x (3 x 7168 x 2048) params x 1 B (FP8)
    assert w == pytest.approx(4 * 58 * 3 * 7168 * 2048 * 1.0)


def test_weight_traffic_counts_the_copies_at_saturation():
    hw = load_hw("h200_sxm")
    # with enough tokens every slot is touched: each GPU streams its 4 slots, as EP64 without copies does
    big = 1e7
    red = {g.name: g for g in moe_group_ops(DSV3, ParallelPlan(tp=1, dp=72, ep=72, redundant_experts=32), hw, big, big / 72)}
    plain = {g.name: g for g in moe_group_ops(DSV3, ParallelPlan(tp=1, dp=64, ep=64), hw, big, big / 64)}
    weights = 4 * 3 * 7168 * 2048 * 1.0
    act = lambda g, ep: g.mem_bytes - weights  # noqa: E731  (per layer; activations scale with pairs per slot)
    # 64/72 of the pairs per slot, each times its busiest-rank ratio (1 + O(1/sqrt(1e7)), test_cost_routing)
    ratio = busiest_pairs_ratio(288, 8, 72, big) / busiest_pairs_ratio(256, 8, 64, big)
    assert act(red["moe.routed_experts"], 72) / act(plain["moe.routed_experts"], 64) == pytest.approx(64 / 72 * ratio, rel=1e-6)
    assert ratio == pytest.approx(1.0, abs=1e-3)


def test_cli_flag_and_error(capsys):
    assert main(["memory", "--model", "deepseek-v3", "--hw", "h200_sxm", "--dp", "72", "--redundant-experts", "32",
                 "--json"]) in (0, 2)
    assert "+32 redundant" in capsys.readouterr().out
    assert main(["memory", "--model", "deepseek-v3", "--hw", "h200_sxm", "--dp", "72"]) == 2
    assert "--redundant-experts" in capsys.readouterr().err


def test_sweep_search_adds_eplb_slots_when_ep_does_not_divide():
    from latentmoe_sim.schema.experiment import Plan, Search
    from latentmoe_sim.sweep.grid import _plan_fields, _plans

    hw = load_hw("h200_sxm")
    # DeepSeek-V3 on 12 GPUs (TP1 x DP12, EP12): 256 % 12 = 4, so EPLB adds 8 slots (264 = 12 x 22)
    none = _plans("all", Search(tp=[1], dp=[12], ep="full"), DSV3, hw, 12)
    eplb = _plans("all", Search(tp=[1], dp=[12], ep="full", redundant_experts="eplb"), DSV3, hw, 12)
    assert none == [] and [p.redundant_experts for p in eplb] == [8]
    # EP that divides keeps R = 0; an explicit plan carries its own R into the point's fields
    assert [p.redundant_experts for p in _plans("all", Search(tp=[1], dp=[8], redundant_experts="eplb"), DSV3, hw, 8)] == [0]
    explicit = _plans([Plan(tp=1, dp=72, ep=72, redundant_experts=32)], Search(), DSV3, hw, 72)
    assert _plan_fields(explicit[0], "decode")["decode_redundant_experts"] == 32

"""Disaggregated serving: prefill pool, KV transfer over shared links, decode pool."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latentmoe_sim.cost.base import ConstantStepCost, InstanceCost, LinearStepCost
from latentmoe_sim.engine import simulate_disaggregated
from latentmoe_sim.engine.disaggregated import link_params
from latentmoe_sim.errors import InputError
from latentmoe_sim.workloads import ClosedLoop, Poisson, RequestSpecs

KV_BYTES = 70_000.0
NVL_BW, SO_BW, NVL_LAT, SO_LAT = 450e9, 50e9, 4e-6, 2e-5


def inst(step=0.05, gpus=4, kv=200_000, dp=1, cost=None, **kw) -> InstanceCost:
    links = dict(kv_bytes_per_token=KV_BYTES, nvlink_bandwidth_bytes_per_s=NVL_BW, scaleout_bandwidth_bytes_per_s=SO_BW,
                 nvlink_latency_s=NVL_LAT, scaleout_latency_s=SO_LAT, nvlink_domain_size=8)
    links.update(kw)
    return InstanceCost(cost or ConstantStepCost(step, dp=dp), dp=dp, num_gpus=gpus, kv_capacity_tokens=kv, **links)


def specs(arrivals, inputs, outputs) -> RequestSpecs:
    n = len(inputs)
    return RequestSpecs(np.broadcast_to(np.asarray(arrivals, float), (n,)).copy(), np.asarray(inputs, np.int64),
                        np.broadcast_to(np.asarray(outputs, np.int64), (n,)).copy())


@pytest.mark.parametrize("pre_gpus, dec_gpus, pre_shards, dec_shards, kind, pair_bw, lat", [
    (4, 4, 1, 1, "nvlink", 450e9, 4e-6),  # MLA: one GPU's NVLink moves the whole latent
    (4, 8, 4, 8, "scale-out", 200e9, 2e-5),  # GQA over TP4 -> TP8: 4 shards in parallel, 4 x 50 GB/s
    (2, 8, 1, 1, "scale-out", 50e9, 2e-5),  # MLA over scale-out: one NIC
])
def test_lone_request_ttft_includes_the_transfer(pre_gpus, dec_gpus, pre_shards, dec_shards, kind, pair_bw, lat):
    """A lone 5,000-token request (70 kB/token + 1 MB state): the transfer runs at one rank pair's
    bandwidth, whatever the instances' GPU counts."""
    prompt, out, pstep, dstep = 5000, 10, 0.05, 0.01
    pre = inst(pstep, pre_gpus, state_bytes_per_seq=1e6, kv_shards_per_rank=pre_shards)
    dec = inst(dstep, dec_gpus, kv_shards_per_rank=dec_shards)
    assert link_params(pre, dec) == (pair_bw, pair_bw, lat, kind)  # dp = 1: the ingress is one pair
    transfer = (prompt * KV_BYTES + 1e6) / pair_bw + lat
    for step_by_step in (False, True):
        res = simulate_disaggregated(pre, 1, dec, 1, specs([0.0], [prompt], [out]), step_by_step=step_by_step)
        rec = res.records.row(0, named=True)
        assert rec["kv_transfer_s"] == pytest.approx(transfer, rel=1e-12)
        assert rec["first_token_s"] == pytest.approx(pstep + transfer, rel=1e-12)
        assert rec["finish_s"] == pytest.approx(pstep + transfer + (out - 1) * dstep, rel=1e-12)
        assert rec["prefill_instance"] == 0 and rec["instance"] == 1
        assert res.num_gpus == pre_gpus + dec_gpus


def test_kimi_mla_transfer_hand_value():
    """Kimi-K2 (MLA, 70,272 B/token) from a TP1 x DP16 prefill instance to a TP1 x DP16 decode instance on
    H200 (scale-out, 400 Gb/s x 0.8 per GPU): an 8,192-token prompt moves 575.7 MB over one NIC in
    14.39 ms + 10 us, not over 16 NICs."""
    from latentmoe_sim.cost import build_instance_cost
    from latentmoe_sim.hwprofile_io import load_hw
    from latentmoe_sim.models import load_model
    from latentmoe_sim.parallel import ParallelPlan

    k, hw = load_model("kimi-k2-1t"), load_hw("h200_sxm")
    pre = build_instance_cost(k, hw, ParallelPlan(tp=1, dp=16, ep=16), max_batch_tokens=8192)
    dec = build_instance_cost(k, hw, ParallelPlan(tp=1, dp=16, ep=16))
    ingress, pair, lat, kind = link_params(pre, dec)
    assert kind == "scale-out" and pair == 40e9 and ingress == 16 * 40e9 and lat == pytest.approx(1e-5)
    assert 8192 * k.kv_bytes_per_token / pair + lat == pytest.approx(0.0144017056, rel=1e-9)


def test_long_prompt_is_chunked_across_prefill_steps():
    res = simulate_disaggregated(inst(0.05, kv_bytes_per_token=0.0), 1, inst(0.01), 1, specs([0.0], [20_000], [3]),
                                 prefill_max_batch_tokens=8192)
    assert res.records["first_token_s"][0] == pytest.approx(3 * 0.05 + NVL_LAT)


def test_prefill_batches_prompts_up_to_the_budget():
    res = simulate_disaggregated(inst(0.05, kv_bytes_per_token=0.0), 1, inst(0.01), 1,
                                 specs([0.0], [3000] * 3, [2]), prefill_max_batch_tokens=8192)
    # 3000 + 3000 + 2192 in step 1 (the third chunked), its last 808 in step 2
    ends = res.records["first_token_s"].to_numpy() - NVL_LAT
    np.testing.assert_allclose(ends, [0.05, 0.05, 0.10])


def test_transfers_into_one_decode_instance_share_its_link():
    # two prompts prefilled in the same step: their KV moves at the same time into a one-rank decode
    # instance, each at half of its ingress (one rank pair of 4 shards x 50 GB/s)
    a, b = 1000, 3000
    pre, dec = inst(0.05, 4, kv_shards_per_rank=4), inst(0.01, 8, kv_shards_per_rank=4)
    bw = 200e9
    res = simulate_disaggregated(pre, 1, dec, 1, specs([0.0], [a, b], [5]))
    xfer = res.records["kv_transfer_s"].to_numpy()
    ba, bb = a * KV_BYTES, b * KV_BYTES
    np.testing.assert_allclose(xfer, [2 * ba / bw + SO_LAT, (ba + bb) / bw + SO_LAT], rtol=1e-12)


def test_decode_ranks_receive_in_parallel_up_to_the_pair_cap():
    """A decode instance of 2 ranks (MLA, one NIC each, 50 GB/s): 2 transfers each run at the full pair
    rate; 3 transfers share 2 pairs' ingress, 100/3 GB/s each, until the first lands."""
    pre = inst(0.05, 1, dp=1)
    dec = inst(0.01, 8, dp=2, cost=ConstantStepCost(0.01, dp=2))
    two = simulate_disaggregated(pre, 1, dec, 1, specs([0.0], [1000, 1000], [3]), prefill_max_batch_tokens=4096)
    np.testing.assert_allclose(two.records["kv_transfer_s"].to_numpy(), 1000 * KV_BYTES / 50e9 + SO_LAT, rtol=1e-12)
    three = simulate_disaggregated(pre, 1, dec, 1, specs([0.0], [1000, 1000, 1000], [3]), prefill_max_batch_tokens=4096)
    np.testing.assert_allclose(three.records["kv_transfer_s"].to_numpy(), 1000 * KV_BYTES / (100e9 / 3) + SO_LAT,
                               rtol=1e-12)


def test_staggered_transfers_processor_sharing_is_exact():
    # A starts alone at 0.05, B joins at 0.07 (one prefill instance each): A drains alone, then shares
    pre, dec = inst(0.05, 1), inst(0.01, 8)
    bw = SO_BW * 1
    prompt = 20_000  # 1.4 GB: 0.028 s alone
    res = simulate_disaggregated(pre, 2, dec, 1, specs([0.0, 0.02], [prompt, prompt], [2]),
                                 prefill_max_batch_tokens=32_768)
    nbytes = prompt * KV_BYTES
    left = nbytes - 0.02 * bw  # A's bytes when B starts; both then drain at bw / 2
    a_done = 0.07 + 2 * left / bw
    b_done = a_done + (nbytes - left) / bw  # B received `left` while sharing; the rest alone
    expected = [a_done - 0.05 + SO_LAT, b_done - 0.07 + SO_LAT]
    np.testing.assert_allclose(res.records["kv_transfer_s"].to_numpy(), expected, rtol=1e-12)


def test_transfers_to_different_decode_instances_do_not_share():
    pre, dec = inst(0.05, 4, kv_shards_per_rank=4), inst(0.01, 8, kv_shards_per_rank=4)
    res = simulate_disaggregated(pre, 1, dec, 2, specs([0.0], [1000, 1000], [5]))
    assert res.records["instance"].to_list() == [1, 2]
    np.testing.assert_allclose(res.records["kv_transfer_s"].to_numpy(), 1000 * KV_BYTES / 200e9 + SO_LAT)


def test_one_token_requests_finish_at_the_prefill():
    res = simulate_disaggregated(inst(0.05), 1, inst(0.01), 1, specs([0.0], [100], [1]))
    rec = res.records.row(0, named=True)
    assert rec["first_token_s"] == rec["finish_s"] == pytest.approx(0.05)
    assert rec["kv_transfer_s"] == 0.0 and rec["instance"] == 0


def test_decode_admission_waits_for_kv_room():
    # the decode rank holds one request's KV at a time: the second waits for the first to finish
    pre, dec = inst(0.05, kv_bytes_per_token=0.0), inst(0.01, kv=1200)
    res = simulate_disaggregated(pre, 1, dec, 1, specs([0.0], [1000, 1000], [100]))
    rec = res.records
    # both land together; the second's first token waits for a seat (TTFT, as in aggregated serving)
    assert rec["first_token_s"][0] == pytest.approx(0.05 + NVL_LAT)
    assert rec["first_token_s"][1] == pytest.approx(rec["finish_s"][0])
    assert rec["kv_transfer_s"][0] == rec["kv_transfer_s"][1] == pytest.approx(NVL_LAT)
    assert rec["finish_s"][0] == pytest.approx(0.05 + NVL_LAT + 99 * 0.01)
    assert rec["finish_s"][1] == pytest.approx(rec["finish_s"][0] + 99 * 0.01)
    assert rec["preemptions"].sum() == 0


def test_prefill_blocks_are_held_until_the_kv_lands():
    # the prefill rank holds one prompt: the second prefill starts only when the first KV has left
    pre, dec = inst(0.05, gpus=4, kv=1024, kv_shards_per_rank=4), inst(0.01, gpus=8, kv_shards_per_rank=4)
    transfer = 1000 * KV_BYTES / 200e9 + SO_LAT
    res = simulate_disaggregated(pre, 1, dec, 1, specs([0.0], [1000, 1000], [2]))
    first = res.records["first_token_s"].to_numpy()
    np.testing.assert_allclose(first, [0.05 + transfer, 0.05 + transfer + 0.05 + transfer], rtol=1e-12)


def test_random_workload_all_finish_deterministically():
    rng = np.random.default_rng(9)
    n = 300
    sp = RequestSpecs(np.full(n, np.nan), rng.integers(1, 8000, n), rng.integers(1, 500, n), ClosedLoop(32))
    pre = inst(cost=LinearStepCost(0.003, 3e-5, 1e-9, dp=2), dp=2, gpus=8, kv=20_000)
    dec = inst(cost=LinearStepCost(0.005, 2e-6, 2e-9, dp=2), dp=2, gpus=8, kv=12_000)
    a = simulate_disaggregated(pre, 2, dec, 3, sp, router="round-robin")
    b = simulate_disaggregated(pre, 2, dec, 3, sp, router="round-robin")
    assert a.records.equals(b.records)
    rec = a.records
    assert rec.height == n and rec["request_id"].to_list() == list(range(n))
    assert (rec["output_tokens"].to_numpy() == sp.output_tokens).all()
    assert (rec["first_token_s"] >= rec["arrival_s"]).all() and (rec["finish_s"] >= rec["first_token_s"]).all()
    multi = rec.filter(rec["output_tokens"] > 1)
    assert set(multi["instance"].to_list()) <= {2, 3, 4} and set(rec["prefill_instance"].to_list()) <= {0, 1}
    assert (multi["kv_transfer_s"] > 0).all()
    s = a.summary()
    assert s["num_gpus"] == 40 and s["completed_requests"] == n


def test_poisson_load_queues_at_the_prefill_pool():
    n, pstep = 2000, 0.05
    rng = np.random.default_rng(1)
    sp = RequestSpecs(Poisson(0.5 / pstep).arrival_times(rng, n), np.full(n, 100), np.full(n, 2))
    res = simulate_disaggregated(inst(pstep, kv_bytes_per_token=0.0), 1, inst(0.001), 1, sp, prefill_max_seqs=1)
    rec = res.records
    wait = (rec["first_token_s"] - rec["arrival_s"]).to_numpy() - pstep - NVL_LAT
    assert wait.mean() == pytest.approx(0.5 * pstep / (2 * 0.5), rel=0.15)  # M/D/1 at the prefill pool


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(num_prefill=0), "num_prefill"),
        (dict(num_decode=-1), "num_decode"),
        (dict(prefill_max_seqs=9000), "prefill_max_seqs"),
        (dict(decode_max_seqs=4096, decode_max_batch_tokens=2048), "decode_max_seqs"),
        (dict(router="nope"), "routing policy"),
    ],
)
def test_bad_arguments_are_input_errors(kw, match):
    args = dict(num_prefill=1, num_decode=1)
    args.update(kw)
    npre, ndec = args.pop("num_prefill"), args.pop("num_decode")
    with pytest.raises(InputError, match=match):
        simulate_disaggregated(inst(), npre, inst(), ndec, specs([0.0], [10], [2]), **args)


def test_capacity_and_link_errors():
    with pytest.raises(InputError, match="prefill instance"):
        simulate_disaggregated(inst(kv=1024), 1, inst(), 1, specs([0.0], [2000], [2]))
    with pytest.raises(InputError, match="decode instance"):
        simulate_disaggregated(inst(), 1, inst(kv=1024), 1, specs([0.0], [1000], [100]))
    # a one-token request never needs decode KV
    simulate_disaggregated(inst(), 1, inst(kv=1024), 1, specs([0.0], [2000], [1]))
    with pytest.raises(InputError, match="bandwidth"):
        simulate_disaggregated(inst(scaleout_bandwidth_bytes_per_s=0.0), 1, inst(gpus=8), 1, specs([0.0], [10], [2]))
    assert math.isfinite(simulate_disaggregated(inst(kv_bytes_per_token=0.0, scaleout_bandwidth_bytes_per_s=0.0), 1,
                                                inst(gpus=8, kv_bytes_per_token=0.0), 1,
                                                specs([0.0], [10], [2])).sim_end_s)

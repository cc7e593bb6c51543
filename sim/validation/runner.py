"""Simulate one :class:`~.configure.Case` and return the metrics in the measured-results format's units.

The simulated metric that each measured column is compared with (per-GPU conventions of the format):

==================== ===================================================================================
output_tps_per_gpu   output tokens/s in the steady window / all GPUs (agg) or / decode GPUs (disagg)
input_tps_per_gpu    input tokens/s in the steady window / all GPUs (agg) or / prefill GPUs (disagg)
tps_per_user         median over requests of output tokens / (finish - first token), tokens/s
tpot_ms              median TPOT, ms
ttft_ms              median TTFT, ms
==================== ===================================================================================

``hw_fields`` replaces fields of the hardware profile (a calibration layer, see :mod:`.calibration`).
"""

from __future__ import annotations

from dataclasses import replace

from ..cost import SpecDecode, build_instance_cost
from ..cost.pools import DecodeOnlyStepCost
from ..hwprofile_io import load_hw
from ..models import load_model
from ..parallel import ParallelPlan
from .configure import Case

#: requests simulated per closed-loop point: every seat turns over several times, so the steady window
#: (10% warm-up and 10% cool-down cut) holds a few times the concurrency
MIN_REQUESTS = 64
REQUESTS_PER_SEAT = 4


def num_requests(concurrency: int) -> int:
    return max(MIN_REQUESTS, REQUESTS_PER_SEAT * concurrency)


def simulate_case(case: Case, plan: ParallelPlan | None = None, hw_fields: dict | None = None) -> dict:
    """Simulated metrics of ``case`` (agg: with ``plan`` if given, else the case's plan)."""
    from ..engine import simulate_aggregated, simulate_disaggregated
    from ..workloads import make_workload

    model = load_model(case.model).with_precision(**dict(case.precision))
    hw = load_hw(case.hw)
    if hw_fields:
        hw = replace(hw, **hw_fields)
    requests = make_workload("decode-heavy", input_len=case.isl, output_len=case.osl, concurrency=case.concurrency,
                             num_requests=num_requests(case.concurrency), seed=0).generate()
    serving = {"spec_decode": SpecDecode.parse(case.mtp) if case.mtp else None, "tbo": case.tbo}
    if case.mode != "disagg":
        plan = plan or case.plan
        inst = build_instance_cost(model, hw, plan, max_batch_tokens=case.max_batch_tokens, max_seqs=case.max_seqs, **serving)
        if case.mode == "decode-only":
            inst = replace(inst, step_cost=DecodeOnlyStepCost(inst.step_cost))
        result = simulate_aggregated(inst, case.instances if plan is case.plan else 1, requests,
                                     max_batch_tokens=case.max_batch_tokens, max_seqs=case.max_seqs)
        out_gpus = in_gpus = result.num_gpus
    else:
        pre = build_instance_cost(model, hw, case.prefill_plan, max_batch_tokens=case.max_batch_tokens,
                                  max_seqs=case.max_seqs, **serving)
        dec = build_instance_cost(model, hw, case.decode_plan, max_batch_tokens=case.max_batch_tokens,
                                  max_seqs=case.max_seqs, **serving)
        result = simulate_disaggregated(pre, case.prefill_instances, dec, case.decode_instances, requests,
                                        prefill_max_batch_tokens=case.max_batch_tokens, decode_max_seqs=case.max_seqs)
        in_gpus = case.prefill_plan.num_gpus * case.prefill_instances
        out_gpus = case.decode_plan.num_gpus * case.decode_instances
    s = result.summary()
    gpus = s["num_gpus"]
    out_rate = s["output_tokens_per_s_per_gpu"] * gpus
    in_rate = (s["total_tokens_per_s_per_gpu"] - s["output_tokens_per_s_per_gpu"]) * gpus
    if case.mode == "prefill-only":  # the one token each request generates is the prefill's, not decode output
        in_rate += out_rate
        out_rate = 0.0
    return {
        "output_tps_per_gpu": out_rate / out_gpus if case.mode != "prefill-only" else None,
        # a decode pool's prefill is free (ideal prefill side): no input rate or TTFT to compare
        "input_tps_per_gpu": in_rate / in_gpus if case.mode != "decode-only" else None,
        "tps_per_user": s["tokens_per_s_per_user_p50"] if case.mode != "prefill-only" else None,
        "tpot_ms": s["tpot_p50_s"] * 1e3 if case.mode != "prefill-only" else None,
        "ttft_ms": s["ttft_p50_s"] * 1e3 if case.mode != "decode-only" else None,
        "_steady": bool(s["steady"]),
        "_measured_requests": int(s["measured_requests"]),
    }


__all__ = ["num_requests", "simulate_case"]

"""Simulate one :class:`~.configure.Case` through the sweep machinery and return the metrics in the
measured-results format's units.

A case becomes an :class:`~latentmoe_sim.point.OperatingPoint` (:func:`point_of`) and runs through
:func:`~latentmoe_sim.point.run_point`, with its adaptive stopping rule and staggered closed-loop starts,
like every other simulated point of the project. A calibration travels in the point's ``hw_fields``.

The simulated metric that each measured column is compared with (per-GPU conventions of the format):

==================== ===================================================================================
output_tps_per_gpu   output tokens/s in the steady window / all GPUs (agg) or / decode GPUs (disagg)
input_tps_per_gpu    input tokens/s in the steady window / all GPUs (agg) or / prefill GPUs (disagg)
tps_per_user         median over requests of output tokens / (finish - first token), tokens/s
tpot_ms              median TPOT, ms
ttft_ms              median TTFT, ms
==================== ===================================================================================

A decode pool (``decode-only``) has no input rate or TTFT to compare (its prefill side is ideal), a prefill
pool (``prefill-only``) no output rate, tokens/s/user or TPOT.
"""

from __future__ import annotations

from ..errors import InputError
from ..parallel import ParallelPlan
from ..point import OperatingPoint, run_point
from .configure import Case

#: Case precision keys -> OperatingPoint fields
_PRECISION_FIELDS = {"weights": "weights_dtype", "activations": "activations_dtype", "kv_cache": "kv_cache_dtype",
                     "dispatch": "dispatch_dtype", "combine": "combine_dtype", "expert_weights": "expert_weights_dtype",
                     "attention_weights": "attention_weights_dtype", "dense_weights": "dense_weights_dtype",
                     "embedding_weights": "embedding_weights_dtype", "ssm_state": "ssm_state_dtype"}


def _plan_fields(plan: ParallelPlan, prefix: str = "") -> dict:
    return {f"{prefix}tp": plan.tp, f"{prefix}dp": plan.dp, f"{prefix}ep": plan.ep, f"{prefix}pp": plan.pp,
            f"{prefix}redundant_experts": plan.redundant_experts}


def point_of(case: Case, plan: ParallelPlan | None = None, hw_fields: dict | None = None) -> OperatingPoint:
    """The operating point of ``case`` (agg/single pool: with ``plan`` if given, else the case's plan)."""
    fields = dict(model=case.model, hw=case.hw, mode=case.mode, input_len=str(case.isl), output_len=str(case.osl),
                  concurrency=case.concurrency, max_batch_tokens=case.max_batch_tokens, max_seqs=case.max_seqs,
                  prefill_max_batch_tokens=case.prefill_max_batch_tokens, mtp=case.mtp or None, tbo=case.tbo,
                  hw_fields=tuple(sorted((dict(case.runtime) | (hw_fields or {})).items())), workload="decode-heavy")
    fields.update({_PRECISION_FIELDS[k]: v for k, v in case.precision})
    fields.update(dict(case.conventions))
    if case.mode == "disagg":
        fields.update(_plan_fields(case.prefill_plan, "prefill_"), prefill_instances=case.prefill_instances,
                      **_plan_fields(case.decode_plan, "decode_"), decode_instances=case.decode_instances)
    else:
        p = plan or case.plan
        fields.update(_plan_fields(p), instances=case.instances if plan is None else 1)
    if case.mode == "decode-only":
        # a decode pool at a fixed batch with an ideal prefill side is stationary once every seat has turned
        # over once: one measured request per client is enough (the default 3 guards closed-loop lock-step)
        fields["min_measured_per_client"] = 1.0
        fields["max_requests"] = max(OperatingPoint.max_requests, 4 * case.concurrency)
    return OperatingPoint(**fields)


def metrics_of(case: Case, row: dict) -> dict:
    """The format's metrics from a :func:`run_point` row (InputError for an infeasible point)."""
    if row["status"] == "infeasible":
        raise InputError(row["reason"])
    if row["status"] == "error":
        raise RuntimeError(f"{case.row_id}: {row['reason']}")
    gpus = row["num_gpus"]
    out_rate = row["output_tokens_per_s_per_gpu"] * gpus
    in_rate = row["input_tokens_per_s_per_gpu"] * gpus
    if case.mode == "disagg":
        in_gpus = case.prefill_plan.num_gpus * case.prefill_instances
        out_gpus = case.decode_plan.num_gpus * case.decode_instances
    else:
        in_gpus = out_gpus = gpus
    decode_side = case.mode != "prefill-only"
    prefill_side = case.mode != "decode-only"
    if case.mode == "prefill-only":  # the one token a request generates is the prefill's, not decode output
        in_rate += out_rate
    return {
        "output_tps_per_gpu": out_rate / out_gpus if decode_side else None,
        "input_tps_per_gpu": in_rate / in_gpus if prefill_side else None,
        "tps_per_user": row["tokens_per_s_per_user_p50"] if decode_side else None,
        "tpot_ms": row["tpot_p50_s"] * 1e3 if decode_side else None,
        "ttft_ms": row["ttft_p50_s"] * 1e3 if prefill_side else None,
        "_status": row["status"],
        "_reason": row["reason"],
        "_plan": row.get("plan"),
        "_precision_ran": row.get("precision_ran"),
        "_simulated_requests": row.get("simulated_requests"),
    }


def simulate_case(case: Case, plan: ParallelPlan | None = None, hw_fields: dict | None = None) -> dict:
    """Simulated metrics of ``case`` (see the module docstring)."""
    return metrics_of(case, run_point(point_of(case, plan, hw_fields)))


__all__ = ["metrics_of", "point_of", "simulate_case"]

"""Experiment spec -> operating points: the configuration search of a sweep.

For each traffic pattern and model the grid enumerates parallel plans (``plans: all`` searches every
TP x DP x PP of ``search`` with EP = tp*dp, or every EP that divides tp*dp and the expert count with
``search.ep: all``), keeps those the plan checks accept within ``max_gpus_per_instance``, sizes their memory,
and crosses the plans that fit with instance counts (within ``gpu_budget``), token budgets and the load grid.

Two kinds of points are left out on purpose, and the reason is recorded, not hidden:

* A plan that does not fit memory gives *one* point (its first load value), which comes back
  ``infeasible`` with the memory arithmetic as its reason, instead of one per load value.
* Closed-loop concurrencies above the slots the deployment can run at once (``dp * max_seqs`` per
  instance, or fewer when the KV cache holds fewer mean-length requests) are skipped: extra clients only
  wait in the queue, so such a point repeats the throughput and TPOT of the saturated one.

The order is deterministic (traffic, model, plan, instances, token budget, load), so a sweep, a slice of it
(:func:`take`) and a resumed run all see the same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from ..parallel import ParallelPlan
from ..point import OperatingPoint, resolve_model
from ..schema.experiment import ExperimentSpec, Search, Traffic


@dataclass(frozen=True)
class ModelRef:
    """A model of the spec: what OperatingPoint.model/model_epm/model_label hold."""

    model: str
    epm: float | None
    label: str


def model_refs(spec: ExperimentSpec) -> list[ModelRef]:
    from ..models import load_model

    refs = []
    for m in spec.models:
        if isinstance(m, str):
            refs.append(ModelRef(m, None, load_model(m).name))
        else:
            refs.append(ModelRef(m.base, m.epm, m.name))
    labels = [r.label for r in refs]
    if len(set(labels)) != len(labels):
        raise InputError(f"experiment spec: models: names must be unique, got {labels}")
    for c in spec.compare:
        for which in ("baseline", "target"):
            if getattr(c, which) not in labels:
                raise InputError(f"experiment spec: compare {which} = {getattr(c, which)!r} must be one of the models "
                                 f"({', '.join(labels)})")
    return refs


def _precision(spec: ExperimentSpec) -> dict:
    p = spec.precision
    if p is None:
        return {}
    if isinstance(p, str):
        return {"precision": p}
    return {f"{k}_dtype": v for k, v in p.model_dump().items() if v is not None}


def _base_point(spec: ExperimentSpec, ref: ModelRef, traffic: Traffic) -> OperatingPoint:
    s, st = spec.scheduler, spec.stopping
    return OperatingPoint(
        model=ref.model, model_epm=ref.epm, model_label=ref.label, hw=spec.hardware, **_precision(spec),
        mode=traffic.mode, workload=traffic.workload, traffic=traffic.name, input_len=traffic.input_len,
        output_len=traffic.output_len, seed=spec.seed, max_seqs=s.max_seqs, block_size=s.block_size,
        prefill_max_batch_tokens=s.prefill_max_batch_tokens, sla_ttft_s=traffic.sla.ttft_s, sla_tpot_s=traffic.sla.tpot_s,
        ci_target=st.ci_target, min_measured_per_client=st.min_measured_per_client, min_requests=st.min_requests,
        max_requests=st.max_requests, num_requests=st.num_requests,
    )


def _plans(plans, search: Search, model, hw, max_gpus: int) -> list[ParallelPlan]:
    """The plans a spec names, or those ``plans: all`` finds, that pass the plan checks within ``max_gpus``."""
    experts = model.moe.num_experts if model.moe else None
    if plans != "all":
        out = []
        for p in plans:
            ep = p.ep if p.ep is not None else (p.tp * p.dp if experts else 1)
            out.append(ParallelPlan(tp=p.tp, dp=p.dp, ep=ep, pp=p.pp, redundant_experts=p.redundant_experts)
                       .validate(experts, hw, max_gpus, model.num_layers))
        return out
    out = []
    for tp in search.tp:
        for dp in search.dp:
            for pp in search.pp:
                g = tp * dp
                if g * pp > max_gpus or tp > hw.nvlink_domain_size or pp > model.num_layers:
                    continue
                if not experts:
                    eps = [1]
                elif search.ep == "full":
                    eps = [g]
                elif search.ep == "all":
                    eps = [e for e in range(1, g + 1) if g % e == 0]
                else:
                    eps = [e for e in search.ep if e <= g]
                for ep in eps:
                    # EPLB: the fewest redundant slots that make ep divide the experts (0 when it already does)
                    red = (-experts) % ep if experts and search.redundant_experts == "eplb" else 0
                    try:
                        out.append(ParallelPlan(tp=tp, dp=dp, ep=ep, pp=pp, redundant_experts=red)
                                   .validate(experts, hw, max_gpus, model.num_layers))
                    except InputError:
                        continue
    return out


@dataclass(frozen=True)
class _Fit:
    plan: ParallelPlan
    reason: str  # "" if it fits
    slots: int  # requests one instance runs at once (dp * min(max_seqs, KV-limited))


def _fits(plans, model, hw, max_batch_tokens: int, max_seqs: int, mean_tokens: float) -> list[_Fit]:
    from ..memory import plan_memory, require_fit

    out = []
    for plan in plans:
        mem = plan_memory(model, hw, plan, max_batch_tokens=max_batch_tokens, max_seqs=max_seqs)
        try:
            require_fit(mem, model, hw, plan, min_tokens=max_batch_tokens)
        except InputError as exc:
            out.append(_Fit(plan, str(exc), 0))
            continue
        by_kv = mem.kv_capacity_tokens // max(1, math.ceil(mean_tokens)) if mem.kv_bytes_per_token else max_seqs
        out.append(_Fit(plan, "", plan.dp * max(1, min(max_seqs, by_kv))))
    return out


def _mean_tokens(traffic: Traffic, seed: int) -> float:
    """Mean prompt + output length of the traffic (a request's KV footprint when it finishes)."""
    from ..workloads import make_workload

    w = make_workload(traffic.workload, input_len=traffic.input_len, output_len=traffic.output_len, concurrency=1,
                      num_requests=1, seed=seed)
    return w.input_len.mean() + w.output_len.mean()


def _plan_fields(plan: ParallelPlan, role: str = "") -> dict:
    pre = f"{role}_" if role else ""
    return {f"{pre}tp": plan.tp, f"{pre}dp": plan.dp, f"{pre}ep": plan.ep, f"{pre}pp": plan.pp,
            f"{pre}redundant_experts": plan.redundant_experts}


def _loads(traffic: Traffic, slots: int | None) -> list[dict]:
    if traffic.rate is not None:
        return [{"rate": float(r)} for r in traffic.rate]
    return [{"concurrency": c} for c in traffic.concurrency if slots is None or c <= slots]


def expand(spec: ExperimentSpec) -> list[OperatingPoint]:
    """Every operating point of ``spec``, in a deterministic order (see the module docstring)."""
    from dataclasses import replace

    from ..point import _hw

    refs = model_refs(spec)
    hw = _hw(spec.hardware)
    points: list[OperatingPoint] = []
    for traffic in spec.traffic:
        mean_tokens = _mean_tokens(traffic, spec.seed)
        for ref in refs:
            base = _base_point(spec, ref, traffic)
            model = resolve_model(base)
            for mbt in spec.scheduler.max_batch_tokens:
                if traffic.mode == "agg":
                    points += _agg(spec, traffic, base, model, hw, mbt, mean_tokens, replace)
                else:
                    points += _disagg(spec, traffic, base, model, hw, mbt, mean_tokens, replace)
    return points


def _agg(spec, traffic, base, model, hw, mbt, mean_tokens, replace) -> list[OperatingPoint]:
    out = []
    plans = _plans(traffic.plans, traffic.search, model, hw, spec.max_gpus_per_instance)
    for fit in _fits(plans, model, hw, mbt, spec.scheduler.max_seqs, mean_tokens):
        for n in traffic.instances:
            if n * fit.plan.num_gpus > spec.gpu_budget:
                continue
            p = replace(base, **_plan_fields(fit.plan), instances=n, max_batch_tokens=mbt)
            loads = _loads(traffic, n * fit.slots if not fit.reason else None)
            out += [replace(p, **loads[0])] if fit.reason else [replace(p, **load) for load in loads]
    return out


def _disagg(spec, traffic, base, model, hw, mbt, mean_tokens, replace) -> list[OperatingPoint]:
    out = []
    cap, max_seqs = spec.max_gpus_per_instance, spec.scheduler.max_seqs
    pre = _fits(_plans(traffic.prefill_plans, traffic.search, model, hw, cap), model, hw,
                spec.scheduler.prefill_max_batch_tokens, max_seqs, mean_tokens)
    dec = _fits(_plans(traffic.decode_plans, traffic.search, model, hw, cap), model, hw, mbt, max_seqs, mean_tokens)
    for pf in pre:
        for df in dec:
            for np_ in traffic.prefill_instances:
                for nd in traffic.decode_instances:
                    gp, gd = np_ * pf.plan.num_gpus, nd * df.plan.num_gpus
                    if gp + gd > spec.gpu_budget:
                        continue
                    if traffic.pool_ratio is not None and not traffic.pool_ratio[0] <= gp / gd <= traffic.pool_ratio[1]:
                        continue
                    p = replace(base, **_plan_fields(pf.plan, "prefill"), **_plan_fields(df.plan, "decode"),
                                prefill_instances=np_, decode_instances=nd, max_batch_tokens=mbt)
                    bad = pf.reason or df.reason
                    loads = _loads(traffic, None if bad else nd * df.slots)
                    out += [replace(p, **loads[0])] if bad else [replace(p, **load) for load in loads]
    return out


def take(points: list[OperatingPoint], max_points: int | None) -> list[OperatingPoint]:
    """At most ``max_points`` of ``points``, evenly strided over the whole list (so a slice keeps every
    model, traffic pattern and plan size in proportion, not just the first model's points)."""
    if max_points is None or max_points >= len(points):
        return points
    if max_points < 1:
        raise InputError(f"--max-points = {max_points} must be >= 1")
    step = len(points) / max_points
    return [points[int(i * step)] for i in range(max_points)]


__all__ = ["ModelRef", "expand", "model_refs", "take"]

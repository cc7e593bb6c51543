"""One operating point as a value, and :func:`run_point`, the one place that simulates it.

An :class:`OperatingPoint` holds everything that defines one simulated point: the model (a catalog name or
file, optionally scaled to an iso-accuracy EPM variant), the hardware, the precision of each tensor class,
the serving mode, the parallel plan(s) and instance counts, the workload (lengths, arrivals, seed), the
scheduler knobs and the stopping rule. It is frozen and hashable; :attr:`OperatingPoint.point_id` is a
stable hash of its canonical form.

``lmsim simulate``, the sweep executors, the experiments and the tests all call :func:`run_point`; none of
them composes model, plan, cost and engine on its own. It returns one flat row (a dict): the whole point
as columns, every metric of :func:`latentmoe_sim.metrics.summarize`, the package version, and a ``status``
(``ok``, ``unsteady``, ``overloaded``, ``infeasible``, ``error``; see :mod:`latentmoe_sim.stopping`) with a
``reason``.

Adding a knob is one line: a field with a default. The canonical form leaves out fields equal to their
default, so adding a field does not change the id of any existing point. Knobs that belong to the cost
model or to the engine and are not fields yet can travel in ``options`` (a sorted tuple of pairs): each
is passed to whichever of :func:`~latentmoe_sim.cost.build_instance_cost` and the engine's ``simulate_*``
accepts it by name; one that neither accepts is an input error.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
import traceback
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

from . import __version__
from .batching import DEFAULT_PREFILL_MAX_BATCH_TOKENS
from .errors import InputError
from .stopping import StoppingRule, Verdict, initial_requests, judge

#: closed loop: the ramp is refitted to the measured request lifetime until within this fraction of it,
#: at most RAMP_ITERATIONS times (the stagger persists with fixed lengths, so its length matters)
RAMP_TOLERANCE = 0.1
RAMP_ITERATIONS = 4

#: row columns that measure the run, not the point; executors may differ in them
TIMING_COLUMNS = ("setup_cpu_s", "simulate_cpu_s", "wall_s", "runs")


@dataclass(frozen=True)
class OperatingPoint:
    """Everything that defines one simulated operating point (see the module docstring).

    Plans: ``tp``, ``dp`` (attention data-parallel ranks), ``ep`` (default ``tp * dp``), ``pp`` and
    ``instances`` for ``mode="agg"``; the ``prefill_*`` and ``decode_*`` plans and instance counts for
    ``mode="disagg"`` (an unset one falls back to the plain field). Exactly one arrival source:
    ``concurrency`` (closed loop), ``rate`` (requests/s, open loop) or ``trace``.
    """

    model: str = "kimi-k2-1t"
    hw: str = "h200_sxm"
    #: scale ``model`` to an iso-accuracy variant of this Effective Parameter Multiplier (docs/EPM.md)
    model_epm: float | None = None
    #: the name the rows and plots use (default: the model's own name)
    model_label: str | None = None
    # precision per tensor class (None: the catalog entry's); ``precision`` is the CLI's shorthand
    precision: str | None = None
    weights_dtype: str | None = None
    activations_dtype: str | None = None
    kv_cache_dtype: str | None = None
    dispatch_dtype: str | None = None
    combine_dtype: str | None = None
    # per weight class (sim/precision.py): routed experts, attention, dense/shared/latent/Mamba, embedding+LM head
    expert_weights_dtype: str | None = None
    attention_weights_dtype: str | None = None
    dense_weights_dtype: str | None = None
    embedding_weights_dtype: str | None = None
    #: dtype of the recurrent (Mamba SSM) state of hybrid models (None: the catalog entry's)
    ssm_state_dtype: str | None = None
    expert_imbalance: float = 1.0
    # serving features (docs/MODELING.md, "Serving features"): MTP draft tokens and acceptance, two-batch overlap
    mtp: int | None = None
    mtp_acceptance: str | None = None
    tbo: bool = False
    #: op times: roofline, measured (the GPU's tables under hwprofiles/measured/) or auto (docs/KERNELS.md)
    costs: str = "roofline"
    #: hardware-profile fields replaced for this point, sorted (HwProfile attribute, SI value) pairs: a
    #: calibration layer (sim/validation/calibration.py); empty = the profile as shipped
    hw_fields: tuple[tuple[str, float], ...] = ()
    # serving mode (agg | disagg | decode-only | prefill-only, the last two from cost/pools.py) and plans
    mode: str = "agg"
    tp: int = 1
    dp: int = 1
    ep: int | None = None
    pp: int = 1
    #: redundant expert slots (EPLB copies; ep must divide experts + R), per role as the plan fields
    redundant_experts: int = 0
    #: classes sharded over the tp*dp group under attention DP (sim/parallel.py parse_dp_sharded); None = sglang
    dp_sharded: str | None = None
    # cost conventions (sim/cost/conventions.py); None = the default
    expert_fusion: str | None = None
    dispatch_prefill: str | None = None
    dispatch_decode: str | None = None
    tp_allreduce: str | None = None
    #: GPU time per MLA layer in each step with decodes, us, over the op-by-op roofline (conventions.py)
    mla_decode_overhead_us: float | None = None
    #: expert popularity of the router: log-std of the experts' shares, 0 = uniform (conventions.py, routing.py)
    routing_skew: float | None = None
    instances: int = 1
    prefill_tp: int | None = None
    prefill_dp: int | None = None
    prefill_ep: int | None = None
    prefill_pp: int | None = None
    prefill_redundant_experts: int | None = None
    prefill_instances: int = 1
    decode_tp: int | None = None
    decode_dp: int | None = None
    decode_ep: int | None = None
    decode_pp: int | None = None
    decode_redundant_experts: int | None = None
    decode_instances: int = 1
    # workload
    workload: str = "decode-heavy"
    #: a label for the traffic pattern (the sweep's panel); default: ``workload``
    traffic: str | None = None
    input_len: str | None = None
    output_len: str | None = None
    concurrency: int | None = None
    rate: float | None = None
    burstiness: float | None = None
    trace: str | None = None
    think_time_s: float = 0.0
    #: closed loop: spread the clients' first requests over this many seconds; None = one request lifetime,
    #: estimated from the step cost and then refitted to the measured mean E2E (breaks lock-step, see
    #: :class:`~latentmoe_sim.workloads.ClosedLoop` and docs/SWEEP.md); 0 = all at once
    ramp_s: float | None = None
    seed: int = 0
    # scheduler (vLLM defaults, see sim/engine/aggregated.py)
    max_batch_tokens: int = 2048
    max_seqs: int = 128
    block_size: int = 16
    #: the one default of the prefill pool's token budget (sim/engine/disaggregated.py, docs/ENGINE.md)
    prefill_max_batch_tokens: int = DEFAULT_PREFILL_MAX_BATCH_TOKENS
    router: str = "least-loaded"
    step_by_step: bool = False
    #: the engine's clock: "heap" or "simpy" (same records; sim/engine/clock.py)
    clock: str = "heap"
    # metrics and stopping rule (latentmoe_sim.stopping)
    warmup_fraction: float = 0.1
    cooldown_fraction: float = 0.1
    sla_ttft_s: float | None = None
    sla_tpot_s: float | None = None
    num_requests: int | None = None
    ci_target: float = 0.02
    min_measured_per_client: float = 3.0
    min_requests: int = 400
    max_requests: int = 64000
    #: further knobs passed by name to build_instance_cost or simulate_* (sorted (name, value) pairs)
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.options, dict):
            object.__setattr__(self, "options", tuple(sorted(self.options.items())))
        if isinstance(self.hw_fields, dict):
            object.__setattr__(self, "hw_fields", tuple(sorted(self.hw_fields.items())))

    # -- identity -------------------------------------------------------------------------------------------
    def canonical(self) -> dict:
        """The fields that differ from their defaults, sorted by name: the point's identity."""
        defaults = _DEFAULTS
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != defaults[f.name]:
                out[f.name] = [list(kv) for kv in value] if f.name in ("options", "hw_fields") else value
        return dict(sorted(out.items()))

    @property
    def point_id(self) -> str:
        """16 hex digits of the SHA-256 of the canonical form (stable across runs, machines and versions)."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def stopping(self) -> StoppingRule:
        return StoppingRule(ci_target=self.ci_target, min_measured_per_client=self.min_measured_per_client,
                            min_requests=self.min_requests, max_requests=self.max_requests,
                            num_requests=self.num_requests)

    def columns(self) -> dict:
        """The point as flat row columns (options become ``opt_<name>``)."""
        d = asdict(self)
        opts = d.pop("options")
        d.update({f"opt_{k}": v for k, v in opts})
        d["hw_fields"] = ", ".join(f"{k}={v:.6g}" for k, v in self.hw_fields) or None
        d["model_spec"] = d.pop("model")
        d["model"] = self.model_label or d["model_spec"]
        d["traffic"] = self.traffic or self.workload
        return d

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


_DEFAULTS = {f.name: f.default for f in fields(OperatingPoint)}


# ------------------------------------------------------------------------------------------------- building


@lru_cache(maxsize=32)
def _model(name: str, epm: float | None, label: str | None):
    from .models import load_model

    spec = load_model(name)
    if epm is not None:
        from .epm import make_variant

        spec = make_variant(spec, epm, name=label).spec
    return spec


@lru_cache(maxsize=8)
def _hw(name: str):
    from .hwprofile_io import load_hw

    return load_hw(name)


def hw_of(point: OperatingPoint):
    """The point's hardware profile, with its ``hw_fields`` (a calibration layer) replaced."""
    hw = _hw(point.hw)
    if point.hw_fields:
        from .hw import HwProfile

        known = {f.name for f in fields(HwProfile)}
        bad = [k for k, _ in point.hw_fields if k not in known]
        if bad:
            raise InputError(f"hw_fields: {bad[0]!r} is not a hardware-profile field")
        hw = replace(hw, **dict(point.hw_fields))
    return hw


def resolve_model(point: OperatingPoint):
    """The model the point names, with its precision overrides applied: the ``precision`` preset
    (sim/precision.py; ``fp4`` = what NVFP4 checkpoints ship) under the per-tensor and per-class fields."""
    from .precision import PRESETS

    if point.precision is not None and point.precision not in PRESETS:
        raise InputError(f"precision = {point.precision!r}: must be one of {', '.join(PRESETS)}")
    preset = dict(PRESETS[point.precision]) if point.precision else {}
    names = ("weights", "activations", "kv_cache", "dispatch", "combine", "expert_weights", "attention_weights",
             "dense_weights", "embedding_weights", "ssm_state")
    given = {n: getattr(point, f"{n}_dtype") for n in names if getattr(point, f"{n}_dtype") is not None}
    return _model(point.model, point.model_epm, point.model_label).with_precision(**(preset | given))


def plan_of(point: OperatingPoint, model, hw, role: str = ""):
    """The validated :class:`~latentmoe_sim.parallel.ParallelPlan` of the point (or of a role's pool)."""
    from .parallel import ParallelPlan

    def get(name):
        value = getattr(point, f"{role}_{name}") if role else None
        return getattr(point, name) if value is None else value

    tp, dp, pp, ep, red = get("tp"), get("dp"), get("pp"), get("ep"), get("redundant_experts")
    if ep is None:
        ep = tp * dp if model.moe else 1
    prefix = f"{role}-" if role else ""
    from .parallel import DEFAULT_DP_SHARDED, parse_dp_sharded

    sharded = DEFAULT_DP_SHARDED if point.dp_sharded is None else parse_dp_sharded(point.dp_sharded)
    return ParallelPlan(tp=tp, dp=dp, ep=ep, pp=pp, redundant_experts=red or 0, dp_sharded=sharded).validate(
        model.moe.num_experts if model.moe else None, hw, None, model.num_layers,
        where=f"{role} plan" if role else "plan", flag_prefix=prefix)


def _split_options(point: OperatingPoint, engine_fn) -> tuple[dict, dict]:
    from .cost import build_instance_cost

    cost_args = set(inspect.signature(build_instance_cost).parameters)
    engine_args = set(inspect.signature(engine_fn).parameters)
    cost_kw, engine_kw = {}, {}
    for name, value in point.options:
        if name in cost_args:
            cost_kw[name] = value
        elif name in engine_args:
            engine_kw[name] = value
        else:
            raise InputError(f"option {name!r}: neither the cost model nor the engine takes it")
    return cost_kw, engine_kw


_COSTS: dict = {}


def _instance_cost(point: OperatingPoint, model, hw, plan, max_batch_tokens: int, cost_kw: dict):
    """The compiled instance cost, memoised per process: a sweep runs many concurrencies on one plan."""
    from .cost import build_instance_cost

    prec = tuple(getattr(point, n) for n in ("model", "model_epm", "model_label", "precision", "weights_dtype",
                                             "activations_dtype", "kv_cache_dtype", "dispatch_dtype", "combine_dtype",
                                             "expert_weights_dtype", "attention_weights_dtype", "dense_weights_dtype",
                                             "embedding_weights_dtype", "ssm_state_dtype",
                                             "hw", "hw_fields", "max_seqs", "expert_imbalance", "mtp", "mtp_acceptance",
                                             "tbo", "costs", "expert_fusion", "dispatch_prefill", "dispatch_decode",
                                             "tp_allreduce", "mla_decode_overhead_us", "routing_skew"))
    key = (prec, plan, max_batch_tokens, tuple(sorted(cost_kw.items())))
    if key not in _COSTS:
        if len(_COSTS) >= 64:
            _COSTS.pop(next(iter(_COSTS)))
        _COSTS[key] = build_instance_cost(model, hw, plan, max_batch_tokens=max_batch_tokens, max_seqs=point.max_seqs,
                                          expert_imbalance=point.expert_imbalance, **_serving(point), **cost_kw)
    return _COSTS[key]


def _serving(point: OperatingPoint) -> dict:
    """``spec_decode`` and ``tbo`` for build_instance_cost (the CLI's --mtp/--mtp-acceptance/--tbo)."""
    from .cost import SpecDecode

    spec = None
    if point.mtp:
        if point.mtp < 0:
            raise InputError(f"--mtp = {point.mtp} must be >= 0")
        spec = SpecDecode.parse(point.mtp, point.mtp_acceptance)
    elif point.mtp_acceptance is not None:
        raise InputError("--mtp-acceptance given without --mtp K")
    from .cost.conventions import Conventions

    conv = {n: getattr(point, n) for n in ("expert_fusion", "dispatch_prefill", "dispatch_decode", "tp_allreduce",
                                           "mla_decode_overhead_us", "routing_skew")}
    return {"spec_decode": spec, "tbo": bool(point.tbo), "costs": point.costs,
            "conventions": Conventions(**{n: v for n, v in conv.items() if v is not None})}


@dataclass
class _Deployment:
    """The built pieces of a point: the instance costs, plans and the engine call."""

    simulate: Any
    num_gpus: int
    columns: dict = field(default_factory=dict)
    lifetime_cost: Any = None  # (InstanceCost, instances) whose decode step estimates a request lifetime


def _deploy(point: OperatingPoint, model, hw) -> _Deployment:
    from .cost.pipeline import pipeline_micro_batches
    from .engine import simulate_aggregated, simulate_disaggregated

    imb = point.expert_imbalance
    if imb < 1.0:
        raise InputError(f"expert_imbalance = {imb} must be >= 1")
    if point.mode in ("agg", "decode-only", "prefill-only"):
        cost_kw, engine_kw = _split_options(point, simulate_aggregated)
        plan = plan_of(point, model, hw)
        budget = point.prefill_max_batch_tokens if point.mode == "prefill-only" else point.max_batch_tokens
        inst = _instance_cost(point, model, hw, plan, budget, cost_kw)
        if point.mode == "decode-only":
            from .cost.pools import DecodeOnlyStepCost

            inst = replace(inst, step_cost=DecodeOnlyStepCost(inst.step_cost))

        # pp micro-batches in flight: pp virtual instances per instance (sim/cost/pipeline.py)
        inst, micro = pipeline_micro_batches(inst, plan.pp)
        copies = point.instances * micro

        def run(requests):
            return simulate_aggregated(inst, copies, requests, max_batch_tokens=budget,
                                       max_seqs=point.max_seqs, block_size=point.block_size, router=point.router,
                                       step_by_step=point.step_by_step, clock=point.clock, **engine_kw)

        cols = {"plan": plan.describe(), "gpus_per_instance": plan.num_gpus, "plan_tp": plan.tp, "plan_dp": plan.dp, "plan_ep": plan.ep,
                "plan_pp": plan.pp, "kv_capacity_tokens_per_rank": inst.kv_capacity_tokens}
        return _Deployment(run, point.instances * plan.num_gpus, cols, (inst, copies, plan.dp))
    if point.mode != "disagg":
        raise InputError(f"mode = {point.mode!r}: must be agg, disagg, decode-only or prefill-only")
    cost_kw, engine_kw = _split_options(point, simulate_disaggregated)
    pplan, dplan = plan_of(point, model, hw, "prefill"), plan_of(point, model, hw, "decode")
    pre, pmicro = pipeline_micro_batches(_instance_cost(point, model, hw, pplan, point.prefill_max_batch_tokens, cost_kw),
                                         pplan.pp)
    dec, dmicro = pipeline_micro_batches(_instance_cost(point, model, hw, dplan, point.max_batch_tokens, cost_kw), dplan.pp)

    def run(requests):
        return simulate_disaggregated(pre, point.prefill_instances * pmicro, dec, point.decode_instances * dmicro, requests,
                                      prefill_max_batch_tokens=point.prefill_max_batch_tokens,
                                      decode_max_batch_tokens=point.max_batch_tokens, decode_max_seqs=point.max_seqs, block_size=point.block_size,
                                      router=point.router, step_by_step=point.step_by_step, clock=point.clock, **engine_kw)

    cols = {"plan": f"prefill {pplan.describe()} x{point.prefill_instances}; decode {dplan.describe()} "
                    f"x{point.decode_instances}",
            "plan_prefill": pplan.describe(), "plan_decode": dplan.describe(),
            "gpus_per_instance": max(pplan.num_gpus, dplan.num_gpus),
            "kv_capacity_tokens_per_rank": dec.kv_capacity_tokens}
    gpus = point.prefill_instances * pplan.num_gpus + point.decode_instances * dplan.num_gpus
    return _Deployment(run, gpus, cols, (dec, point.decode_instances * dmicro, dplan.dp))


def _workload(point: OperatingPoint, num_requests: int):
    from .workloads import make_workload

    if point.mode == "prefill-only" and point.output_len not in (None, "1"):
        raise InputError(f"--output-len {point.output_len}: --mode prefill-only generates exactly 1 token (the prefill's)")
    if point.mode == "prefill-only":
        point = replace(point, output_len="1")

    return make_workload(point.workload, input_len=point.input_len, output_len=point.output_len,
                         concurrency=point.concurrency, rate=point.rate, burstiness=point.burstiness,
                         trace=point.trace, num_requests=num_requests, seed=point.seed, think_time_s=point.think_time_s)


def estimated_lifetime_s(work, inst, instances: int, dp: int, max_seqs: int) -> float:
    """One request's expected lifetime in a full closed loop: mean output length times the decode step of the
    batch each rank then holds (clients spread over ranks, capped by ``max_seqs``), from the compiled cost.
    Used only to size the closed-loop ramp; any value near the true lifetime breaks lock-step."""
    from .cost import RankLoad

    n = 256
    specs = replace(work, num_requests=min(work.count, n) if work.count else n).generate()
    isl, osl = float(specs.input_tokens.mean()), float(specs.output_tokens.mean())
    per_rank = max(1, min(max_seqs, math.ceil(work.arrivals.concurrency / (instances * dp))))
    kv = int(per_rank * (isl + osl / 2.0))
    step_s = inst.step_cost.step_time([RankLoad(0, 0.0, 0, per_rank, kv)] * dp)
    return osl * step_s


def _offered_rate(point: OperatingPoint) -> float | None:
    return None if point.rate is None else float(point.rate)


def run_point(point: OperatingPoint, *, keep_records: bool = False, raise_input_errors: bool = False) -> dict:
    """Simulate ``point`` under its stopping rule and return its row (see the module docstring).

    Does not raise for a bad point: an input error (a plan that does not fit, an unknown model) gives
    ``status="infeasible"`` and any other exception ``status="error"``, each with its ``reason``; with
    ``raise_input_errors=True`` (the CLI) input errors propagate instead. ``keep_records=True`` adds the last
    run's per-request records under the key ``"_records"`` (not a column).
    """
    wall0, cpu0 = time.perf_counter(), time.process_time()
    row: dict = {"point_id": point.point_id, **point.columns(), "version": __version__}
    try:
        return _run(point, row, wall0, cpu0, keep_records)
    except InputError as exc:
        if raise_input_errors:
            raise
        row.update(status="infeasible", reason=str(exc))
    except Exception as exc:  # a sweep must go on; the row says what happened
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        row.update(status="error", reason=f"{type(exc).__name__}: {exc} ({tb.filename.rsplit('/', 1)[-1]}:{tb.lineno})")
    row.update(setup_cpu_s=time.process_time() - cpu0, simulate_cpu_s=0.0, wall_s=time.perf_counter() - wall0, runs=0)
    return row


def _run(point: OperatingPoint, row: dict, wall0: float, cpu0: float, keep_records: bool) -> dict:
    from .metrics import requests_in_system

    model, hw = resolve_model(point), hw_of(point)
    row["model"] = point.model_label or model.name
    row["hw_name"] = hw.name
    dep = _deploy(point, model, hw)
    spec = _serving(point)["spec_decode"]
    from .precision import describe

    row.update(dep.columns, num_gpus=dep.num_gpus, mtp_tokens_per_step=spec.tokens_per_step if spec else 1.0,
               mtp_describe=spec.describe() if spec else None, precision_ran=describe(model.precision, hw))
    rule = point.stopping
    n = initial_requests(rule, point.concurrency, point.warmup_fraction, point.cooldown_fraction)
    if point.trace is not None and rule.num_requests is None:
        n = None  # a trace is replayed whole: its length is the user's choice, not the stopping rule's
    work = _workload(point, n)
    ramp = point.ramp_s
    if point.concurrency is not None and ramp is None:
        inst, instances, dp = dep.lifetime_cost
        ramp = estimated_lifetime_s(work, inst, instances, dp, point.max_seqs)
    setup = time.process_time() - cpu0
    runs, verdict, ramp_fits = 0, None, 0
    while True:
        work = _workload(point, n)
        if point.concurrency is not None:
            work = replace(work, arrivals=replace(work.arrivals, ramp_s=float(ramp)))
        result = dep.simulate(work.generate())
        runs += 1
        summary = result.summary(warmup_fraction=point.warmup_fraction, cooldown_fraction=point.cooldown_fraction,
                                 sla_ttft_s=point.sla_ttft_s, sla_tpot_s=point.sla_tpot_s)
        edges = None, None
        if point.concurrency is None:
            n_sys = requests_in_system(result.records, [summary["window_start_s"], summary["window_end_s"]])
            edges = int(n_sys[0]), int(n_sys[1])
        verdict = judge(summary, rule, concurrency=point.concurrency, offered_rate_per_s=_offered_rate(point),
                        in_system_start=edges[0], in_system_end=edges[1])
        if (point.concurrency or 0) > 1 and point.ramp_s is None and ramp_fits < RAMP_ITERATIONS:
            # the ramp should last one request lifetime: replace the estimate by the measured one
            life = (summary.get("e2e_mean_s") or 0.0) + point.think_time_s
            if life > 0 and abs(ramp - life) > RAMP_TOLERANCE * life:
                ramp, ramp_fits = life, ramp_fits + 1
                continue
        if point.trace is not None or verdict.ok or verdict.status == "overloaded" or rule.num_requests is not None \
                or n >= rule.max_requests:
            break
        n = min(2 * n, rule.max_requests)
    row.update(summary)
    row.update(simulated_requests=work.count, ramp_s_used=float(ramp) if ramp is not None else None,
               engine_steps=result.steps, engine_events=result.events, status=verdict.status,
               reason=_reason(verdict, work.count, rule))
    row.update(setup_cpu_s=setup, simulate_cpu_s=time.process_time() - cpu0 - setup,
               wall_s=time.perf_counter() - wall0, runs=runs)
    if keep_records:
        row["_records"] = result.records
    return row


def _reason(verdict: Verdict, n: int, rule: StoppingRule) -> str:
    if verdict.ok:
        return ""
    where = f"at --num-requests {n}" if rule.num_requests is not None else f"after {n} requests"
    return f"{verdict.reason} ({where})" if verdict.status == "unsteady" else verdict.reason

"""From a measured row to the configuration the simulator runs, or the reason it cannot.

A :class:`Case` holds everything one simulated point needs: model, hardware, precision per tensor class,
serving mode, plan(s), lengths, load and scheduler limits, plus ``assumptions``: every default this mapping
filled in for a field the source left blank, in words, so that the report shows it beside the row.
:func:`configure` returns a :class:`Case` or an :class:`Unexpressible` with the reason.

Rules (see docs/VALIDATION.md, "From a row to a configuration"):

* model and hardware: the format's names are catalog / profile names; a hardware without a bundled profile
  (``h800``, AMD) cannot be expressed.
* precision: ``weight_dtype`` is the routed-expert weight dtype; ``act_dtype`` the GEMM activations
  (blank: FP8 for FP8 weights, BF16 for INT4 weight-only, FP4 for FP4); ``kv_dtype`` when stated, else the
  catalog's KV dtype; EP dispatch in the activation dtype when that is FP8, combine BF16 (DeepEP's default).
* plan: an aggregated row's ``tp``/``ep``/``dp_attn``/``pp`` (blank ``ep`` = MoE tensor parallel, the vLLM
  and SGLang default without ``--enable-expert-parallel`` / ``--ep-size``). A row with ``num_gpus`` but no
  plan and no measured tokens/s/user runs the framework's default, pure TP over the GPUs. A row with a
  measured tokens/s/user and no plan gets a small search (:mod:`.search`).
* lengths: ISL/OSL when stated; else the validation default (``--default-isl/--default-osl``) and it says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..hwprofile_io import list_hw
from ..models import list_models
from ..parallel import ParallelPlan
from .rows import MTP_ON, MeasuredRow

#: Scheduler limits per framework: (max batched tokens per step, max running sequences per rank).
#: vLLM's OpenAI-server defaults on GPUs with >= 70 GiB that are not A100: 8192 tokens, 1024 sequences
#: (vllm-project/vllm, vllm/engine/arg_utils.py ``get_batch_defaults``, see PR #17885). The other frameworks'
#: limits are not taken from their sources here: their rows run with vLLM's values and say so.
SCHEDULER_DEFAULTS: dict[str, tuple[int, int]] = {"vllm": (8192, 1024)}

#: Default ISL/OSL for rows that state neither: InferenceX's "1k/1k" setting, the commonest published
#: setting in the shipped file (ix_*_1k1k rows). Sensitivity to this choice: docs/VALIDATION.md.
DEFAULT_ISL = 1024
DEFAULT_OSL = 1024


@dataclass(frozen=True)
class Case:
    """One measured row as a simulated configuration."""

    row_id: str
    model: str
    hw: str
    #: keyword arguments of ModelSpec.with_precision (tensor class -> dtype)
    precision: tuple[tuple[str, str], ...]
    #: "agg" or "disagg"
    mode: str
    isl: int
    osl: int
    #: closed-loop concurrency (requests in the whole system)
    concurrency: int
    plan: ParallelPlan | None = None
    instances: int = 1
    prefill_plan: ParallelPlan | None = None
    prefill_instances: int = 1
    decode_plan: ParallelPlan | None = None
    decode_instances: int = 1
    max_batch_tokens: int = 8192
    max_seqs: int = 1024
    #: None: the plan is given; else the GPU budget the plan search may use (see .search)
    search_gpus: int | None = None
    assumptions: tuple[str, ...] = field(default=())

    @property
    def num_gpus(self) -> int:
        if self.mode == "agg":
            return self.plan.num_gpus * self.instances if self.plan else (self.search_gpus or 0)
        return self.prefill_plan.num_gpus * self.prefill_instances + self.decode_plan.num_gpus * self.decode_instances

    def describe(self) -> dict:
        """The configuration as plain values (the ``config`` of a ``--json`` row)."""
        out = {"model": self.model, "hw": self.hw, "precision": dict(self.precision), "mode": self.mode,
               "isl": self.isl, "osl": self.osl, "concurrency": self.concurrency,
               "max_batch_tokens": self.max_batch_tokens, "max_seqs": self.max_seqs}
        if self.mode == "agg":
            out.update(plan=self.plan.describe() if self.plan else None, instances=self.instances)
        else:
            out.update(prefill_plan=self.prefill_plan.describe(), prefill_instances=self.prefill_instances,
                       decode_plan=self.decode_plan.describe(), decode_instances=self.decode_instances)
        out["assumptions"] = list(self.assumptions)
        return out


@dataclass(frozen=True)
class Unexpressible:
    """A row the simulator cannot express, and why (one line)."""

    row_id: str
    reason: str


def precision_of(row: MeasuredRow, assumptions: list[str]) -> dict[str, str]:
    """Tensor class -> dtype for the row (see the module docstring)."""
    w = row.weight_dtype
    act = row.act_dtype
    if act is None:
        act = {"fp8": "fp8", "bf16": "bf16", "int4": "bf16", "fp4": "fp4"}[w]
        assumptions.append(f"act_dtype blank: GEMM activations {act} for {w} weights")
    prec = {"weights": w, "activations": act}
    if w in ("fp4", "int4"):
        assumptions.append(f"{w} applied to all linear weights (per-class weight precision not modelled yet)")
    if row.kv_dtype:
        prec["kv_cache"] = row.kv_dtype
    if act in ("fp8", "fp4"):
        prec["dispatch"] = act
    return prec


def _plan(tp, ep, dp, pp, gpus, framework, assumptions, role=""):
    """A ParallelPlan and instance count from the row's degrees (None if no degree is stated)."""
    if tp is None and dp is None and ep is None and pp is None:
        return None, None
    tp, dp, pp = tp or 1, dp or 1, pp or 1
    if ep is None:
        ep = 1 if dp == 1 else tp * dp
        assumptions.append(f"{role}ep blank: {'MoE tensor parallel (EP1), the ' + framework + ' default' if ep == 1 else f'EP{ep} over the attention-DP ranks'}")
    plan = ParallelPlan(tp=tp, dp=dp, ep=ep, pp=pp)
    instances = 1
    if gpus is not None and gpus != plan.num_gpus:
        if gpus % plan.num_gpus:
            raise ValueError(f"{role}num_gpus {gpus} is not a multiple of tp*dp*pp = {plan.num_gpus}")
        instances = gpus // plan.num_gpus
        assumptions.append(f"{role}num_gpus {gpus} = {instances} instances of tp*dp*pp = {plan.num_gpus}")
    return plan, instances


def configure(row: MeasuredRow, *, default_isl: int = DEFAULT_ISL, default_osl: int = DEFAULT_OSL) -> Case | Unexpressible:
    """The simulated configuration of ``row``, or why it cannot be expressed."""
    def no(reason: str) -> Unexpressible:
        return Unexpressible(row.id, reason)

    if not row.measured:
        return no("no measured metric")
    if row.model not in list_models():
        return no(f"model {row.model} is not in the catalog")
    if row.hw not in list_hw():
        return no(f"no hardware profile for {row.hw}")
    if row.mtp is not None and row.mtp != 0:
        return no(f"MTP/speculative decoding ({'on' if row.mtp == MTP_ON else row.mtp} draft tokens) is not modelled yet")
    if row.phase != "both":
        return no(f"phase={row.phase}: single-pool ({row.phase}-only) measurement is not modelled yet")
    assumptions: list[str] = []
    max_batch_tokens, max_seqs = SCHEDULER_DEFAULTS.get(row.framework, SCHEDULER_DEFAULTS["vllm"])
    if row.framework not in SCHEDULER_DEFAULTS:
        assumptions.append(f"framework {row.framework}: vLLM's scheduler limits ({max_batch_tokens} tokens, {max_seqs} seqs)")
    isl, osl = row.isl, row.osl
    if isl is None:
        isl = default_isl
        assumptions.append(f"isl blank: {isl} (validation default)")
    if osl is None:
        osl = default_osl
        assumptions.append(f"osl blank: {osl} (validation default)")
    prec = precision_of(row, assumptions)
    common = dict(row_id=row.id, model=row.model, hw=row.hw, precision=tuple(sorted(prec.items())), isl=isl, osl=osl,
                  max_batch_tokens=max_batch_tokens, max_seqs=max_seqs)
    if row.mode == "agg":
        try:
            plan, instances = _plan(row.tp, row.ep, row.dp_attn, row.pp, row.num_gpus, row.framework, assumptions)
        except ValueError as exc:
            return no(str(exc))
        gpus = row.num_gpus or (plan.num_gpus * instances if plan else None)
        concurrency = row.concurrency
        if concurrency is None:
            if row.decode_batch_per_gpu is None or gpus is None:
                return no("neither concurrency nor decode_batch_per_gpu with num_gpus is stated")
            concurrency = row.decode_batch_per_gpu * gpus
            assumptions.append(f"concurrency = decode_batch_per_gpu x num_gpus = {concurrency}")
        if plan is None:
            if row.tps_per_user is None:
                if gpus is None:
                    return no("no plan, no num_gpus and no measured tokens/s/user to search a plan by")
                hw_domain = 8  # the format's hardware all have 8-GPU or larger NVLink domains
                plan = ParallelPlan(tp=min(gpus, hw_domain), dp=1, ep=1, pp=1)
                instances = gpus // plan.num_gpus
                assumptions.append(f"plan not stated: the {row.framework} default, TP{plan.tp} x {instances} instance(s) "
                                   "(no tokens/s/user measured to search by)")
                return Case(mode="agg", concurrency=concurrency, plan=plan, instances=instances,
                            assumptions=tuple(assumptions), **common)
            return Case(mode="agg", concurrency=concurrency, search_gpus=gpus, assumptions=tuple(assumptions), **common)
        return Case(mode="agg", concurrency=concurrency, plan=plan, instances=instances, assumptions=tuple(assumptions), **common)
    # disaggregated, both pools
    if row.prefill_gpus is None or row.decode_gpus is None:
        return no("disaggregated row without prefill_gpus/decode_gpus (pool sizes unpublished)")
    if row.output_tps_per_gpu is not None and row.input_tps_per_gpu is not None and row.osl and row.isl:
        # a balanced system serves the same requests in both pools; per-pool figures that disagree by more
        # than 2x were measured pool by pool, not as one system
        req_in = row.input_tps_per_gpu * row.prefill_gpus / row.isl
        req_out = row.output_tps_per_gpu * row.decode_gpus / row.osl
        if max(req_in, req_out) > 2 * min(req_in, req_out):
            return no(f"pools measured separately: prefill serves {req_in:.0f} req/s, decode {req_out:.0f} req/s "
                      "(one system would serve both equally); needs single-pool modes")
    try:
        pplan, pinst = _plan(row.prefill_tp, row.prefill_ep, row.prefill_dp_attn, None, row.prefill_gpus, row.framework,
                             assumptions, "prefill_")
        dplan, dinst = _plan(row.decode_tp, row.decode_ep, row.decode_dp_attn, None, row.decode_gpus, row.framework,
                             assumptions, "decode_")
    except ValueError as exc:
        return no(str(exc))
    if pplan is None or dplan is None:
        return no("disaggregated row without pool parallelism (a two-pool plan search is not part of validation)")
    concurrency = row.concurrency
    if concurrency is None:
        if row.decode_batch_per_gpu is None:
            return no("neither concurrency nor decode_batch_per_gpu is stated")
        concurrency = row.decode_batch_per_gpu * row.decode_gpus
        assumptions.append(f"concurrency = decode_batch_per_gpu x decode_gpus = {concurrency}")
    return Case(mode="disagg", concurrency=concurrency, prefill_plan=pplan, prefill_instances=pinst, decode_plan=dplan,
                decode_instances=dinst, assumptions=tuple(assumptions), **common)


__all__ = ["Case", "DEFAULT_ISL", "DEFAULT_OSL", "SCHEDULER_DEFAULTS", "Unexpressible", "configure", "precision_of"]

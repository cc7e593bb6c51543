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

import re
from dataclasses import dataclass, field, replace

from ..hwprofile_io import list_hw
from ..models import list_models
from ..cost.conventions import MLA_DECODE_OVERHEAD_US
from ..parallel import ParallelPlan
from .rows import MTP_ON, MeasuredRow

#: Scheduler limits per framework: (max batched tokens per step, max running sequences per rank).
#: vLLM's OpenAI-server defaults on GPUs with >= 70 GiB that are not A100: 8192 tokens, 1024 sequences
#: (vllm-project/vllm, vllm/engine/arg_utils.py ``get_batch_defaults``, see PR #17885). The other frameworks'
#: limits are not taken from their sources here: their rows run with vLLM's values and say so.
SCHEDULER_DEFAULTS: dict[str, tuple[int, int]] = {"vllm": (8192, 1024)}

#: Cost conventions that follow the framework (docs/MODELING.md §4a): SGLang's DeepEP + DeepGEMM expert path
#: writes the gate/up output in BF16 and re-quantises it in a separate activation kernel (``act-kernel``);
#: every other framework keeps the project default (``fused``, the TensorRT-LLM CUTLASS MoE path).
FRAMEWORK_CONVENTIONS: dict[str, dict[str, str]] = {
    "sglang": {"expert_fusion": "act-kernel"},
    "dynamo-sglang": {"expert_fusion": "act-kernel"},
}

#: Whose measured kernels a framework runs, where it is a wrapper of another (conventions.MLA_DECODE_OVERHEAD_US)
FRAMEWORK_KERNELS: dict[str, str] = {"dynamo-trtllm": "trtllm"}

#: Runtime constants per framework that replace the profile's guess (HwProfile attribute -> SI value). vLLM's
#: per-step overhead with asynchronous scheduling: the GPU gap between two decode steps fell from 5-6 ms to
#: 150-170 us at batch 256 with CUDA graphs when scheduling ran one step ahead of execution
#: (vllm-project/vllm PR #11133, the V1 async-scheduling prototype; the scheduler merged in PR #19970 and on by
#: default since the 2025-Q4 roadmap, issue #27679): 160 us. The profiles' 500 us stays a guess for the rest.
FRAMEWORK_RUNTIME: dict[str, dict[str, float]] = {"vllm": {"step_overhead_s": 160e-6}}

#: Recurrent (Mamba SSM) state dtype per framework, for models with Mamba layers. vLLM keeps the SSM state of
#: NemotronH-architecture models (the Nemotron-H / Nemotron-3 hybrids, the family of the LatentMoE paper's
#: Hybrid-73BT-8BA) in float32 unless told otherwise: ``NemotronHForCausalLMConfig.DEFAULT_MAMBA_SSM_CACHE_DTYPE
#: = "float32"``, "Only float32 is known to have no accuracy issues by default" (vllm-project/vllm,
#: vllm/model_executor/models/config.py; docs.vllm.ai API reference of that class). The other frameworks keep
#: the catalog's dtype.
FRAMEWORK_SSM_STATE: dict[str, str] = {"vllm": "fp32"}

#: Which tensor classes the row's framework shards over the whole TP x attention-DP group
#: (``OperatingPoint.dp_sharded``, sim/parallel.py), in the deployments the shipped rows describe:
#:
#: * DeepSeek's own system: "MLA/Shared Expert DP32" (prefill) and "DP144" (decode), everything outside the
#:   routed experts data parallel (open-infra-index day-6 overview); its dense layers are replicated too
#:   (sgl-project/sglang PR #4836, which added ``--moe-dense-tp-size 1`` to copy DeepSeek's layout): ``none``;
#: * TensorRT-LLM with attention DP: dense MLP and shared experts DP, LM head replicated (sim/parallel.py
#:   docstring): ``trtllm`` (= none);
#: * vLLM data parallel: every DP rank is its own engine core holding a full replica outside the routed
#:   experts (TP only inside the rank): ``none``;
#: * SGLang: its defaults shard the LM head and the dense MLP over the whole group, but its large-scale EP
#:   deployments (the only multi-node SGLang rows) launch with ``--enable-dp-lm-head --moe-dense-tp-size 1``
#:   (LMSYS large-scale EP blog 2025-05-05, "Dense FFNs" and "LM Head": DP; the command lines in
#:   sgl-project/sglang PR #6567 and the Kimi-K2 EP recipe, sgl-project/sgl-cookbook PR #241): ``none`` when
#:   EP spans more than one NVLink domain, else SGLang's defaults.
FRAMEWORK_DP_SHARDED: dict[str, str] = {"deepseek": "none", "trtllm": "trtllm", "dynamo-trtllm": "trtllm",
                                        "vllm": "none"}

#: Frameworks that always overlap two micro-batches: DeepSeek's inference system runs prefill and decode as
#: two micro-batches whose all-to-all hides behind the other's compute (deepseek-ai/profile-data README,
#: "Prefilling" and "Decoding"; open-infra-index day-6 overview, "dual-batch overlap").
FRAMEWORK_TBO: frozenset = frozenset({"deepseek"})

#: Systematic expert imbalance of real routing (``OperatingPoint.expert_imbalance``: the busiest EP rank's
#: pairs over what uniform routing gives it, on top of the statistical busiest rank the cost model always
#: counts). Popular experts load their ranks more; EPLB moves and copies experts against it but cannot
#: follow every batch. Derived from the one published ablation that isolates it: SGLang's DeepSeek-V3 prefill
#: on 4 x 8 H100 (EP32, 16,384 tokens per GPU, 4K inputs, TBO) ran 50,302 tokens/s per node with its real
#: EPLB routing and 59,337 with "simulated perfect EPLB" (LMSYS large-scale EP blog 2025-05-05, "Overall
#: Throughput"): 1.180x. This cost model needs a systematic imbalance of 1.207 at that configuration for the
#: same ratio (``tests/test_validation.py`` re-derives it). It applies to every row routed by a real router
#: over more than one EP rank; a row whose notes say the routing was balanced (DeepSeek's profile data,
#: "we simulate an absolutely balanced MoE routing strategy", deepseek-ai/profile-data README) runs 1.0.
#: Rows with the ablation's own configuration (sglang_h100_prefill_*) are not an independent check of it.
REAL_ROUTING_IMBALANCE = 1.207

#: Expert popularity of a real router (``OperatingPoint.routing_skew``, sim/cost/routing.py): the log-standard
#: deviation of a lognormal over a layer's experts' shares of the picks, which lowers the distinct experts a
#: step touches (the routed experts' weight reads) at small and medium batch. Derived, not fitted to rows:
#: the one published per-layer measurement with a threshold-free statistic we found is Qwen3-30B-A3B (128
#: experts, top-8) on a diverse ~1k-token prose/code/math corpus, per-expert selection counts from
#: llama.cpp's imatrix, median concentration ``1 - H / ln E`` = 0.111 (mcp-tool-shop-org/gpu-container
#: handbook, "Routing De-risk", "The real result - Qwen3 routes near-uniform"; 0.154 on single-domain
#: Python). The lognormal over 128 experts has that normalised entropy at 1.07 (``tests/test_cost_routing.py``
#: re-derives it). The same source's other statistics bracket it: 65 of 128 experts carry 90 % of the picks
#: (1.28) and the top expert takes 4.3 % (0.74); SGLang's EPLB ablation (1.49x prefill at EP32, 2.54x decode
#: at EP72, LMSYS large-scale EP blog) is of the size this skew implies without EPLB (docs/MODELING.md §4a.3c).
#: Applied to every row routed by a real router, at any EP (rows whose notes say balanced routing run 0).
REAL_ROUTING_SKEW = 1.07

#: Default ISL/OSL for rows that state neither: InferenceX's "1k/1k" setting, the commonest published
#: setting in the shipped file (ix_*_1k1k rows). Sensitivity to this choice: docs/VALIDATION.md.
DEFAULT_ISL = 1024
DEFAULT_OSL = 1024

#: GPUs of one NVLink domain of every hardware in the format (8-GPU HGX boards; NVL72 is larger)
NVLINK_DOMAIN = 8

#: Prefill token budget per rank for prefill-pool rows: the SGLang large-scale EP blog's 16,384 tokens per
#: device per batch (lmsys.org/blog/2025-05-05-large-scale-ep); the library default (``lmsim simulate``) is 8,192.
PREFILL_BATCH_TOKENS = 16384

#: Output length of decode-pool rows that state none: only the mean decode context (``isl``) matters to a
#: decode-pool figure; short requests keep the closed loop turning over fast.
DECODE_POOL_OSL = 256


@dataclass(frozen=True)
class Case:
    """One measured row as a simulated configuration."""

    row_id: str
    model: str
    hw: str
    #: keyword arguments of ModelSpec.with_precision (tensor class -> dtype)
    precision: tuple[tuple[str, str], ...]
    #: "agg", "disagg", "decode-only" or "prefill-only" (one pool of a disaggregated system, the other ideal)
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
    #: prefill token budget per rank of a prefill pool (disagg, prefill-only)
    prefill_max_batch_tokens: int = PREFILL_BATCH_TOKENS
    #: None: the plan is given; else the GPU budget the plan search may use (see .search)
    search_gpus: int | None = None
    #: MTP / speculative decoding draft tokens per step (0 = off), at the default acceptance
    mtp: int = 0
    #: two-batch overlap (the row's notes say the deployment used it)
    tbo: bool = False
    #: OperatingPoint fields that follow the row's framework and routing: cost conventions
    #: (sim/cost/conventions.py), dp_sharded, expert_imbalance; sorted (name, value) pairs
    conventions: tuple[tuple[str, object], ...] = ()
    #: runtime constants of the row's framework that replace the hardware profile's (HwProfile attribute, SI
    #: value), sorted pairs; a calibration layer is applied over them (FRAMEWORK_RUNTIME)
    runtime: tuple[tuple[str, float], ...] = ()
    assumptions: tuple[str, ...] = field(default=())

    @property
    def num_gpus(self) -> int:
        if self.mode != "disagg":
            return self.plan.num_gpus * self.instances if self.plan else (self.search_gpus or 0)
        return self.prefill_plan.num_gpus * self.prefill_instances + self.decode_plan.num_gpus * self.decode_instances

    def describe(self) -> dict:
        """The configuration as plain values (the ``config`` of a ``--json`` row)."""
        out = {"model": self.model, "hw": self.hw, "precision": dict(self.precision), "mode": self.mode,
               "isl": self.isl, "osl": self.osl, "concurrency": self.concurrency,
               "max_batch_tokens": self.max_batch_tokens, "max_seqs": self.max_seqs, "mtp": self.mtp, "tbo": self.tbo,
               "conventions": dict(self.conventions), "runtime": dict(self.runtime)}
        if self.mode != "disagg":
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
    if w in ("fp4", "int4"):
        # a 4-bit checkpoint quantises the routed experts only (sim/precision.py cites the NVFP4 ones)
        prec = {"expert_weights": w, "activations": act}
        if w == "int4":
            prec.update(attention_weights=act, dense_weights=act)
            assumptions.append(f"int4 weight-only routed experts; attention, dense and shared-expert weights in {act} "
                               "(the activation dtype)")
        else:
            assumptions.append("fp4 routed experts; other weights as the catalog entry states (sim/precision.py)")
    else:
        prec = {"weights": w, "activations": act}
    if row.kv_dtype:
        prec["kv_cache"] = row.kv_dtype
    if act in ("fp8", "fp4"):
        prec["dispatch"] = act
    state = FRAMEWORK_SSM_STATE.get(row.framework)
    if state and _has_mamba(row.model):
        prec["ssm_state"] = state
        assumptions.append(f"{row.framework} keeps the Mamba SSM state in {state} (its NemotronH default)")
    return prec


def _attention_kind(model: str) -> str | None:
    """The catalog model's attention kind (``mla``, ``gqa``) or None (the model is in the catalog)."""
    from ..models import load_model

    a = load_model(model).attention
    return a.kind if a else None


def _has_mamba(model: str) -> bool:
    """Whether the catalog model has Mamba layers (the caller has checked that the model is in the catalog)."""
    from ..models import load_model

    return load_model(model).mamba is not None


def redundant_experts(row: MeasuredRow, ep: int, num_experts: int | None, assumptions: list[str], role: str = "") -> int:
    """Redundant expert slots for an EP degree: the number the notes state ("32 redundant experts"), else the
    fewest that make EP divide experts + slots (EPLB, SGLang --ep-num-redundant-experts); 0 when EP divides."""
    if not num_experts or ep <= 1:
        return 0
    m = re.search(r"(\d+) redundant experts( on decode)?", row.notes)
    if m and m.group(2) and role.startswith("prefill"):
        m = None  # stated for the decode pool only
    if m and (num_experts + int(m.group(1))) % ep == 0:
        return int(m.group(1))
    if num_experts % ep == 0:
        return 0
    r = (-num_experts) % ep
    assumptions.append(f"{role}EP{ep} does not divide {num_experts} experts: {r} redundant expert slots")
    return r


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
    case = _configure(row, default_isl=default_isl, default_osl=default_osl)
    if not isinstance(case, Case):
        return case
    from ..models import load_model

    moe = load_model(row.model).moe
    experts = moe.num_experts if moe else None
    notes = list(case.assumptions)
    changes = {}
    pool = {"prefill-only": "prefill_", "decode-only": "decode_"}.get(case.mode, "")
    for name, role in (("plan", pool), ("prefill_plan", "prefill_"), ("decode_plan", "decode_")):
        plan = getattr(case, name)
        if plan is not None:
            r = redundant_experts(row, plan.ep, experts, notes, role)
            if r != plan.redundant_experts:
                changes[name] = replace(plan, redundant_experts=r)
    plans = [p for p in (case.plan, case.prefill_plan, case.decode_plan) if p is not None]
    conventions = dict(case.conventions)
    if re.search(r"balanced (moe )?routing", row.notes, re.IGNORECASE):
        notes.append("expert routing balanced, as the source states: systematic expert imbalance 1.0, uniform expert popularity")
    else:
        conventions["routing_skew"] = REAL_ROUTING_SKEW
        notes.append(f"real routing: expert popularity skew {REAL_ROUTING_SKEW} (lognormal log-std of the experts' shares; "
                     "fewer distinct experts per step; configure.REAL_ROUTING_SKEW)")
        if not plans or any(p.ep > 1 for p in plans):
            conventions["expert_imbalance"] = REAL_ROUTING_IMBALANCE
            notes.append(f"real routing: systematic expert imbalance {REAL_ROUTING_IMBALANCE} on the busiest EP rank "
                         "(SGLang's perfect-EPLB ablation, configure.REAL_ROUTING_IMBALANCE)")
    m = re.search(r"enable_balance true, timeout_iters (\d+)", row.notes)
    if m and case.mode == "agg" and any(p.dp > 1 for p in plans):
        # TensorRT-LLM's attention-DP balance, as the deployment's config states. The engine has it
        # (simulate_aggregated adp_balance_iters, OperatingPoint options) but validation does not apply it:
        # on the one row that states it, it moves output from -15% to +100% and TPOT from +30% to -46%
        # (TTFT -85% -> -81%), so what it interacts with (the cost of a step where every rank prefills 8K
        # tokens, MTP acceptance, the token budget) is not right yet; docs/VALIDATION.md
        notes.append(f"the notes state TensorRT-LLM's attention-DP balance (timeout_iters {m.group(1)}); NOT applied "
                     f"(options adp_balance_iters={m.group(1)} would; see docs/VALIDATION.md, TTFT)")
    sharded = dp_sharded_of(row.framework, plans)
    if sharded is not None:
        conventions["dp_sharded"] = sharded
    if conventions != dict(case.conventions):
        changes["conventions"] = tuple(sorted(conventions.items()))
    if sharded is not None:
        notes.append(f"{row.framework} under attention DP: dp_sharded {sharded} (LM head and dense layers "
                     f"{'replicated per DP rank' if sharded in ('none', 'trtllm') else 'as the framework shards them'})")
    return replace(case, assumptions=tuple(notes), **changes)


def dp_sharded_of(framework: str, plans: list[ParallelPlan]) -> str | None:
    """The ``dp_sharded`` setting of the row's deployment (:data:`FRAMEWORK_DP_SHARDED`), or None when no stated
    plan uses attention DP (nothing to shard) or the framework keeps the project default (SGLang within one
    node). ``plans`` empty: the plan is searched, and the framework's setting applies to every candidate."""
    if plans and not any(p.dp > 1 for p in plans):
        return None
    if framework in ("sglang", "dynamo-sglang"):
        return "none" if any(p.ep > NVLINK_DOMAIN for p in plans) else None
    return FRAMEWORK_DP_SHARDED.get(framework)


def _configure(row: MeasuredRow, *, default_isl: int, default_osl: int) -> Case | Unexpressible:
    def no(reason: str) -> Unexpressible:
        return Unexpressible(row.id, reason)

    if not row.measured:
        return no("no measured metric")
    if re.search(r"includ\w*[^;]*cache[- ]hit", row.notes, re.IGNORECASE):
        return no("the measured throughput includes prefix/KV-cache hits (prefix caching is not modelled)")
    if re.search(r"\bno EPLB\b", row.notes, re.IGNORECASE):
        return no("expert routing without EPLB: the systematic imbalance of an unbalanced router is not modelled "
                  "(REAL_ROUTING_IMBALANCE is EPLB's residual; SGLang measured EPLB itself at 1.49x prefill and 2.54x "
                  "decode throughput)")
    if row.model not in list_models():
        return no(f"model {row.model} is not in the catalog")
    if row.hw not in list_hw():
        return no(f"no hardware profile for {row.hw}")
    assumptions: list[str] = []
    max_batch_tokens, max_seqs = SCHEDULER_DEFAULTS.get(row.framework, SCHEDULER_DEFAULTS["vllm"])
    if row.framework not in SCHEDULER_DEFAULTS and row.phase != "prefill":
        assumptions.append(f"framework {row.framework}: vLLM's scheduler limits ({max_batch_tokens} tokens, {max_seqs} seqs)")
    mtp = 0
    if row.mtp == MTP_ON:
        mtp = 1
        assumptions.append("mtp 'on' with depth not stated: 1 draft token (DeepSeek-V3's MTP depth), default acceptance")
    elif row.mtp:
        mtp = row.mtp
    tbo = overlap_stated(row.notes)
    if tbo:
        assumptions.append("two-batch overlap on (the notes say the deployment used it)")
    elif row.framework in FRAMEWORK_TBO:
        tbo = True
        assumptions.append(f"two-batch overlap on ({row.framework} always overlaps two micro-batches)")
    prec = precision_of(row, assumptions)
    conventions = dict(FRAMEWORK_CONVENTIONS.get(row.framework, {}))
    mla = MLA_DECODE_OVERHEAD_US.get((FRAMEWORK_KERNELS.get(row.framework, row.framework), row.hw))
    if mla and _attention_kind(row.model) == "mla":
        conventions["mla_decode_overhead_us"] = mla
    if conventions:
        assumptions.append(f"{row.framework} cost conventions: " + ", ".join(f"{k} {v}" for k, v in conventions.items()))
    runtime = FRAMEWORK_RUNTIME.get(row.framework, {})
    if runtime:
        assumptions.append(f"{row.framework} runtime: " + ", ".join(f"{k} {v:g}" for k, v in runtime.items()))
    common = dict(row_id=row.id, model=row.model, hw=row.hw, precision=tuple(sorted(prec.items())), mtp=mtp, tbo=tbo,
                  conventions=tuple(sorted(conventions.items())), runtime=tuple(sorted(runtime.items())))
    if row.phase == "decode":
        return _decode_pool(row, common, assumptions, max_batch_tokens, max_seqs, default_osl)
    if row.phase == "prefill":
        return _prefill_pool(row, common, assumptions, default_isl)
    isl, osl = row.isl, row.osl
    if isl is None:
        isl = default_isl
        assumptions.append(f"isl blank: {isl} (validation default)")
    if osl is None:
        osl = default_osl
        assumptions.append(f"osl blank: {osl} (validation default)")
    common.update(isl=isl, osl=osl, max_batch_tokens=max_batch_tokens, max_seqs=max_seqs)
    if row.mode == "agg":
        try:
            plan, instances = _plan(row.tp, row.ep, row.dp_attn, row.pp, row.num_gpus, row.framework, assumptions)
        except ValueError as exc:
            return Unexpressible(row.id, str(exc))
        gpus = row.num_gpus or (plan.num_gpus * instances if plan else None)
        concurrency = row.concurrency
        if concurrency is None:
            if row.decode_batch_per_gpu is None or gpus is None:
                return Unexpressible(row.id, "neither concurrency nor decode_batch_per_gpu with num_gpus is stated")
            concurrency = row.decode_batch_per_gpu * gpus
            assumptions.append(f"concurrency = decode_batch_per_gpu x num_gpus = {concurrency}")
        if plan is None:
            if row.tps_per_user is None:
                if gpus is None:
                    return Unexpressible(row.id, "no plan, no num_gpus and no measured tokens/s/user to search a plan by")
                plan = ParallelPlan(tp=min(gpus, NVLINK_DOMAIN), dp=1, ep=1, pp=1)
                instances = gpus // plan.num_gpus
                assumptions.append(f"plan not stated: the {row.framework} default, TP{plan.tp} x {instances} instance(s) "
                                   "(no tokens/s/user measured to search by)")
                return Case(mode="agg", concurrency=concurrency, plan=plan, instances=instances,
                            assumptions=tuple(assumptions), **common)
            return Case(mode="agg", concurrency=concurrency, search_gpus=gpus, assumptions=tuple(assumptions), **common)
        return Case(mode="agg", concurrency=concurrency, plan=plan, instances=instances, assumptions=tuple(assumptions), **common)
    # disaggregated, both pools
    if row.prefill_gpus is None or row.decode_gpus is None:
        return Unexpressible(row.id, "disaggregated row without prefill_gpus/decode_gpus (pool sizes unpublished)")
    if row.output_tps_per_gpu is not None and row.input_tps_per_gpu is not None and row.osl and row.isl:
        # a balanced system serves the same requests in both pools; per-pool figures that disagree by more
        # than 2x were measured pool by pool, not as one system
        req_in = row.input_tps_per_gpu * row.prefill_gpus / row.isl
        req_out = row.output_tps_per_gpu * row.decode_gpus / row.osl
        if max(req_in, req_out) > 2 * min(req_in, req_out):
            return Unexpressible(row.id, f"pools measured separately: prefill serves {req_in:.0f} req/s, decode "
                                 f"{req_out:.0f} req/s (one system would serve both equally); validated as the two "
                                 f"pool rows {row.id}:prefill and {row.id}:decode")
    try:
        pplan, pinst = _plan(row.prefill_tp, row.prefill_ep, row.prefill_dp_attn, None, row.prefill_gpus, row.framework,
                             assumptions, "prefill_")
        dplan, dinst = _plan(row.decode_tp, row.decode_ep, row.decode_dp_attn, None, row.decode_gpus, row.framework,
                             assumptions, "decode_")
    except ValueError as exc:
        return Unexpressible(row.id, str(exc))
    if pplan is None or dplan is None:
        return Unexpressible(row.id, "disaggregated row without pool parallelism (a two-pool plan search is not part of validation)")
    concurrency = row.concurrency
    if concurrency is None:
        if row.decode_batch_per_gpu is None:
            return Unexpressible(row.id, "neither concurrency nor decode_batch_per_gpu is stated")
        concurrency = row.decode_batch_per_gpu * row.decode_gpus
        assumptions.append(f"concurrency = decode_batch_per_gpu x decode_gpus = {concurrency}")
    elif row.decode_batch_per_gpu is not None:
        # both stated: the decode batch is the pool's seat cap per rank (what a closed loop larger than the
        # seats runs at; the rest of the clients queue, which is part of their TTFT)
        per_rank = row.decode_batch_per_gpu * dplan.tp
        common["max_seqs"] = per_rank
        assumptions.append(f"decode seats capped at decode_batch_per_gpu: {per_rank} running sequences per decode rank")
    return Case(mode="disagg", concurrency=concurrency, prefill_plan=pplan, prefill_instances=pinst, decode_plan=dplan,
                decode_instances=dinst, assumptions=tuple(assumptions), **common)


def pool_rows(row: MeasuredRow) -> list[MeasuredRow]:
    """A ``phase=both`` disaggregated row whose pools were measured separately (see :func:`configure`), as
    its ``phase=prefill`` row (the input metric) and its ``phase=decode`` row (output and per-user metrics, at
    the mean decode context ``isl + osl/2``); [] for any other row."""
    case = _configure(row, default_isl=DEFAULT_ISL, default_osl=DEFAULT_OSL) if row.mode == "disagg" else None
    if not isinstance(case, Unexpressible) or "pools measured separately" not in case.reason:
        return []
    blank = dict.fromkeys(("output_tps_per_gpu", "input_tps_per_gpu", "tps_per_user", "tpot_ms", "ttft_ms"))
    prefill = replace(row, id=f"{row.id}:prefill", phase="prefill", num_gpus=row.prefill_gpus, osl=None,
                      concurrency=None, decode_batch_per_gpu=None,
                      **(blank | {"input_tps_per_gpu": row.input_tps_per_gpu, "ttft_ms": row.ttft_ms}))
    decode = replace(row, id=f"{row.id}:decode", phase="decode", num_gpus=row.decode_gpus,
                     isl=row.isl + row.osl // 2, **(blank | {"output_tps_per_gpu": row.output_tps_per_gpu,
                                                             "tps_per_user": row.tps_per_user, "tpot_ms": row.tpot_ms}))
    return [prefill, decode]


def overlap_stated(notes: str) -> bool:
    """Whether the row's notes say the deployment overlapped two micro-batches (SGLang TBO, DeepSeek's
    dual micro-batch overlap, vLLM's DBO)."""
    text = notes.lower()
    return any(k in text for k in ("two-batch overlap", "tbo", "dual-batch overlap", "dual micro-batch", "dbo"))


def _pool_plan(row: MeasuredRow, role: str, assumptions: list[str]):
    """(plan, instances) of one pool (``role`` "prefill" or "decode"); with no degree stated, attention-DP
    over every GPU of the pool with EP over all of them: the wide-EP deployment per-pool publications describe."""
    gpus = getattr(row, f"{role}_gpus") or row.num_gpus
    if gpus is None:
        raise ValueError(f"phase={role} row without {role}_gpus or num_gpus")
    tp, ep, dp = (getattr(row, f"{role}_{k}") for k in ("tp", "ep", "dp_attn"))
    if tp is None and ep is None and dp is None:
        assumptions.append(f"{role} plan not stated: attention-DP {gpus} with EP {gpus} (wide EP over the pool)")
        return ParallelPlan(tp=1, dp=gpus, ep=gpus, pp=1), 1
    if tp is None and dp is None:
        tp, dp = 1, ep
        assumptions.append(f"{role}_tp/dp_attn blank: attention-DP {dp} over the EP{ep} group")
    plan, inst = _plan(tp, ep, dp, None, gpus, row.framework, assumptions, f"{role}_")
    return plan, inst


def _decode_pool(row, common, assumptions, max_batch_tokens, max_seqs, default_osl) -> Case | Unexpressible:
    """A decode-pool measurement: closed loop at the stated batch, KV already in place (decode-only mode).

    ``isl`` is the decode context length; requests start at ``isl - osl/2`` tokens of context so that the
    mean context over their decode is ``isl``."""
    if row.isl is None:
        return Unexpressible(row.id, "phase=decode row without isl (the decode context length)")
    try:
        plan, instances = _pool_plan(row, "decode", assumptions)
    except ValueError as exc:
        return Unexpressible(row.id, str(exc))
    gpus = plan.num_gpus * instances
    if row.decode_batch_per_gpu is not None:
        concurrency = row.decode_batch_per_gpu * gpus
        assumptions.append(f"concurrency = decode_batch_per_gpu {row.decode_batch_per_gpu} x {gpus} decode GPUs")
    elif row.concurrency is not None:
        concurrency = row.concurrency
    else:
        return Unexpressible(row.id, "phase=decode row without decode_batch_per_gpu or concurrency")
    osl = row.osl or min(DECODE_POOL_OSL, row.isl)
    if row.osl is None:
        assumptions.append(f"osl blank: {osl} (a decode-pool figure depends on the mean context, not on OSL)")
    isl = max(1, row.isl - osl // 2)
    assumptions.append(f"decode context: prompts of {isl} tokens so that the mean context over {osl} outputs is {row.isl}")
    per_rank = -(-concurrency // (plan.dp * instances))
    if per_rank > max_seqs:
        assumptions.append(f"running sequences per rank raised to the stated batch, {per_rank}")
        max_seqs = per_rank
    return Case(mode="decode-only", isl=isl, osl=osl, concurrency=concurrency, plan=plan, instances=instances,
                max_batch_tokens=max(max_batch_tokens, per_rank), max_seqs=max_seqs, assumptions=tuple(assumptions),
                **common)


def _prefill_pool(row, common, assumptions, default_isl) -> Case | Unexpressible:
    """A prefill-pool measurement: every request generates one token, closed loop deep enough to keep every
    rank's token budget full (prefill-only mode)."""
    try:
        plan, instances = _pool_plan(row, "prefill", assumptions)
    except ValueError as exc:
        return Unexpressible(row.id, str(exc))
    isl = row.isl
    if isl is None:
        isl = default_isl
        assumptions.append(f"isl blank: {isl} (validation default)")
    budget = PREFILL_BATCH_TOKENS
    ranks = plan.dp * instances
    concurrency = 2 * ranks * max(1, -(-budget // isl))
    assumptions.append(f"prefill budget {budget} tokens per rank; closed loop of {concurrency} requests keeps it full")
    return Case(mode="prefill-only", isl=isl, osl=1, concurrency=concurrency, plan=plan, instances=instances,
                max_batch_tokens=budget, max_seqs=max(1024, 2 * max(1, -(-budget // isl))),
                assumptions=tuple(assumptions), **common)


__all__ = ["Case", "DEFAULT_ISL", "DEFAULT_OSL", "SCHEDULER_DEFAULTS", "Unexpressible", "configure", "precision_of"]

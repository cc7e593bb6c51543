"""Flags shared by the commands that cost or simulate a model on hardware under a plan."""

from __future__ import annotations

import argparse

from ..errors import InputError
from ..hwprofile_io import load_hw
from ..models import load_model
from ..models.spec import BYTES_PER_ELEMENT
from ..parallel import DEFAULT_DP_SHARDED, ParallelPlan, parse_dp_sharded
from ..schema import bounds as B

DEFAULT_MODEL = "kimi-k2-1t"
DEFAULT_HW = "h200_sxm"


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"catalog name, model YAML or HF config.json (default {DEFAULT_MODEL})")
    p.add_argument("--hw", default=DEFAULT_HW, help=f"hardware profile name or YAML path (default {DEFAULT_HW})")
    dtypes = sorted(BYTES_PER_ELEMENT)
    g = p.add_argument_group("precision overrides (default: the catalog entry's)")
    g.add_argument("--precision", choices=("bf16", "fp8", "fp4"),
                   help="shorthand: fp4 = what NVFP4 checkpoints ship (routed experts FP4, the rest as the catalog "
                        "entry states, FP4 dispatch); fp8/bf16 = every linear layer, GEMM activations and dispatch "
                        "in that dtype (combine stays BF16); the per-tensor flags below override it")
    for name in ("weights", "activations", "kv_cache", "dispatch", "combine"):
        g.add_argument(f"--{name.replace('_', '-')}-dtype", dest=f"{name}_dtype", choices=dtypes, metavar="DTYPE",
                       help=f"{name.replace('_', ' ')} dtype: {', '.join(dtypes)}")
    for name, what in (("expert_weights", "routed experts"), ("attention_weights", "attention projections"),
                       ("dense_weights", "dense FFN, shared experts, latent and Mamba projections"),
                       ("embedding_weights", "embedding and LM head")):
        g.add_argument(f"--{name.replace('_', '-')}-dtype", dest=f"{name}_dtype", choices=dtypes, metavar="DTYPE",
                       help=f"weights of the {what} (default: --weights-dtype, embedding BF16)")
    p.add_argument("--expert-imbalance", type=B.IMBALANCE, default=1.0, metavar="X",
                   help=f"systematic imbalance: busiest expert slot's pairs / what uniform routing gives it, {B.IMBALANCE.text} "
                        "(default 1.0 = experts equally popular; the statistical busiest rank is always counted)")


def add_costs_arg(p: argparse.ArgumentParser) -> None:
    """``--costs roofline|measured|auto``: for every command that costs engine steps (docs/KERNELS.md)."""
    from ..cost.measured import COSTS_MODES

    p.add_argument("--costs", choices=COSTS_MODES, default="roofline",
                   help="op times from the roofline (default), from the GPU's measured tables under "
                        "hwprofiles/measured/<gpu>/ (error if it has none), or auto (measured where the GPU has tables; "
                        "ops no table reaches keep the roofline either way)")


def add_plan_args(p: argparse.ArgumentParser, prefix: str = "", label: str = "") -> None:
    """``--tp/--dp/--ep/--pp``, or with ``prefix`` (``prefill-``) a role's plan whose unset flags fall back to
    the plain ones."""
    g = p.add_argument_group(f"{label or 'parallel plan'} (GPUs = tp * dp * pp; EP spans tp * dp)")
    for name, help_ in (("tp", "tensor parallel"), ("dp", "attention data-parallel ranks"), ("ep", "expert parallel"),
                        ("pp", "pipeline stages")):
        default = "tp*dp" if name == "ep" else ("--" + name if prefix else "1")
        g.add_argument(f"--{prefix}{name}", type=B.PLAN_DEGREE, default=None, metavar="N",
                       help=f"{help_}, {B.PLAN_DEGREE.text} (default {default})")
    g.add_argument(f"--{prefix}redundant-experts", type=B.REDUNDANT, default=None, metavar="R",
                   help=f"redundant expert slots, {B.REDUNDANT.text} (EPLB copies; EP must divide experts + R; default "
                        + ("--redundant-experts)" if prefix else "0)"))
    if not prefix:
        g.add_argument("--dp-sharded", default=None, metavar="SET",
                       help="under attention DP, which of embedding, lm_head, shared_experts, dense_ffn are sharded "
                            "over the whole tp*dp group: sglang (lm_head,dense_ffn; the default), trtllm (none), none, "
                            "all, or a comma list (docs/MODELING.md §3a)")


def add_serving_args(p: argparse.ArgumentParser) -> None:
    """Instance options that change the step cost: speculative decoding / MTP and two-batch overlap."""
    g = p.add_argument_group('serving features (docs/MODELING.md, "Serving features")')
    g.add_argument("--mtp", type=B.MTP, default=None, metavar="K",
                   help=f"MTP / speculative decoding: K draft tokens per step, one draft layer each, {B.MTP.text} (default off)")
    g.add_argument("--mtp-acceptance", default=None, metavar="A",
                   help="acceptance: a rate per draft position (0.85, the DeepSeek-V3 default), rates per position "
                        "(0.9,0.7,0.5), or a mean accepted length including the bonus token (len:2.4)")
    g.add_argument("--tbo", action="store_true",
                   help="two-batch overlap: two micro-batches, one's all-to-all hidden behind the other's compute "
                        "(SGLang --enable-two-batch-overlap)")
    add_convention_args(p)


def add_convention_args(p: argparse.ArgumentParser) -> None:
    """The cost model's named conventions (sim/cost/conventions.py, docs/MODELING.md §4a)."""
    from ..cost.conventions import DEFAULT_CONVENTIONS as D, DISPATCH_MODES, EXPERT_FUSIONS, TP_ALLREDUCES

    g = p.add_argument_group("cost conventions (docs/MODELING.md §4a)")
    g.add_argument("--expert-fusion", choices=EXPERT_FUSIONS, default=None,
                   help=f"routed-expert activation traffic (default {D.expert_fusion}: activation in GEMM1's epilogue)")
    g.add_argument("--dispatch-prefill", choices=DISPATCH_MODES, default=None,
                   help=f"all-to-all copies per token in steps with a prefill chunk (default {D.dispatch_prefill}: DeepEP normal)")
    g.add_argument("--dispatch-decode", choices=DISPATCH_MODES, default=None,
                   help=f"all-to-all copies per token in decode steps (default {D.dispatch_decode}: DeepEP low-latency)")
    g.add_argument("--tp-allreduce", choices=TP_ALLREDUCES, default=None,
                   help=f"TP all-reduce algorithm (default {D.tp_allreduce}; nvls = NVLink SHARP)")
    from ..schema.bounds import Real

    overhead = Real(0.0, 1e4)
    g.add_argument("--mla-decode-overhead-us", type=overhead, default=None, metavar="US",
                   help=f"GPU time per MLA layer in each step with decodes over the op-by-op roofline, microseconds "
                        f"({overhead.text}; default 0; measured on H200: vLLM 73.7, TensorRT-LLM 29.1; docs/MODELING.md §4a.9)")
    from ..cost.routing import MAX_ROUTING_SKEW

    skew = Real(0.0, MAX_ROUTING_SKEW)
    g.add_argument("--routing-skew", type=skew, default=None, metavar="SIGMA",
                   help=f"expert popularity of the router: log-standard deviation of the experts' shares of the picks "
                        f"({skew.text}; default 0 = uniform routing; a trained router measured ~1.07, validation applies "
                        f"it to real-router rows; docs/MODELING.md §4a.3c)")


def resolve_conventions(args):
    """The :class:`~latentmoe_sim.cost.conventions.Conventions` the flags name (defaults where unset)."""
    from ..cost.conventions import Conventions

    names = ("expert_fusion", "dispatch_prefill", "dispatch_decode", "tp_allreduce", "mla_decode_overhead_us",
             "routing_skew")
    return Conventions(**{n: getattr(args, n) for n in names if getattr(args, n, None) is not None})


def resolve_serving(args) -> dict:
    """``spec_decode`` and ``tbo`` keyword arguments for :func:`~latentmoe_sim.cost.build_instance_cost`."""
    from ..cost import SpecDecode

    spec = None
    if args.mtp is not None and args.mtp != 0:
        spec = SpecDecode.parse(args.mtp, args.mtp_acceptance)
    elif args.mtp_acceptance is not None:
        raise InputError("--mtp-acceptance given without --mtp K")
    elif args.mtp is not None and args.mtp < 0:
        raise InputError(f"--mtp = {args.mtp} must be >= 0")
    return {"spec_decode": spec, "tbo": bool(args.tbo)}


def resolve_model_hw(args):
    """The model (with any precision overrides) and the hardware profile the flags name. Prints the one
    warning line (stderr) when FP4 weights meet a GPU without FP4 tensor cores."""
    import sys

    from ..precision import PRESETS, fp4_warning

    preset = dict(PRESETS[args.precision]) if args.precision else {}
    flags = {name: getattr(args, f"{name}_dtype") for name in
             ("weights", "activations", "kv_cache", "dispatch", "combine", "expert_weights", "attention_weights",
              "dense_weights", "embedding_weights")}
    model = load_model(args.model).with_precision(**(preset | {k: v for k, v in flags.items() if v is not None}))
    if args.expert_imbalance < 1.0:
        raise InputError(f"--expert-imbalance = {args.expert_imbalance} must be >= 1")
    hw = load_hw(args.hw)
    warning = fp4_warning(model.precision, hw)
    if warning:
        print(warning, file=sys.stderr)
    return model, hw


def resolve_plan(args, model, hw, prefix: str = "") -> ParallelPlan:
    """The plan of the plain flags, or of a role's flags (``prefix`` ``prefill-``/``decode-``) falling back to
    the plain ones; validated, with errors naming the flag given."""
    def get(name):
        value = getattr(args, f"{prefix}{name}".replace("-", "_"))
        return getattr(args, name.replace("-", "_")) if value is None and prefix else value

    tp, dp, pp, ep, red = (get(n) for n in ("tp", "dp", "pp", "ep", "redundant-experts"))
    tp, dp, pp, red = tp or 1, dp or 1, pp or 1, red or 0
    if ep is None:
        ep = tp * dp if model.moe else 1
    role = prefix.rstrip("-")
    shard = getattr(args, "dp_sharded", None)
    sharded = DEFAULT_DP_SHARDED if shard is None else parse_dp_sharded(shard)
    return ParallelPlan(tp=tp, dp=dp, ep=ep, pp=pp, redundant_experts=red, dp_sharded=sharded).validate(
        model.moe.num_experts if model.moe else None, hw, None, model.num_layers,
        where=f"{role} plan" if role else "plan", flag_prefix=prefix)


def positive(name: str, value, allow_zero: bool = False):
    if value is None:
        return value
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{name} = {value} must be {'>= 0' if allow_zero else '> 0'}")
    return value

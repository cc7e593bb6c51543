"""`lmsim cost`: the per-op cost of one engine step, and `lmsim memory`: memory per GPU and KV capacity."""

from __future__ import annotations

from ..cost import CompiledStepCost, CostModel, RankLoad, chunk_load
from ..errors import DoesNotFit, InputError
from ..schema import bounds as B
from ..memory import plan_memory
from ..cost.measured import resolve_costs
from ._common import (add_costs_arg, add_model_args, add_plan_args, add_serving_args, resolve_conventions,
                      resolve_model_hw, resolve_plan, resolve_serving)
from ._fmt import human, print_json, table


def register(sub) -> None:
    p = sub.add_parser("cost", help="per-op cost of one engine step on one instance")
    add_model_args(p)
    add_plan_args(p)
    g = p.add_argument_group("batch of EVERY attention-DP rank")
    g.add_argument("--prefill-tokens", type=B.TOKENS_OR_ZERO, default=0, metavar="N",
                   help=f"prefill chunk length, tokens, {B.TOKENS_OR_ZERO.text} (default 0)")
    g.add_argument("--prefill-offset", type=B.TOKENS_OR_ZERO, default=0, metavar="N",
                   help=f"tokens of the prompt computed before this chunk, {B.TOKENS_OR_ZERO.text} (default 0)")
    g.add_argument("--decode-seqs", type=B.SEQS_OR_ZERO, default=0, metavar="N",
                   help=f"decoding sequences, {B.SEQS_OR_ZERO.text} (default 0)")
    g.add_argument("--kv-len", type=B.TOKENS_OR_ZERO, default=0, metavar="N",
                   help=f"context length each decode attends, tokens, {B.TOKENS_OR_ZERO.text} (default 0)")
    add_costs_arg(p)
    add_serving_args(p)  # includes the cost conventions (add_convention_args)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cost)

    m = sub.add_parser("memory", help="weights, activations, reserve and KV capacity per GPU under a plan")
    add_model_args(m)
    add_plan_args(m)
    m.add_argument("--max-batch-tokens", type=B.BATCH_TOKENS, default=2048, metavar="N",
                   help=f"token budget per step, {B.BATCH_TOKENS.text} (default 2048)")
    m.add_argument("--max-seqs", type=B.SEQS, default=128, metavar="N",
                   help=f"running sequences per rank, {B.SEQS.text} (default 128)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_memory)


def _cost(args) -> int:
    model, hw = resolve_model_hw(args)
    plan = resolve_plan(args, model, hw)
    if args.prefill_tokens == 0 and args.decode_seqs == 0:
        raise InputError("empty batch: give --prefill-tokens > 0 and/or --decode-seqs > 0")
    p, pairs, ctx = chunk_load(args.prefill_tokens, args.prefill_offset) if args.prefill_tokens else (0, 0.0, 0)
    load = RankLoad(p, pairs, ctx, args.decode_seqs, args.decode_seqs * args.kv_len)
    measured = resolve_costs(args.costs, hw)
    cm = CostModel(model, hw, plan, expert_imbalance=args.expert_imbalance, measured=measured,
                   conventions=resolve_conventions(args))
    loads = [load] * plan.dp
    bd = cm.breakdown(loads)
    compiled = CompiledStepCost(cm).step_time(loads)
    tokens = (p + args.decode_seqs) * plan.dp
    from ..precision import describe

    out = {
        "model": model.name, "hw": hw.name, "plan": plan.describe(), "precision": describe(model.precision, hw),
        "placement": plan.placement(hw),
        "step_time_s": bd["step_time_s"], "compiled_step_time_s": compiled, "overhead_s": bd["overhead_s"],
        "tokens_per_step": tokens, "tokens_per_s_per_gpu": tokens / bd["step_time_s"] / plan.num_gpus,
        "costs": args.costs, "measured_tables": measured.where if measured else None,
        "ops": [o.as_dict() for o in bd["ops"]],
    }
    out |= _serving_step(args, model, hw, plan, measured, loads, cm.conventions)
    if args.json:
        print_json(out)
        return 0
    print_cost_table(out, bd, p, args)
    return 0


def _placement_text(placement: dict) -> str:
    """``{'tp_allreduce': 'nvlink', ...}`` as words: 'TP all-reduce over nvlink, ...'."""
    names = {"tp_allreduce": "TP all-reduce", "ep_alltoall": "EP all-to-all", "pp_p2p": "PP send/recv"}
    parts = [f"{names.get(k, k)} over {v}" if v != "none" else f"{names.get(k, k)} none"
             for k, v in placement.items() if k in names]
    parts += [f"{k.replace('_', ' ')} {v}" for k, v in placement.items() if k not in names]
    return ", ".join(parts)


def print_cost_table(out: dict, bd: dict, prefill_tokens: int, args) -> None:
    """The readable `lmsim cost` report: a header, one row per op with its share of the step, the total."""
    step = bd["step_time_s"]
    print(f"model {out['model']} on {out['hw']}; plan {out['plan']}; precision {out['precision']}")
    print(f"batch per attention-DP rank: prefill {prefill_tokens} tokens after {args.prefill_offset}, "
          f"{args.decode_seqs} decodes at KV {args.kv_len}; op times from {out['costs']}")
    rows = []
    for o in bd["ops"]:
        note = o.bound + (f", {o.source} (roofline {o.roofline_s * 1e3:.3f} ms)" if o.roofline_s is not None else "")
        rows.append((o.name, o.count, human(o.flops), human(o.mem_bytes, "B"), human(o.comm_bytes, "B"),
                     f"{o.time_s * 1e3:.3f}", f"{o.time_s / step:.1%}", note))
    rows.append(("step overhead", "", "", "", "", f"{bd['overhead_s'] * 1e3:.3f}", f"{bd['overhead_s'] / step:.1%}", ""))
    print(table(rows, ("op", "count", "FLOPs", "HBM bytes", "comm bytes", "time ms", "share", "bound / source"),
                align="lrrrrrrl"))
    print(f"step time {step * 1e3:.3f} ms: {out['tokens_per_step']} tokens, {out['tokens_per_s_per_gpu']:.1f} tokens/s/GPU")
    print(f"collectives: {_placement_text(out['placement'])}")
    if out.get("serving_step_time_s") is not None:
        feats = ", ".join(x for x in (out["mtp"], "two-batch overlap" if out["tbo"] else None) if x)
        line = f"with {feats}: engine step {out['serving_step_time_s'] * 1e3:.3f} ms"
        if out["mtp"]:
            line += (f" per token of each decode (a real step of {out['mtp_real_step_time_s'] * 1e3:.3f} ms verifies "
                     f"and drafts, emitting {out['mtp_tokens_per_step']:.2f} tokens per sequence)")
        print(line + "; the op table above is the plain step")


def _serving_step(args, model, hw, plan, measured, loads, conventions) -> dict:
    """With --mtp/--tbo: the step time of the serving step cost (docs/MODELING.md, "Serving features")."""
    serving = resolve_serving(args)
    spec, tbo = serving["spec_decode"], serving["tbo"]
    if spec is None and not tbo:
        return {}
    from ..cost import build_step_cost

    cost = build_step_cost(model, hw, plan, expert_imbalance=args.expert_imbalance, spec_decode=spec, tbo=tbo,
                           measured=measured, conventions=conventions)
    out = {"serving_step_time_s": cost.step_time(loads), "tbo": tbo, "mtp": spec.describe() if spec else None,
           "mtp_tokens_per_step": spec.tokens_per_step if spec else 1.0}
    if spec is not None:
        out["mtp_real_step_time_s"] = cost.real_step(loads)
    return out


def _memory(args) -> int:
    model, hw = resolve_model_hw(args)
    plan = resolve_plan(args, model, hw)
    mem = plan_memory(model, hw, plan, max_batch_tokens=args.max_batch_tokens, max_seqs=args.max_seqs)
    out = {"model": model.name, "hw": hw.name, "plan": plan.describe(), **mem.as_dict()}
    not_fit = (f"{model.name} on {hw.name} with {plan.describe()} does not fit: no room for the KV cache "
               f"({mem.kv_bytes / 2**30:.2f} GiB left per GPU); use more GPUs or lower precision")
    if args.json:
        print_json(out)
        if not mem.fits:
            raise DoesNotFit(not_fit)
        return 0
    gib = 2.0**30
    print(f"{model.name} on {hw.name}, {plan.describe()}: per GPU of {mem.hbm_bytes / gib:.1f} GiB HBM")
    for k, v in mem.weights_by_class.items():
        print(f"  weights {k:22s} {v / gib:9.2f} GiB")
    print(f"  weights total                  {mem.weight_bytes / gib:9.2f} GiB")
    print(f"  activation workspace           {mem.activation_bytes / gib:9.2f} GiB")
    print(f"  recurrent state                {mem.state_bytes / gib:9.2f} GiB")
    print(f"  runtime reserve                {mem.reserve_bytes / gib:9.2f} GiB")
    print(f"  left for KV cache              {mem.kv_bytes / gib:9.2f} GiB at {mem.kv_bytes_per_token:,.0f} B/token")
    if mem.fits:
        print(f"  KV capacity: {mem.kv_capacity_tokens:,} tokens per attention-DP rank")
    else:
        print("  does not fit: no room for the KV cache")
        raise DoesNotFit(not_fit)
    return 0

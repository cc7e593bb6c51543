"""`lmsim simulate`: one operating point through the SimPy serving engine.

Aggregated (`--mode agg`, chunked-prefill piggybacking) uses the plan flags `--tp/--dp/--ep/--pp` and
`--instances`; disaggregated (`--mode disagg`) takes `--prefill-*` and `--decode-*` plans (each defaulting to
the plain flags) and `--prefill-instances/--decode-instances`. The single-pool modes (`--mode decode-only`,
`--mode prefill-only`, :mod:`latentmoe_sim.cost.pools`) run one pool on the plain plan flags, as published
per-pool benchmarks measure it.
"""

from __future__ import annotations

import time

from dataclasses import replace

from ..cost import build_instance_cost
from ..cost.pools import DecodeOnlyStepCost
from ..errors import InputError
from ._common import (add_costs_arg, add_model_args, add_plan_args, add_serving_args, positive, resolve_model_hw,
                      resolve_plan, resolve_serving)
from ._fmt import print_json

#: The keys `--json` always carries (the issue's contract), in print order.
KEY_METRICS = ("output_tokens_per_s_per_gpu", "tokens_per_s_per_user_p50", "ttft_p50_s", "tpot_p50_s",
               "completed_requests", "num_gpus")


def register(sub) -> None:
    p = sub.add_parser("simulate", help="simulate one operating point (aggregated or disaggregated serving)")
    add_model_args(p)
    add_costs_arg(p)
    p.add_argument("--mode", choices=("agg", "disagg", "decode-only", "prefill-only"), default="agg",
                   help="aggregated (chunked piggybacking), disaggregated, or one pool fed from an ideal source: "
                        "decode-only (KV already there; figure: output tokens/s per decode GPU) or prefill-only "
                        "(no decode; figure: input tokens/s per prefill GPU)")
    add_plan_args(p)
    add_serving_args(p)
    p.add_argument("--instances", type=int, default=1, help="aggregated instances behind the router (default 1)")
    for role in ("prefill", "decode"):
        add_plan_args(p, prefix=f"{role}-", label=f"{role} pool plan (--mode disagg; default: the plain plan flags)")
        p.add_argument(f"--{role}-instances", type=int, default=1, help=f"{role} instances (default 1)")
    w = p.add_argument_group("workload")
    w.add_argument("--workload", default="decode-heavy", help="preset: decode-heavy (ISL 1024, OSL 8192) or prefill-heavy (8192, 1024)")
    w.add_argument("--input-len", help="override ISL: N, uniform:LO:HI, lognormal:MEDIAN:SIGMA, empirical:FILE[:COL]")
    w.add_argument("--output-len", help="override OSL (same forms)")
    src = w.add_mutually_exclusive_group()
    src.add_argument("--concurrency", type=int, help="closed loop: requests kept in the system (the default, 64)")
    src.add_argument("--rate", type=float, help="open loop: mean arrivals per second")
    src.add_argument("--trace", help="replay a CSV/JSONL trace (arrival, input and output tokens)")
    w.add_argument("--burstiness", type=float, help="coefficient of variation of gamma inter-arrivals (1 = Poisson)")
    w.add_argument("--num-requests", type=int, help="requests to simulate (default: the preset's)")
    w.add_argument("--seed", type=int, default=0)
    s = p.add_argument_group("scheduler")
    s.add_argument("--max-batch-tokens", type=int, default=2048, help="token budget per step (vLLM default 2048)")
    s.add_argument("--max-seqs", type=int, default=128, help="running sequences per rank (vLLM default 128)")
    s.add_argument("--block-size", type=int, default=16, help="KV block size, tokens (vLLM default 16)")
    s.add_argument("--prefill-max-batch-tokens", type=int, default=16384, help="disagg prefill token budget per step")
    s.add_argument("--step-by-step", action="store_true", help="one event per engine step (slow; for checking)")
    m = p.add_argument_group("metrics")
    m.add_argument("--warmup-fraction", type=float, default=0.1)
    m.add_argument("--cooldown-fraction", type=float, default=0.1)
    m.add_argument("--sla-ttft-s", type=float, help="goodput: TTFT bound, seconds")
    m.add_argument("--sla-tpot-s", type=float, help="goodput: TPOT bound, seconds")
    p.add_argument("--records", help="write per-request records to this .parquet or .csv file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_simulate)


def _workload(args):
    from ..workloads import make_workload

    if args.concurrency is None and args.rate is None and args.trace is None:
        args.concurrency = 64
    return make_workload(args.workload, input_len=args.input_len, output_len=args.output_len, concurrency=args.concurrency,
                         rate=args.rate, burstiness=args.burstiness, trace=args.trace, num_requests=args.num_requests,
                         seed=args.seed)


def _instance(args, model, hw, prefix: str = "", max_batch_tokens: int | None = None):
    plan = resolve_plan(args, model, hw, prefix)
    return plan, build_instance_cost(model, hw, plan, max_batch_tokens=max_batch_tokens or args.max_batch_tokens,
                                     max_seqs=args.max_seqs, expert_imbalance=args.expert_imbalance,
                                     costs=args.costs, **resolve_serving(args))


def _simulate(args) -> int:
    from ..engine import simulate_aggregated, simulate_disaggregated

    model, hw = resolve_model_hw(args)
    for name in ("instances", "prefill_instances", "decode_instances", "max_batch_tokens", "max_seqs", "block_size",
                 "prefill_max_batch_tokens"):
        positive("--" + name.replace("_", "-"), getattr(args, name))
    if args.mode == "prefill-only":
        if args.output_len not in (None, "1"):
            raise InputError(f"--output-len {args.output_len}: --mode prefill-only generates exactly 1 token (the prefill's)")
        args.output_len = "1"
    requests = _workload(args).generate()
    t0 = time.process_time()
    if args.mode in ("decode-only", "prefill-only"):
        budget = args.max_batch_tokens if args.mode == "decode-only" else args.prefill_max_batch_tokens
        plan, inst = _instance(args, model, hw, max_batch_tokens=budget)
        if args.mode == "decode-only":
            inst = replace(inst, step_cost=DecodeOnlyStepCost(inst.step_cost))
        setup = time.process_time() - t0
        result = simulate_aggregated(inst, args.instances, requests, max_batch_tokens=budget,
                                     max_seqs=args.max_seqs, block_size=args.block_size, step_by_step=args.step_by_step)
        plans = {"plan": plan.describe(), "instances": args.instances}
    elif args.mode == "agg":
        plan, inst = _instance(args, model, hw)
        setup = time.process_time() - t0
        result = simulate_aggregated(inst, args.instances, requests, max_batch_tokens=args.max_batch_tokens,
                                     max_seqs=args.max_seqs, block_size=args.block_size, step_by_step=args.step_by_step)
        plans = {"plan": plan.describe(), "instances": args.instances}
    else:
        pplan, pre = _instance(args, model, hw, "prefill-", args.prefill_max_batch_tokens)
        dplan, dec = _instance(args, model, hw, "decode-")
        setup = time.process_time() - t0
        result = simulate_disaggregated(pre, args.prefill_instances, dec, args.decode_instances, requests,
                                        prefill_max_batch_tokens=args.prefill_max_batch_tokens, decode_max_seqs=args.max_seqs,
                                        block_size=args.block_size, step_by_step=args.step_by_step)
        plans = {"prefill_plan": pplan.describe(), "prefill_instances": args.prefill_instances,
                 "decode_plan": dplan.describe(), "decode_instances": args.decode_instances}
    cpu = time.process_time() - t0
    summary = result.summary(warmup_fraction=args.warmup_fraction, cooldown_fraction=args.cooldown_fraction,
                             sla_ttft_s=args.sla_ttft_s, sla_tpot_s=args.sla_tpot_s)
    serving = resolve_serving(args)
    features = {"mtp": serving["spec_decode"].describe() if serving["spec_decode"] else None,
                "mtp_tokens_per_step": serving["spec_decode"].tokens_per_step if serving["spec_decode"] else 1.0,
                "tbo": serving["tbo"]}
    out = {"model": model.name, "hw": hw.name, "mode": args.mode, **plans, **features, "workload": args.workload,
           **{k: summary.get(k) for k in KEY_METRICS}, **summary,
           "engine_steps": result.steps, "engine_events": result.events, "setup_cpu_s": setup, "simulate_cpu_s": cpu - setup}
    if args.records:
        path = str(args.records)
        if path.endswith(".parquet"):
            result.records.write_parquet(path)
        elif path.endswith(".csv"):
            result.records.write_csv(path)
        else:
            raise InputError(f"--records {path}: must end in .parquet or .csv")
    if args.json:
        print_json(out)
        return 0
    extras = [x for x in (features["mtp"], "two-batch overlap" if features["tbo"] else None) if x]
    print(f"{model.name} on {hw.name}, {args.mode}: " + ", ".join(f"{k} {v}" for k, v in plans.items())
          + "".join(f"; {x}" for x in extras))
    print(f"workload {args.workload}: {summary['completed_requests']} requests completed, {summary['measured_requests']} "
          f"in the steady window [{summary['window_start_s']:.1f}, {summary['window_end_s']:.1f}] s")
    if args.mode == "prefill-only":
        print(f"  input tokens/s/GPU    {summary['input_tokens_per_s_per_gpu']:10.1f}  (per prefill GPU)")
        print(f"  TTFT p50 / p99        {summary['ttft_p50_s']:10.3f} / {summary['ttft_p99_s']:.3f} s")
    else:
        print(f"  output tokens/s/GPU   {summary['output_tokens_per_s_per_gpu']:10.1f}  (95% CI +/- {summary['output_tokens_per_s_per_gpu_ci95']:.1f})")
        print(f"  tokens/s/user p50     {summary['tokens_per_s_per_user_p50']:10.2f}  (p10 {summary['tokens_per_s_per_user_p10']:.2f})")
        print(f"  TTFT p50 / p99        {summary['ttft_p50_s']:10.3f} / {summary['ttft_p99_s']:.3f} s")
        print(f"  TPOT p50 / p99        {summary['tpot_p50_s'] * 1e3:10.2f} / {summary['tpot_p99_s'] * 1e3:.2f} ms")
    print(f"  preemptions           {summary['preemptions']:10d}   GPUs {summary['num_gpus']}")
    print(f"  engine: {result.steps} steps in {result.events} events, {cpu - setup:.3f} s CPU")
    return 0

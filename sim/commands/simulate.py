"""`lmsim simulate`: one operating point through the SimPy serving engine.

The flags build an :class:`~latentmoe_sim.point.OperatingPoint` and :func:`~latentmoe_sim.point.run_point`
simulates it; this module only parses and prints. Aggregated (`--mode agg`, chunked-prefill piggybacking)
uses the plan flags `--tp/--dp/--ep/--pp` and `--instances`; disaggregated (`--mode disagg`) takes
`--prefill-*` and `--decode-*` plans (each defaulting to the plain flags) and
`--prefill-instances/--decode-instances`. The single-pool modes (`--mode decode-only`, `--mode prefill-only`,
:mod:`latentmoe_sim.cost.pools`) run one pool on the plain plan flags, as published per-pool benchmarks
measure it. The request count follows the stopping rule
(docs/SWEEP.md) unless `--num-requests N` fixes it; a point that is not `ok` prints one warning line.
"""

from __future__ import annotations

import sys

from ..errors import InputError
from ..point import OperatingPoint, run_point
from ._common import add_costs_arg, add_model_args, add_plan_args, add_serving_args, positive
from ._fmt import print_json

#: The keys `--json` always carries (the issue's contract), in print order.
KEY_METRICS = ("output_tokens_per_s_per_gpu", "tokens_per_s_per_user_p50", "ttft_p50_s", "tpot_p50_s",
               "completed_requests", "num_gpus")

_DEFAULTS = OperatingPoint()


def register(sub) -> None:
    p = sub.add_parser("simulate", help="simulate one operating point (aggregated or disaggregated serving)")
    add_model_args(p)
    p.add_argument("--mode", choices=("agg", "disagg", "decode-only", "prefill-only"), default="agg",
                   help="aggregated (chunked piggybacking), disaggregated, or one pool fed from an ideal source: "
                        "decode-only (KV already there; figure: output tokens/s per decode GPU) or prefill-only "
                        "(no decode; figure: input tokens/s per prefill GPU)")
    add_plan_args(p)
    add_serving_args(p)
    add_costs_arg(p)
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
    w.add_argument("--ramp-s", type=float, help="closed loop: spread the clients' first requests over this many "
                   "seconds (default: one measured request lifetime, which breaks lock-step; 0 = all at once)")
    w.add_argument("--seed", type=int, default=0)
    st = p.add_argument_group("stopping rule (default: adaptive request count, docs/SWEEP.md)")
    st.add_argument("--num-requests", type=int, help="simulate exactly N requests (overrides the adaptive rule)")
    st.add_argument("--ci-target", type=float, default=_DEFAULTS.ci_target,
                    help=f"95%% CI half-width of tokens/s/GPU, as a fraction of it (default {_DEFAULTS.ci_target})")
    st.add_argument("--max-requests", type=int, default=_DEFAULTS.max_requests,
                    help=f"cap of the adaptive rule (default {_DEFAULTS.max_requests})")
    s = p.add_argument_group("scheduler")
    s.add_argument("--max-batch-tokens", type=int, default=2048, help="token budget per step (vLLM default 2048)")
    s.add_argument("--max-seqs", type=int, default=128, help="running sequences per rank (vLLM default 128)")
    s.add_argument("--block-size", type=int, default=16, help="KV block size, tokens (vLLM default 16)")
    s.add_argument("--prefill-max-batch-tokens", type=int, default=_DEFAULTS.prefill_max_batch_tokens,
                   help=f"disagg prefill token budget per step (default {_DEFAULTS.prefill_max_batch_tokens}); "
                        "--max-batch-tokens is the decode pool's")
    s.add_argument("--step-by-step", action="store_true", help="one event per engine step (slow; for checking)")
    m = p.add_argument_group("metrics")
    m.add_argument("--warmup-fraction", type=float, default=0.1)
    m.add_argument("--cooldown-fraction", type=float, default=0.1)
    m.add_argument("--sla-ttft-s", type=float, help="goodput: TTFT bound, seconds")
    m.add_argument("--sla-tpot-s", type=float, help="goodput: TPOT bound, seconds")
    p.add_argument("--records", help="write per-request records to this .parquet or .csv file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_simulate)


def point_from_args(args) -> OperatingPoint:
    """The operating point the flags describe (names match :class:`OperatingPoint` fields)."""
    for name in ("instances", "prefill_instances", "decode_instances", "max_batch_tokens", "max_seqs", "block_size",
                 "prefill_max_batch_tokens", "max_requests"):
        positive("--" + name.replace("_", "-"), getattr(args, name))
    positive("--ci-target", args.ci_target)
    positive("--ramp-s", args.ramp_s, allow_zero=True)
    if args.tbo is False:
        args.tbo = None  # the field's default
    if args.concurrency is None and args.rate is None and args.trace is None:
        args.concurrency = 64
    names = set(OperatingPoint.field_names())
    kw = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return OperatingPoint(**kw)


def _warn_precision(point: OperatingPoint) -> None:
    """The one warning line when FP4 weights meet a GPU without FP4 tensor cores (sim/precision.py)."""
    from ..point import _hw, resolve_model
    from ..precision import fp4_warning

    warning = fp4_warning(resolve_model(point).precision, _hw(point.hw))
    if warning:
        print(warning, file=sys.stderr)


def _simulate(args) -> int:
    point = point_from_args(args)
    _warn_precision(point)
    row = run_point(point, keep_records=bool(args.records), raise_input_errors=True)
    if row["status"] == "error":
        print(f"lmsim: simulation failed: {row['reason']}", file=sys.stderr)
        return 1
    records = row.pop("_records", None)
    if args.records:
        path = str(args.records)
        if path.endswith(".parquet"):
            records.write_parquet(path)
        elif path.endswith(".csv"):
            records.write_csv(path)
        else:
            raise InputError(f"--records {path}: must end in .parquet or .csv")
    if row["status"] != "ok":
        print(f"lmsim: warning: point is {row['status']}: {row['reason']}", file=sys.stderr)
    if args.json:
        print_json({**{k: row.get(k) for k in KEY_METRICS}, **row})
        return 0
    extras = [x for x in (f"MTP {point.mtp}" if point.mtp else None, "two-batch overlap" if point.tbo else None) if x]
    print(f"{row['model']} on {row['hw_name']}, {point.mode}: {row['plan']}" +
          (f" x{point.instances}" if point.mode != "disagg" and point.instances > 1 else "") + "".join(f"; {x}" for x in extras))
    print(f"precision: {row['precision_ran']}")
    print(f"workload {row['traffic']}: {row['completed_requests']} requests simulated, {row['measured_requests']} "
          f"in the steady window [{row['window_start_s']:.1f}, {row['window_end_s']:.1f}] s; status {row['status']}")
    if point.mode == "prefill-only":
        print(f"  input tokens/s/GPU    {row['input_tokens_per_s_per_gpu']:10.1f}  (per prefill GPU)")
        print(f"  TTFT p50 / p99        {row['ttft_p50_s']:10.3f} / {row['ttft_p99_s']:.3f} s")
    else:
        print(f"  output tokens/s/GPU   {row['output_tokens_per_s_per_gpu']:10.1f}  (95% CI +/- {row['output_tokens_per_s_per_gpu_ci95']:.1f})")
        print(f"  tokens/s/user p50     {row['tokens_per_s_per_user_p50']:10.2f}  (p10 {row['tokens_per_s_per_user_p10']:.2f})")
        print(f"  TTFT p50 / p99        {row['ttft_p50_s']:10.3f} / {row['ttft_p99_s']:.3f} s")
        print(f"  TPOT p50 / p99        {row['tpot_p50_s'] * 1e3:10.2f} / {row['tpot_p99_s'] * 1e3:.2f} ms")
    print(f"  preemptions           {row['preemptions']:10d}   GPUs {row['num_gpus']}")
    print(f"  engine: {row['engine_steps']} steps in {row['engine_events']} events over {row['runs']} run(s), "
          f"{row['simulate_cpu_s']:.3f} s CPU")
    return 0

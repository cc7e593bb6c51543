"""`lmsim simulate`: one operating point through the serving engine.

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
from ..schema import bounds as B
from ..point import OperatingPoint, run_point
from ._common import add_costs_arg, add_model_args, add_plan_args, add_serving_args
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
    p.add_argument("--instances", type=B.INSTANCES, default=1, metavar="N",
                   help=f"aggregated instances behind the router, {B.INSTANCES.text} (default 1)")
    for role in ("prefill", "decode"):
        add_plan_args(p, prefix=f"{role}-", label=f"{role} pool plan (--mode disagg; default: the plain plan flags)")
        p.add_argument(f"--{role}-instances", type=B.INSTANCES, default=1, metavar="N",
                       help=f"{role} instances, {B.INSTANCES.text} (default 1)")
    w = p.add_argument_group("workload")
    w.add_argument("--workload", default="decode-heavy", help="preset: decode-heavy (ISL 1024, OSL 8192) or prefill-heavy (8192, 1024)")
    w.add_argument("--input-len", help="override ISL: N, uniform:LO:HI, lognormal:MEDIAN:SIGMA, empirical:FILE[:COL]")
    w.add_argument("--output-len", help="override OSL (same forms)")
    src = w.add_mutually_exclusive_group()
    src.add_argument("--concurrency", type=B.CONCURRENCY, metavar="N",
                     help=f"closed loop: requests kept in the system, {B.CONCURRENCY.text} (the default, 64)")
    src.add_argument("--rate", type=B.RATE, metavar="R", help=f"open loop: mean arrivals per second, {B.RATE.text}")
    src.add_argument("--trace", help="replay a CSV/JSONL trace (arrival, input and output tokens)")
    w.add_argument("--burstiness", type=B.BURSTINESS, metavar="CV",
                   help=f"coefficient of variation of gamma inter-arrivals, {B.BURSTINESS.text} (1 = Poisson)")
    w.add_argument("--ramp-s", type=B.SECONDS, metavar="S", help=f"{B.SECONDS.text}; closed loop: spread the clients' first requests over this many "
                   "seconds (default: one measured request lifetime, which breaks lock-step; 0 = all at once)")
    w.add_argument("--seed", type=B.SEED, default=0, metavar="N", help=f"workload seed, {B.SEED.text} (default 0)")
    st = p.add_argument_group("stopping rule (default: adaptive request count, docs/SWEEP.md)")
    st.add_argument("--num-requests", type=B.REQUESTS, metavar="N",
                    help=f"simulate exactly N requests (overrides the adaptive rule), {B.REQUESTS.text}")
    st.add_argument("--ci-target", type=B.CI_TARGET, default=_DEFAULTS.ci_target, metavar="F",
                    help=f"95%% CI half-width of tokens/s/GPU, as a fraction of it, {B.CI_TARGET.text} (default {_DEFAULTS.ci_target})")
    st.add_argument("--max-requests", type=B.REQUESTS, default=_DEFAULTS.max_requests, metavar="N",
                    help=f"cap of the adaptive rule, {B.REQUESTS.text} (default {_DEFAULTS.max_requests})")
    s = p.add_argument_group("scheduler")
    s.add_argument("--max-batch-tokens", type=B.BATCH_TOKENS, default=2048, metavar="N",
                   help=f"token budget per step, {B.BATCH_TOKENS.text} (vLLM default 2048)")
    s.add_argument("--max-seqs", type=B.SEQS, default=128, metavar="N",
                   help=f"running sequences per rank, {B.SEQS.text} (vLLM default 128)")
    s.add_argument("--block-size", type=B.BLOCK, default=16, metavar="N",
                   help=f"KV block size, tokens, {B.BLOCK.text} (vLLM default 16)")
    s.add_argument("--prefill-max-batch-tokens", type=B.BATCH_TOKENS, default=_DEFAULTS.prefill_max_batch_tokens,
                   metavar="N", help=f"disagg prefill token budget per step, {B.BATCH_TOKENS.text} (default "
                                     f"{_DEFAULTS.prefill_max_batch_tokens}); --max-batch-tokens is the decode pool's")
    s.add_argument("--step-by-step", action="store_true", help="one event per engine step (slow; for checking)")
    s.add_argument("--clock", choices=("heap", "simpy"), default="heap",
                   help="the engine's event queue: its own timer heap (default) or SimPy's Environment; same results")
    s.add_argument("--engine", choices=("auto", "python", "compiled"), default="auto",
                   help="auto (default): the compiled engine where it mirrors the run, else the Python engine; "
                        "python: the reference; compiled: an error where it cannot run. Same records (docs/ENGINE.md)")
    m = p.add_argument_group("metrics")
    m.add_argument("--warmup-fraction", type=B.WINDOW_FRACTION, default=0.1, metavar="F",
                   help=f"share of requests dropped from the start of the window, {B.WINDOW_FRACTION.text} (default 0.1)")
    m.add_argument("--cooldown-fraction", type=B.WINDOW_FRACTION, default=0.1, metavar="F",
                   help=f"share of requests dropped from the end, {B.WINDOW_FRACTION.text}; warmup + cooldown < 1 (default 0.1)")
    m.add_argument("--sla-ttft-s", type=B.SLA_S, metavar="S", help=f"goodput: TTFT bound, seconds, {B.SLA_S.text}")
    m.add_argument("--sla-tpot-s", type=B.SLA_S, metavar="S", help=f"goodput: TPOT bound, seconds, {B.SLA_S.text}")
    p.add_argument("--records", help="write per-request records to this .parquet or .csv file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_simulate)


def point_from_args(args) -> OperatingPoint:
    """The operating point the flags describe (names match :class:`OperatingPoint` fields). Every number was
    bounded by its flag's type (schema/bounds.py); here the rules across flags and the output path are
    checked, all before any simulation."""
    from ..schema.outputs import check_output_path

    check_output_path("--records", args.records, (".parquet", ".csv"))
    if not args.trace:
        from ..workloads.presets import get_preset

        get_preset(args.workload)  # an unknown preset is bad input, reported before any model is costed
    from ..workloads.lengths import parse_length

    for flag in ("input_len", "output_len"):
        if getattr(args, flag) is not None:
            parse_length(getattr(args, flag), "--" + flag.replace("_", "-"))  # bounds checked before any costing
    if args.warmup_fraction + args.cooldown_fraction >= 0.95:
        raise InputError(f"--warmup-fraction {args.warmup_fraction:g} + --cooldown-fraction {args.cooldown_fraction:g} "
                         "must be < 0.95 (they leave the steady window)")
    for role in ("", "prefill_", "decode_"):
        dp = getattr(args, f"{role}dp") or args.dp or 1
        instances = args.instances if not role else getattr(args, f"{role}instances")
        if dp * instances > B.RANKS.hi:
            flag = f"--{role.replace('_', '-')}dp x --{role.replace('_', '-')}instances"
            raise InputError(f"{flag} = {dp} x {instances} attention-DP ranks, allowed at most {B.RANKS.hi} in one pool")
    if args.tbo is False:
        args.tbo = None  # the field's default
    if args.concurrency is None and args.rate is None and args.trace is None:
        args.concurrency = 64
    names = set(OperatingPoint.field_names())
    kw = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if getattr(args, "engine", "auto") != "auto":  # an engine option (OperatingPoint.options)
        kw["options"] = tuple(kw.get("options", ())) + (("engine", args.engine),)
    if args.trace and not kw.get("traffic"):
        from pathlib import Path

        kw["traffic"] = f"trace {Path(args.trace).name}"  # not the unused --workload preset's name
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
        try:
            if path.lower().endswith(".parquet"):
                records.write_parquet(path)
            else:
                records.write_csv(path)
        except OSError as exc:
            raise InputError(f"--records {path}: cannot write ({exc.strerror or exc})") from None
    if row["status"] != "ok":
        print(f"lmsim: warning: point is {row['status']}: {row['reason']}", file=sys.stderr)
    if args.json:
        print_json({**{k: row.get(k) for k in KEY_METRICS}, **row})
        return 0
    print_text(point, row)
    return 0


def _workload_label(point: OperatingPoint) -> str:
    """What was served: the preset (or trace) with any length overrides and the arrival process."""
    from ..workloads.presets import PRESETS

    preset = PRESETS.get(point.workload)
    if point.trace:
        head = f"trace {point.trace}"
        isl, osl = point.input_len or "from trace", point.output_len or "from trace"
    else:
        head = point.workload
        isl = point.input_len or (preset.input_len if preset else "?")
        osl = point.output_len or (preset.output_len if preset else "?")
    lengths = [f"ISL {isl}", f"OSL {osl}"]
    if point.concurrency is not None:
        arrivals = f"closed loop, concurrency {point.concurrency}"
    elif point.rate is not None:
        arrivals = f"open loop, {point.rate:g} req/s" + (f", burstiness {point.burstiness:g}" if point.burstiness else "")
    else:
        arrivals = "trace arrival times"
    return f"{head} ({', '.join(lengths)}); {arrivals}"


def print_text(point: OperatingPoint, row: dict) -> None:
    """The text report: a header naming everything that decides the numbers, then the figures."""
    extras = [x for x in (f"MTP {point.mtp}" if point.mtp else None, "two-batch overlap" if point.tbo else None) if x]
    print(f"model {row['model']} on {row['hw_name']}; precision {row['precision_ran']}")
    print(f"plan {point.mode}: {row['plan']}" + (f" x{point.instances}" if point.mode != "disagg" and point.instances > 1 else "")
          + "".join(f"; {x}" for x in extras) + ("" if "GPUs" in str(row["plan"]) else f"; {row['num_gpus']} GPUs"))
    print(f"workload {_workload_label(point)}; seed {point.seed}")
    print(f"requests {row['completed_requests']} simulated, {row['measured_requests']} in the steady window "
          f"[{row['window_start_s']:.1f}, {row['window_end_s']:.1f}] s; status {row['status']}")

    def num(key: str, fmt: str, scale: float = 1.0) -> str:
        value = row.get(key)
        return "-" if value is None or value != value else format(value * scale, fmt)

    if point.mode == "prefill-only":
        print(f"  input tokens/s/GPU    {num('input_tokens_per_s_per_gpu', '10.1f')}  (per prefill GPU)")
        print(f"  TTFT p50 / p99        {num('ttft_p50_s', '10.3f')} / {num('ttft_p99_s', '.3f')} s")
    else:
        print(f"  output tokens/s/GPU   {num('output_tokens_per_s_per_gpu', '10.1f')}  "
              f"(95% CI +/- {num('output_tokens_per_s_per_gpu_ci95', '.1f')})")
        print(f"  tokens/s/user p50     {num('tokens_per_s_per_user_p50', '10.2f')}  (p10 {num('tokens_per_s_per_user_p10', '.2f')})")
        print(f"  TTFT p50 / p99        {num('ttft_p50_s', '10.3f')} / {num('ttft_p99_s', '.3f')} s")
        print(f"  TPOT p50 / p99        {num('tpot_p50_s', '10.2f', 1e3)} / {num('tpot_p99_s', '.2f', 1e3)} ms")
    if point.sla_ttft_s is not None or point.sla_tpot_s is not None:
        sla = ", ".join(x for x in (f"TTFT <= {point.sla_ttft_s:g} s" if point.sla_ttft_s is not None else None,
                                    f"TPOT <= {point.sla_tpot_s:g} s" if point.sla_tpot_s is not None else None) if x)
        frac = row.get("sla_attained_fraction")
        print(f"  goodput               {num('goodput_output_tokens_per_s_per_gpu', '10.1f')}  tokens/s/GPU within SLA "
              f"({sla}; {num('goodput_requests_per_s', '.3g')} req/s, "
              f"{'-' if frac is None else f'{frac:.0%}'} of requests attain it)")
    print(f"  preemptions           {row['preemptions']:10d}")
    print(f"  engine: {row['engine_steps']} steps in {row['engine_events']} events over {row['runs']} run(s), "
          f"{row['simulate_cpu_s']:.3f} s CPU")

"""`lmsim frontier DIR`: the Pareto frontier of each model and traffic pattern of a sweep."""

from __future__ import annotations

from ..schema import bounds as B
from ._fmt import print_json

#: columns the table shows for each frontier point
SHOWN = ("traffic", "model", "tokens_per_s_per_user_p50", "output_tokens_per_s_per_gpu", "plan", "instances",
         "gpus_per_instance",
         "concurrency", "rate", "ttft_p90_s", "tpot_p50_s", "num_gpus")


def add_sla_args(p) -> None:
    p.add_argument("--sla-ttft-s", type=B.SLA_S, metavar="S",
                   help=f"keep points whose TTFT (at --sla-percentile) is <= this, seconds, {B.SLA_S.text}")
    p.add_argument("--sla-tpot-s", type=B.SLA_S, metavar="S",
                   help=f"keep points whose TPOT (at --sla-percentile) is <= this, seconds, {B.SLA_S.text}")
    p.add_argument("--sla-percentile", type=int, default=90, choices=(50, 90, 99), help="latency percentile the SLA bounds (default 90)")
    p.add_argument("--max-gpus-per-instance", type=B.GPUS, metavar="N",
                   help=f"keep points whose instances (each pool's, when disaggregated) use at most N GPUs, {B.GPUS.text}")


def sla_kwargs(args) -> dict:
    from ._common import positive

    positive("--sla-ttft-s", args.sla_ttft_s)
    positive("--sla-tpot-s", args.sla_tpot_s)
    positive("--max-gpus-per-instance", args.max_gpus_per_instance)
    return {"sla_ttft_s": args.sla_ttft_s, "sla_tpot_s": args.sla_tpot_s, "percentile": args.sla_percentile,
            "max_gpus_per_instance": args.max_gpus_per_instance}


def register(sub) -> None:
    p = sub.add_parser("frontier", help="Pareto frontier (tokens/s/GPU vs tokens/s/user) per model and traffic pattern")
    p.add_argument("dir", metavar="DIR", help="a sweep's --out folder")
    add_sla_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_frontier)


def _frontier(args) -> int:
    from ..frontier import frontiers
    from ..sweep import read_rows

    rows = read_rows(args.dir)
    front = frontiers(rows, **sla_kwargs(args))
    cols = [c for c in SHOWN if c in front.columns]
    if args.json:
        print_json({"points": rows.height, "ok": int((rows["status"] == "ok").sum()),
                    "frontier": front.select(cols).to_dicts()})
        return 0
    counts = rows.group_by("status").len().sort("status")
    print(f"{args.dir}: {rows.height} points; " + ", ".join(f"{s} {n}" for s, n in counts.iter_rows()))
    for (traffic, model), f in front.group_by(["traffic", "model"], maintain_order=True):
        print(f"\n{traffic} / {model}: {f.height} frontier points")
        print(f"  {'tok/s/user':>10} {'tok/s/GPU':>10} {'TTFT p90':>9} {'load':>8}  plan")
        for r in f.iter_rows(named=True):
            load = f"C={r['concurrency']}" if r.get("concurrency") is not None else f"{r.get('rate')}/s"
            print(f"  {r['tokens_per_s_per_user_p50']:10.1f} {r['output_tokens_per_s_per_gpu']:10.1f} "
                  f"{r['ttft_p90_s']:8.2f}s {load:>8}  {_plan(r)}")
    if front.height == 0:
        print("no ok points meet the filters")
    return 0


def _plan(r: dict) -> str:
    """The plan, with the instance count of an aggregated deployment."""
    n = r.get("instances") or 1
    return r["plan"] + (f" x{n}" if n > 1 and r.get("mode") != "disagg" else "")

"""`lmsim compare DIR --baseline A --target B`: throughput ratio at equal tokens/s/user along two frontiers."""

from __future__ import annotations

from ..errors import InputError
from ._fmt import print_json
from .frontier import add_sla_args, sla_kwargs


def register(sub) -> None:
    p = sub.add_parser("compare", help="tokens/s/GPU ratio target/baseline at equal tokens/s/user (log-space interpolation)")
    p.add_argument("dir", metavar="DIR", help="a sweep's --out folder")
    p.add_argument("--baseline", required=True, help="model name (as in the rows' model column)")
    p.add_argument("--target", required=True, help="model name")
    p.add_argument("--traffic", help="one traffic pattern (default: each)")
    add_sla_args(p)
    p.add_argument("--json", action="store_true", help="ratio_min, ratio_median, ratio_max and the curve, per traffic")
    p.set_defaults(func=_compare)


def _compare(args) -> int:
    from ..frontier import compare, frontiers
    from ..sweep import read_rows

    rows = read_rows(args.dir)
    models = sorted(set(rows["model"].to_list()))
    for which in ("baseline", "target"):
        if getattr(args, which) not in models:
            raise InputError(f"--{which} {getattr(args, which)!r}: not in {args.dir}; models: {', '.join(models)}")
    traffics = sorted(set(rows["traffic"].to_list()))
    if args.traffic is not None and args.traffic not in traffics:
        raise InputError(f"--traffic {args.traffic!r}: not in {args.dir}; traffic patterns: {', '.join(traffics)}")
    front = frontiers(rows, **sla_kwargs(args))
    results = [compare(front, args.baseline, args.target, t) for t in ([args.traffic] if args.traffic else traffics)]
    if args.json:
        print_json(results[0] if len(results) == 1 else {"comparisons": results})
        return 0
    for r in results:
        if r["ratio_min"] is None:
            print(f"{r['traffic']}: {args.target} / {args.baseline}: {r['reason']}")
            continue
        lo, hi = r["overlap_tokens_per_s_per_user"]
        print(f"{r['traffic']}: {args.target} / {args.baseline} tokens/s/GPU at equal tokens/s/user ({lo:.1f}-{hi:.1f}): "
              f"min {r['ratio_min']:.2f}x at {r['at_min_tokens_per_s_per_user']:.1f}, median {r['ratio_median']:.2f}x "
              f"(p10-p90 {r['ratio_p10']:.2f}-{r['ratio_p90']:.2f}), "
              f"max {r['ratio_max']:.2f}x at {r['at_max_tokens_per_s_per_user']:.1f} tokens/s/user")
    return 0

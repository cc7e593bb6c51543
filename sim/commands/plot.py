"""`lmsim plot DIR`: the frontier figure of a sweep (self-contained HTML; PNG where kaleido + Chromium exist) and
the table of what it plots (frontier points as CSV and parquet, ratios as CSV)."""

from __future__ import annotations

from pathlib import Path

from .frontier import add_sla_args, sla_kwargs


def register(sub) -> None:
    p = sub.add_parser("plot", help="HTML figure: one panel per traffic pattern, frontiers over the point cloud, ratios")
    p.add_argument("dir", metavar="DIR", help="a sweep's --out folder")
    p.add_argument("--out", metavar="FILE.html", help="default: DIR/frontier.html")
    p.add_argument("--no-png", action="store_true", help="skip the PNG even where kaleido is installed")
    p.add_argument("--json", action="store_true", help="print the files written and the frontier ratios as JSON")
    add_sla_args(p)
    p.set_defaults(func=_plot)


def _plot(args) -> int:
    from ..frontier import default_pairs
    from ..plot import figure, write, write_tables
    from ..sweep import read_rows, read_spec

    rows = read_rows(args.dir)
    spec = read_spec(args.dir)
    models = list(dict.fromkeys(rows["model"].to_list()))
    pairs = [(c.baseline, c.target) for c in spec.compare] or default_pairs(models)
    prec = spec.precision if isinstance(spec.precision, str) or spec.precision is None else "mixed precision"
    title = f"{spec.name}: {spec.hardware}, {prec or 'catalog precision'}, <= {spec.max_gpus_per_instance} GPUs/instance"
    fig, front, ratios = figure(rows, pairs, title, **sla_kwargs(args))
    out = Path(args.out) if args.out else Path(args.dir) / "frontier.html"
    written = write(fig, out, png=not args.no_png)
    written[1:1] = write_tables(front, ratios, out)
    if args.json:
        from ._fmt import print_json

        print_json({"written": [str(w) for w in written], "ratios": ratios})
        return 0
    for r in ratios:
        if r["ratio_min"] is not None:
            print(f"{r['traffic']}: {r['target']} / {r['baseline']} at equal tokens/s/user: median {r['ratio_median']:.2f}x, "
                  f"p10-p90 {r['ratio_p10']:.2f}-{r['ratio_p90']:.2f}x, range {r['ratio_min']:.2f}-{r['ratio_max']:.2f}x")
        else:
            print(f"{r['traffic']}: {r['target']} / {r['baseline']}: {r['reason']}")
    print("wrote " + ", ".join(str(w) for w in written))
    return 0

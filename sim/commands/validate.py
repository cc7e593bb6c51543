"""`lmsim validate`: simulate every expressible row of a measured-results file and report the error.

``lmsim validate [--file CSV] [--json] [--uncalibrated | --calibration FILE] [--rows ID,...]``. The file
format is documented in docs/VALIDATION.md; without ``--file`` the shipped measurements are used.
"""

from __future__ import annotations

from ..errors import InputError
from ..schema import bounds as B
from ..validation.rows import METRICS
from ._common import add_costs_arg
from ._fmt import print_json

#: column labels of the text report
LABELS = {"output_tps_per_gpu": "out tok/s/GPU", "input_tps_per_gpu": "in tok/s/GPU", "tps_per_user": "tok/s/user",
          "tpot_ms": "TPOT ms", "ttft_ms": "TTFT ms"}


def register(sub) -> None:
    p = sub.add_parser("validate", help="simulate measured serving results and report the error per metric and group")
    p.add_argument("--file", help="CSV in the measured-results format (docs/VALIDATION.md); default: the shipped file")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument("--rows", help="comma-separated row ids to keep (default: all)")
    cal = p.add_mutually_exclusive_group()
    cal.add_argument("--uncalibrated", action="store_true",
                     help="the raw model: hardware profiles as shipped, no calibration (the default)")
    cal.add_argument("--calibration", metavar="NAME_OR_FILE",
                     help="apply a calibration: a shipped one by name (hopper) or a calibration file; the raw "
                          "model's errors are printed beside it")
    p.add_argument("--executor", choices=("serial", "process", "ray"), default="serial",
                   help="how the points run (the sweep executors; default serial)")
    p.add_argument("--workers", type=B.WORKERS, default=1, metavar="N",
                   help=f"workers of the process/ray executor, {B.WORKERS.text} (default 1)")
    add_costs_arg(p)
    p.add_argument("--default-isl", type=B.TOKENS, default=None, metavar="N",
                   help=f"ISL for rows that state none, {B.TOKENS.text} (default 1024)")
    p.add_argument("--default-osl", type=B.TOKENS, default=None, metavar="N",
                   help=f"OSL for rows that state none, {B.TOKENS.text} (default 1024)")
    p.set_defaults(func=_validate)


def _validate(args) -> int:
    from ..validation.configure import DEFAULT_ISL, DEFAULT_OSL
    from ..validation.validate import run_validation

    for flag in ("default_isl", "default_osl"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise InputError(f"--{flag.replace('_', '-')} = {value} must be >= 1")
    from ..validation.calibration import load_calibration

    only = [s.strip() for s in args.rows.split(",") if s.strip()] if args.rows else None
    calibration = load_calibration(args.calibration) if args.calibration else None
    if args.workers < 1:
        raise InputError(f"--workers = {args.workers} must be >= 1")
    run = dict(default_isl=args.default_isl or DEFAULT_ISL, default_osl=args.default_osl or DEFAULT_OSL, only=only,
               executor=args.executor, workers=args.workers, costs=args.costs, progress=not args.json)
    report = run_validation(args.file, calibration=calibration, **run)
    if calibration is not None:  # the raw model's summary beside the calibrated one
        raw = run_validation(args.file, split=calibration, **run)  # the same fitted/held-out groups
        report["uncalibrated"] = {"summary": raw["summary"], "median_abs_error": raw["median_abs_error"],
                                  "errors": {r["id"]: r["errors"] for r in raw["rows"]}}
    if args.json:
        print_json(report)
        return 0
    print_report(report)
    return 0


def _pct(x) -> str:
    return "     -" if x is None else f"{x * 100:+5.0f}%"


def _num(x) -> str:
    return "-" if x is None else (f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}")


def _print_summary(title: str, summary: dict) -> None:
    print()
    print(f"{title}: median / p90 (bias = median signed error), n rows; per metric and group")
    print("group".ljust(28) + "".join(f"{LABELS[m]:>26s}" for m in METRICS))
    for group, per_metric in summary.items():
        cells = []
        for m in METRICS:
            s = per_metric[m]
            cells.append(f"{'-':>26s}" if not s["n"] else
                         f"{s['median_abs'] * 100:5.0f}%/{s['p90_abs'] * 100:4.0f}% ({s['bias'] * 100:+4.0f}%) n{s['n']:<3d}".rjust(26))
        print(group.ljust(28) + "".join(cells))


def print_report(report: dict) -> None:
    """The text report: one block per row, then the error summaries, then the unexpressible rows."""
    print(f"validation of {report['file']}: {len(report['rows'])} rows simulated, "
          f"{len(report['unexpressible'])} not expressible ({report['wall_s']:.1f} s)")
    cal = report["calibration"]
    print("calibration: " + (f"{cal['name']} ({cal['file']}): fitted on {len(cal['fitted_on'])} rows, "
                             f"{len(cal['held_out'])} held out" if cal else "none (the raw model)"))
    print()
    raw = report.get("uncalibrated", {}).get("errors", {})
    print("per row: measured -> simulated (error = simulated/measured - 1; * = matched by the plan search"
          + ("; raw = the uncalibrated model's error)" if raw else ")"))
    for r in report["rows"]:
        cfg = r["config"]
        plan = cfg.get("plan") or f"prefill {cfg.get('prefill_plan')} x{cfg.get('prefill_instances')}, decode {cfg.get('decode_plan')} x{cfg.get('decode_instances')}"
        split = f" ({r['group']['calibration']})" if "calibration" in r["group"] else ""
        print(f"{r['id']}{split}  [{cfg['model']}, {cfg['hw']}, {r['group']['framework']}, {r['group']['mode']}, "
              f"ISL {cfg['isl']} OSL {cfg['osl']}, conc {cfg['concurrency']}, {plan}]")
        for m, v in r["measured"].items():
            star = "*" if m in r["searched"] else " "
            rawe = f"   (raw {_pct(raw[r['id']].get(m)).strip()})" if r["id"] in raw else ""
            print(f"    {LABELS[m]:14s} {_num(v):>9s} -> {_num(r['simulated'][m]):>9s}  {_pct(r['errors'].get(m))}{star}{rawe}")
        if r["note"]:
            print(f"    note: {r['note']}")
        if r.get("status") not in (None, "ok"):
            print(f"    status: {r['status']}: {r['status_reason']}")
        for a in cfg.get("assumptions", []):
            print(f"    assumed: {a}")
    _print_summary("absolute error" + (" (calibrated)" if cal else ""), report["summary"])
    if "uncalibrated" in report:
        _print_summary("absolute error of the raw model (--uncalibrated)", report["uncalibrated"]["summary"])
    if report["unexpressible"]:
        print()
        print("not expressible:")
        for u in report["unexpressible"]:
            print(f"  {u['id']}: {u['reason']}")

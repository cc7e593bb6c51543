"""Markdown tables of a validation run, for docs/VALIDATION.md.

Usage: ``lmsim validate --json > out.json && python experiments/validation_tables.py out.json``. With a
calibration applied, the JSON carries the raw model's errors too and the tables show both.
"""

from __future__ import annotations

import json
import sys

METRICS = ("output_tps_per_gpu", "input_tps_per_gpu", "tps_per_user", "tpot_ms", "ttft_ms")
LABELS = {"output_tps_per_gpu": "out tok/s/GPU", "input_tps_per_gpu": "in tok/s/GPU", "tps_per_user": "tok/s/user",
          "tpot_ms": "TPOT", "ttft_ms": "TTFT"}


def pct(x) -> str:
    return "" if x is None else f"{x * 100:+.0f}%"


def num(x) -> str:
    return "" if x is None else (f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}")


def cell(s: dict) -> str:
    if not s["n"]:
        return "-"
    return f"{s['median_abs'] * 100:.0f}% / {s['p90_abs'] * 100:.0f}% ({s['bias'] * 100:+.0f}%), n {s['n']}"


def main() -> None:
    rep = json.load(open(sys.argv[1]))
    raw = rep.get("uncalibrated")
    print("| row | split | config | metric | measured | simulated | error | raw error |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rep["rows"]:
        c = r["config"]
        cfg = f"{c['model']}, {c['hw']}, {r['group']['framework']}, {r['group']['mode']}, {c['isl']}/{c['osl']}, conc {c['concurrency']}, {c['plan']}"
        for i, (m, v) in enumerate(r["measured"].items()):
            star = "*" if m in r["searched"] else ""
            rawe = pct(raw["errors"].get(r["id"], {}).get(m)) if raw else ""
            print(f"| {r['id'] if i == 0 else ''} | {r['group'].get('calibration', '') if i == 0 else ''} | "
                  f"{cfg if i == 0 else ''} | {LABELS[m]} | {num(v)} | {num(r['simulated'][m])} | {pct(r['errors'].get(m))}{star} | {rawe} |")
    print()
    for title, summ in (("calibrated" if rep["calibration"] else "uncalibrated", rep["summary"]),
                        ("uncalibrated (raw model)", raw["summary"] if raw else None)):
        if summ is None:
            continue
        print(f"#### Absolute error, {title}: median / p90 (bias), n rows")
        print()
        print("| group | " + " | ".join(LABELS[m] for m in METRICS) + " |")
        print("|---|" + "---|" * len(METRICS))
        for g, per in summ.items():
            print(f"| {g} | " + " | ".join(cell(per[m]) for m in METRICS) + " |")
        print()
    print("| row not expressible | reason |")
    print("|---|---|")
    for u in rep["unexpressible"]:
        print(f"| {u['id']} | {u['reason']} |")


if __name__ == "__main__":
    main()

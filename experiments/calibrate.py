"""Fit the calibration: framework and kernel constants on a stated half of the measured rows.

Split (stated in the output file): the rows the simulator can express are grouped into families (same
model, hardware, framework, mode and phase), kept in file order; in each family the 1st, 3rd, 5th ... rows
are fitted and the 2nd, 4th ... held out. A family of one row is held out (it informs nothing it is
checked on). No per-row factor exists: every fitted constant is shared by all rows its layer matches.

Fitted constants (``sim/validation/calibration.py`` CALIBRATABLE), starting from the profiles' values:
* one layer for every Hopper profile (h100_sxm, h200_sxm, h800): memory_efficiency, compute_efficiency,
  comm_efficiency, mem_op_latency_us, nvlink_latency_us;
* one layer per framework with fitted rows: step_overhead_us.

Objective: the mean over fitted rows of the mean squared log error of the row's metrics (a metric matched
by a plan search is left out), so every row weighs the same whatever it publishes. Search: coordinate
descent over a log grid of each constant, a few passes (bounded to the schema's ranges).

Usage: ``python experiments/calibrate.py [--out sim/data/calibration.yaml] [--passes 2]`` (a few minutes).
"""

from __future__ import annotations

import argparse
import math
import time

from latentmoe_sim.validation.calibration import Calibration, Layer, field_spec
from latentmoe_sim.validation.rows import read_measured
from latentmoe_sim.validation.validate import DEFAULT_FILE, expand_rows, validate_rows

HOPPER = ("h100_sxm", "h200_sxm", "h800")
KERNEL = {"memory_efficiency": 0.8, "compute_efficiency": 0.72, "comm_efficiency": 0.8, "mem_op_latency_us": 3.0,
          "nvlink_latency_us": 3.0}  # the Hopper profiles' current values (hwprofiles/h100_sxm.yaml)
STEP_OVERHEAD_US = 500.0  # hwprofiles/*.yaml runtime.step_overhead_us
#: multiplicative grid tried around the current value of each constant, per pass
GRID = (0.5, 0.7, 0.85, 1.0, 1.15, 1.4, 2.0)


def split(rows):
    """(fitted ids, held-out ids) of the rows that run uncalibrated, by the rule in the module docstring."""
    done, _ = validate_rows(rows, expand=False)
    ok = {r["id"] for r in done}
    families: dict[tuple, list[str]] = {}
    for r in rows:
        if r.id in ok:
            families.setdefault((r.model, r.hw, r.framework, r.mode, r.phase), []).append(r.id)
    fitted, held = [], []
    for ids in families.values():
        if len(ids) == 1:
            held += ids
            continue
        fitted += ids[0::2]
        held += ids[1::2]
    return fitted, held


def make_calibration(values: dict, frameworks: list[str], fitted, held, method: str) -> Calibration:
    layers = [Layer(HOPPER, None, {k: values[k] for k in KERNEL})]
    layers += [Layer(None, (fw,), {"step_overhead_us": values[f"step_overhead_us:{fw}"]}) for fw in frameworks]
    return Calibration(name="hopper-2026-11", description=(
        "Hopper kernel constants and per-framework step overhead fitted to half of the shipped measured rows "
        "(experiments/calibrate.py); the other half is held out"), method=method, fitted_on=tuple(fitted),
        held_out=tuple(held), layers=tuple(layers))


def loss(rows, cal, executor: str, workers: int) -> float:
    done, skipped = validate_rows(rows, calibration=cal, expand=False, executor=executor, workers=workers)
    if skipped:  # a constant that makes a configuration infeasible: a bad point, not a crash
        return math.inf
    total = 0.0
    for r in done:
        errs = [math.log1p(e) ** 2 for m, e in r["errors"].items() if m not in r["searched"]]
        total += sum(errs) / len(errs) if errs else 0.0
    return total / len(done)


def clamp(name: str, value: float) -> float:
    spec = field_spec(name.split(":")[0])
    lo, hi = spec.lo / spec.to_si, spec.hi / spec.to_si
    return min(max(value, lo if not spec.lo_open else lo * 1.001, 0.01 if spec.unit == "fraction" else 0.0), hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="sim/data/calibration.yaml")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--executor", default="serial", choices=("serial", "process"))
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    rows = expand_rows(read_measured(DEFAULT_FILE))
    fitted, held = split(rows)
    by_id = {r.id: r for r in rows}
    train = [by_id[i] for i in fitted]
    frameworks = sorted({r.framework for r in train})
    values = dict(KERNEL) | {f"step_overhead_us:{fw}": STEP_OVERHEAD_US for fw in frameworks}
    method = (f"coordinate descent over the grid x{GRID} of each constant, {args.passes} passes; objective: mean over "
              "fitted rows of the mean squared log error of the row's metrics")
    t0 = time.time()
    run = dict(executor=args.executor, workers=args.workers)
    best = loss(train, make_calibration(values, frameworks, fitted, held, method), **run)
    print(f"fitted rows {len(train)}, held out {len(held)}; start loss {best:.4f}")
    for p in range(args.passes):
        for name in list(values):
            start = values[name]
            for factor in GRID:
                trial = dict(values)
                trial[name] = clamp(name, start * factor)
                if trial[name] == values[name]:
                    continue
                value = loss(train, make_calibration(trial, frameworks, fitted, held, method), **run)
                if value < best - 1e-6:
                    best, values = value, trial
            print(f"pass {p + 1} {name:28s} {start:9.4g} -> {values[name]:9.4g}  loss {best:.4f}  ({time.time() - t0:.0f} s)")
    cal = make_calibration(values, frameworks, fitted, held, method)
    with open(args.out, "w") as f:
        f.write("# Fitted by experiments/calibrate.py; do not edit by hand (rerun it). Format: sim/validation/calibration.py\n")
        f.write(cal.to_yaml())
    print(f"wrote {args.out}: loss {best:.4f}")


if __name__ == "__main__":
    main()

"""Fit the calibration: framework and kernel constants on a stated half of the measured rows.

Split (stated in the output file): the rows the simulator can express are grouped into families (same
model, hardware, framework, mode and phase), kept in file order; in each family the 1st, 3rd, 5th ... rows
are fitted and the 2nd, 4th ... held out. A family of one row is held out (it informs nothing it is
checked on). No per-row factor exists: every fitted constant is shared by all rows its layer matches.

Fitted constants (``sim/validation/calibration.py`` CALIBRATABLE), starting from the profiles' values:
* only the constants the shipped profiles mark as guesses: one layer for every Hopper profile (h100_sxm,
  h200_sxm, h800) with comm_efficiency and scaleup_latency_us (collective constants every framework shares),
  and one layer per framework with fitted rows with step_overhead_us (its scheduler, sampling and launch);
* the cited efficiencies (compute_efficiency, memory_efficiency, mem_op_latency_us) are not fitted.
  ``--all-constants`` fits them too (memory_efficiency, mem_op_latency_us on the Hopper layer,
  compute_efficiency per framework): on the shipped rows that trades one metric against another
  (docs/VALIDATION.md), which is why it is not the default.

Objective: the mean over fitted rows of the mean absolute log error of the row's metrics (a metric matched
by a plan search is left out), so every row weighs the same whatever it publishes, and one outlier row (a
behaviour the model lacks) cannot pull every constant toward itself as a squared error would. Search:
coordinate descent over a log grid of each constant, the grid narrowing each pass (bounded to the schema's
ranges).

Usage: ``python experiments/calibrate.py [--out sim/data/calibration-hopper.yaml] [--passes 2] [--all-constants]`` (10-20 minutes on a
busy core).
"""

from __future__ import annotations

import argparse
import math
import time

from latentmoe_sim.hwprofile_io import load_hw
from latentmoe_sim.validation.calibration import Calibration, Layer, field_spec
from latentmoe_sim.validation.rows import read_measured
from latentmoe_sim.validation.validate import DEFAULT_FILE, expand_rows, validate_rows

HOPPER = ("h100_sxm", "h200_sxm", "h800")
#: Only the constants the shipped profiles mark as guesses ("guess: ... (calibrate)" in hwprofiles/h100_sxm.yaml)
#: are fitted: the collective latency and link efficiency (kernel constants every framework shares) and the
#: per-step overhead (per framework). Efficiencies with a measured or cited source (compute_efficiency from an
#: AIConfigurator GEMM table, memory_efficiency and mem_op_latency_us from AIConfigurator) stay as cited.
KERNEL = ("comm_efficiency", "scaleup_latency_us")
FRAMEWORK = ("step_overhead_us",)


def profile_value(name: str, hw: str = "h100_sxm") -> float:
    """The shipped profile's value of a calibratable field, in its YAML unit (the fit's starting point)."""
    spec = field_spec(name)
    return getattr(load_hw(hw), spec.attr) / spec.to_si
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
    layers += [Layer(None, (fw,), {k: values[f"{k}:{fw}"] for k in FRAMEWORK}) for fw in frameworks]
    return Calibration(name="hopper-2026-11", description=(
        f"Hopper constants ({', '.join(KERNEL)}) and per-framework {', '.join(FRAMEWORK)}, fitted to half of the "
        "shipped measured rows "
        "(experiments/calibrate.py); the other half is held out"), method=method, fitted_on=tuple(fitted),
        held_out=tuple(held), layers=tuple(layers))


def loss(rows, cal, executor: str, workers: int) -> float:
    done, skipped = validate_rows(rows, calibration=cal, expand=False, executor=executor, workers=workers)
    if skipped:  # a constant that makes a configuration infeasible: a bad point, not a crash
        return math.inf
    total = 0.0
    for r in done:
        errs = [abs(math.log1p(e)) for m, e in r["errors"].items() if m not in r["searched"]]
        total += sum(errs) / len(errs) if errs else 0.0
    return total / len(done)


#: Plausible ranges the search stays in (YAML units), tighter than the schema's: an efficiency fitted to 1.0
#: or 0.05 would say the model lacks something, not measure a kernel. Efficiencies: 0.2-0.95 of peak;
#: fixed latencies: 0.5-50 us per op or collective step; step overhead: 50 us - 5 ms.
PLAUSIBLE = {"fraction": (0.2, 0.95), "us": (0.5, 50.0)}
STEP_OVERHEAD_RANGE_US = (50.0, 5000.0)


def clamp(name: str, value: float) -> float:
    base = name.split(":")[0]
    spec = field_spec(base)
    lo, hi = STEP_OVERHEAD_RANGE_US if base == "step_overhead_us" else PLAUSIBLE[spec.unit]
    return min(max(value, lo), hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="sim/data/calibration-hopper.yaml")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--executor", default="serial", choices=("serial", "process"))
    ap.add_argument("--all-constants", action="store_true", help="fit the cited efficiencies too (see the docstring)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    global KERNEL, FRAMEWORK
    if args.all_constants:
        KERNEL = KERNEL + ("memory_efficiency", "mem_op_latency_us")
        FRAMEWORK = FRAMEWORK + ("compute_efficiency",)
    rows = expand_rows(read_measured(DEFAULT_FILE))
    fitted, held = split(rows)
    by_id = {r.id: r for r in rows}
    train = [by_id[i] for i in fitted]
    frameworks = sorted({r.framework for r in train})
    values = {k: profile_value(k) for k in KERNEL} | {f"{k}:{fw}": profile_value(k) for k in FRAMEWORK
                                                        for fw in frameworks}
    method = (f"coordinate descent over the grid x{GRID} of each constant (pass p: each factor to the power 1/p), "
              f"{args.passes} passes; objective: mean over fitted rows of the mean absolute log error of the row's metrics")
    t0 = time.time()
    run = dict(executor=args.executor, workers=args.workers)
    best = loss(train, make_calibration(values, frameworks, fitted, held, method), **run)
    print(f"fitted rows {len(train)}, held out {len(held)}; start loss {best:.4f}")
    for p in range(args.passes):
        for name in list(values):
            start = values[name]
            for factor in GRID:
                trial = dict(values)
                trial[name] = clamp(name, start * factor ** (1.0 / (p + 1)))
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

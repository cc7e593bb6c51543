"""Run a whole validation: every row of a measured-results file, configured, simulated and compared.

:func:`run_validation` returns a plain dict (the ``--json`` document of ``lmsim validate``):

* ``rows``: one per simulated row: ``id``, ``group``, ``measured``, ``simulated`` (the same metrics),
  ``simulated_all`` (every metric of the format, measured or not), ``errors`` (per metric),
  ``error`` (the output tokens/s/GPU error, or None), ``searched`` (metrics a plan search matched),
  ``config`` (what ran, with every assumption) and ``note``;
* ``unexpressible``: ``id`` and ``reason`` of every row the simulator cannot express (or failed to run);
* ``summary``: per group and metric, n / median / p90 of the absolute error and the bias;
* ``median_abs_error``: per metric, over all simulated rows;
* ``calibration``: the calibration layer applied (None = uncalibrated).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import InputError
from ..hwprofile_io import load_hw
from ..models import load_model
from .configure import DEFAULT_ISL, DEFAULT_OSL, Case, configure, pool_rows
from .rows import METRICS, MeasuredRow, read_measured
from .runner import simulate_case
from .search import search_plan
from .summary import GENERATION, relative_errors, summarize_errors

#: the file `lmsim validate` reads when given no --file (a copy of ../shared/reference/measured_calibration.csv)
DEFAULT_FILE = Path(__file__).resolve().parent.parent / "data" / "measured_calibration.csv"


def _public(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.startswith("_") and v is not None}


def run_row(row: MeasuredRow, case: Case, calibration=None) -> dict:
    """Simulate one configured row and compare (raises InputError when the configuration cannot run)."""
    hw_fields = calibration.hw_fields(row.hw, row.framework) if calibration else None
    note = ""
    searched: list[str] = []
    if case.mode == "agg" and case.plan is None:
        hw = load_hw(case.hw)
        model = load_model(case.model)
        plan, sim, note = search_plan(case, row.tps_per_user,
                                      lambda p: simulate_case(case, plan=p, hw_fields=hw_fields),
                                      hw.nvlink_domain_size, model.moe.num_experts if model.moe else None)
        if plan is None:
            raise InputError(note)
        searched = ["tps_per_user", "tpot_ms"]
        config = case.describe()
        config["instances"] = 1
    else:
        sim = simulate_case(case, hw_fields=hw_fields)
        config = case.describe()
    config["plan"] = sim["_plan"]
    config["precision_ran"] = sim["_precision_ran"]
    config["simulated_requests"] = sim["_simulated_requests"]
    measured = row.measured
    errors = relative_errors(measured, sim)
    group = {"gpu_generation": GENERATION.get(row.hw, row.hw), "framework": row.framework,
             "mode": row.mode if row.phase == "both" else f"{row.mode}/{row.phase}"}
    if calibration is not None:
        group["calibration"] = ("fitted" if row.id in calibration.fitted_on else
                                "held-out" if row.id in calibration.held_out else "not used")
    return {
        "id": row.id,
        "group": group,
        "measured": measured,
        "simulated": {m: sim[m] for m in METRICS if m in measured},
        "simulated_all": _public(sim),
        "errors": errors,
        "error": errors.get("output_tps_per_gpu"),
        "searched": [m for m in searched if m in measured],
        "status": sim["_status"],
        "status_reason": sim["_reason"],
        "config": config,
        "note": note,
    }


def run_validation(path: str | Path | None = None, *, calibration=None, default_isl: int = DEFAULT_ISL,
                   default_osl: int = DEFAULT_OSL, only: list[str] | None = None) -> dict:
    """Validate every row of ``path`` (default: the shipped file); ``only`` keeps the rows with these ids."""
    t0 = time.perf_counter()
    rows = read_measured(path or DEFAULT_FILE)
    if only:
        unknown = sorted(set(only) - {r.id for r in rows})
        if unknown:
            raise InputError(f"--rows: no row with id {', '.join(unknown)} in {path or DEFAULT_FILE}")
        rows = [r for r in rows if r.id in set(only)]
    done, skipped = [], []
    expanded = []
    for row in rows:
        expanded.append(row)
        expanded += pool_rows(row)
    for row in expanded:
        case = configure(row, default_isl=default_isl, default_osl=default_osl)
        if not isinstance(case, Case):
            skipped.append({"id": row.id, "reason": case.reason})
            continue
        try:
            done.append(run_row(row, case, calibration))
        except InputError as exc:
            skipped.append({"id": row.id, "reason": f"configuration does not run: {exc}"})
    summary = summarize_errors(done)
    return {
        "file": str(path or DEFAULT_FILE),
        "calibration": calibration.describe() if calibration else None,
        "rows": done,
        "unexpressible": skipped,
        "summary": summary,
        "median_abs_error": {m: summary["all"][m]["median_abs"] for m in METRICS},
        "wall_s": time.perf_counter() - t0,
    }


__all__ = ["DEFAULT_FILE", "run_row", "run_validation"]

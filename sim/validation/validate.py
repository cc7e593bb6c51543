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
from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from ..hwprofile_io import load_hw
from ..models import load_model
from .configure import DEFAULT_ISL, DEFAULT_OSL, Case, configure, pool_rows
from .rows import METRICS, MeasuredRow, read_measured
from ..point import run_point
from .runner import metrics_of, point_of
from .search import candidate_plans, pick
from .summary import GENERATION, relative_errors, summarize_errors

#: the file `lmsim validate` reads when given no --file (a copy of ../shared/reference/measured_calibration.csv)
DEFAULT_FILE = Path(__file__).resolve().parent.parent / "data" / "measured_calibration.csv"


def _public(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.startswith("_") and v is not None}


def _group(row: MeasuredRow, calibration) -> dict:
    """The row's groups; ``calibration`` (applied or not) labels it fitted / held-out / not used."""
    group = {"gpu_generation": GENERATION.get(row.hw, row.hw), "framework": row.framework,
             "mode": row.mode if row.phase == "both" else f"{row.mode}/{row.phase}"}
    if calibration is not None:
        group["calibration"] = ("fitted" if row.id in calibration.fitted_on else
                                "held-out" if row.id in calibration.held_out else "not used")
    return group


def _plans(case: Case) -> tuple[list, str]:
    """The plans a case runs: [None] (its own), or the search candidates and the budget in words."""
    if case.mode != "agg" or case.plan is not None:
        return [None], ""
    domain = load_hw(case.hw).nvlink_domain_size
    model = load_model(case.model)
    gpus = case.search_gpus or domain
    budget = f"{gpus} GPUs" if case.search_gpus else f"{gpus} GPUs (one NVLink domain; num_gpus not stated)"
    return candidate_plans(gpus, domain, model.moe.num_experts if model.moe else None), budget


def execute(points: list, executor: str = "serial", workers: int = 1, progress: bool = False) -> dict:
    """point_id -> run_point row, through the sweep executors (sim/sweep/executor.py) when present; with
    ``progress``, the sweep's status line (points/s, ETA) on stderr."""
    unique = list({p.point_id: p for p in points}.values())
    out: dict = {}
    bar = None
    if progress and unique:
        from ..sweep.executor import Progress

        bar = Progress(len(unique), label="validate")

    def collect(rows):
        out.update((r["point_id"], r) for r in rows)
        if bar is not None:
            bar.update(len(rows))

    try:
        from ..sweep.executor import execute as sweep_execute
    except ImportError:  # the sweep package is optional here: run_point in this process
        if executor != "serial":
            raise InputError(f"--executor {executor}: the sweep executors (latentmoe_sim.sweep) are not installed")
        collect([run_point(p) for p in unique])
    else:
        sweep_execute(unique, executor=executor, workers=workers, on_rows=collect)
    if bar is not None:
        bar.close()
    return out


def _result(row: MeasuredRow, case: Case, sim: dict, split, note: str, searched: list[str], plan) -> dict:
    config = case.describe()
    if plan is not None:
        config["instances"] = 1
    config["plan"] = sim["_plan"]
    config["precision_ran"] = sim["_precision_ran"]
    config["simulated_requests"] = sim["_simulated_requests"]
    measured = row.measured
    errors = relative_errors(measured, sim)
    return {
        "id": row.id,
        "group": _group(row, split),
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


def expand_rows(rows: list[MeasuredRow]) -> list[MeasuredRow]:
    """The rows followed, for a row whose pools were measured separately, by its two pool rows."""
    out = []
    for row in rows:
        out.append(row)
        out += pool_rows(row)
    return out


def validate_rows(rows: list[MeasuredRow], *, calibration=None, default_isl: int = DEFAULT_ISL,
                  default_osl: int = DEFAULT_OSL, executor: str = "serial", workers: int = 1,
                  expand: bool = True, costs: str = "roofline", split=None, progress: bool = False) -> tuple[list, list]:
    """(simulated rows, unexpressible rows): configure every row, run all their points in one batch through
    the executor, then compare (and pick the searched plans). ``split``: a calibration whose fitted/held-out
    labels the rows get without applying it (default: ``calibration``'s). ``costs``: op times from the roofline, the
    GPU's measured tables or ``auto`` (docs/KERNELS.md)."""
    expanded = expand_rows(rows) if expand else list(rows)
    split = split if split is not None else calibration
    skipped, jobs, points = [], [], []
    for row in expanded:
        case = configure(row, default_isl=default_isl, default_osl=default_osl)
        if not isinstance(case, Case):
            skipped.append({"id": row.id, "reason": case.reason})
            continue
        hw_fields = calibration.hw_fields(row.hw, row.framework) if calibration else None
        plans, budget = _plans(case)
        pts = [replace(point_of(case, plan, hw_fields), costs=costs) for plan in plans]
        jobs.append((row, case, plans, pts, budget))
        points += pts
    results = execute(points, executor, workers, progress=progress)
    done = []
    for row, case, plans, pts, budget in jobs:
        try:
            if plans == [None]:
                sim = metrics_of(case, results[pts[0].point_id])
                done.append(_result(row, case, sim, split, "", [], None))
                continue
            candidates = []
            for plan, p in zip(plans, pts):
                try:
                    candidates.append((plan, metrics_of(case, results[p.point_id])))
                except InputError:
                    candidates.append((plan, None))
            plan, sim, note = pick(candidates, row.tps_per_user, budget)
            if plan is None:
                raise InputError(note)
            done.append(_result(row, case, sim, split, note, ["tps_per_user", "tpot_ms"], plan))
        except InputError as exc:
            skipped.append({"id": row.id, "reason": f"configuration does not run: {exc}"})
    return done, skipped


def run_validation(path: str | Path | None = None, *, calibration=None, default_isl: int = DEFAULT_ISL,
                   default_osl: int = DEFAULT_OSL, only: list[str] | None = None, executor: str = "serial",
                   workers: int = 1, costs: str = "roofline", split=None, progress: bool = False) -> dict:
    """Validate every row of ``path`` (default: the shipped file); ``only`` keeps the rows with these ids."""
    t0 = time.perf_counter()
    rows = read_measured(path or DEFAULT_FILE)
    if only:
        unknown = sorted(set(only) - {r.id for r in rows})
        if unknown:
            raise InputError(f"--rows: no row with id {', '.join(unknown)} in {path or DEFAULT_FILE}")
        rows = [r for r in rows if r.id in set(only)]
    done, skipped = validate_rows(rows, calibration=calibration, default_isl=default_isl, default_osl=default_osl,
                                  executor=executor, workers=workers, split=split, costs=costs, progress=progress)
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


__all__ = ["DEFAULT_FILE", "execute", "expand_rows", "run_validation", "validate_rows"]

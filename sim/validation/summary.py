"""Errors of simulated against measured metrics, and their summaries per metric and per group.

The error of a metric is ``simulated / measured - 1`` (positive = the simulator is too high: too fast for a
throughput, too slow for a latency). Summaries give, per metric, the number of rows, the median and the
90th percentile of the absolute error (linear interpolation between order statistics, numpy's default) and
the median signed error (bias). A metric that a plan search matched by construction is left out.
"""

from __future__ import annotations

import numpy as np

from .rows import METRICS

#: GPU generation of each hardware name of the format
GENERATION = {"h100_sxm": "hopper", "h200_sxm": "hopper", "h800": "hopper", "b200": "blackwell", "b300": "blackwell",
              "gb200_nvl72": "blackwell", "gb300_nvl72": "blackwell", "mi300x": "cdna3", "mi325x": "cdna3",
              "mi355x": "cdna4"}

#: the grouping keys of the report ("calibration": fitted / held-out / not used, when a calibration is applied)
GROUP_KEYS = ("calibration", "gpu_generation", "framework", "mode")


def relative_errors(measured: dict[str, float], simulated: dict[str, float]) -> dict[str, float]:
    """``simulated / measured - 1`` for every metric both sides have."""
    return {m: simulated[m] / measured[m] - 1.0 for m in METRICS if m in measured and simulated.get(m) is not None}


def stats(errors: list[float]) -> dict:
    """n, median and p90 of the absolute errors, and the median signed error."""
    if not errors:
        return {"n": 0, "median_abs": None, "p90_abs": None, "bias": None}
    a = np.asarray(errors, dtype=float)
    return {"n": int(a.size), "median_abs": float(np.median(np.abs(a))), "p90_abs": float(np.percentile(np.abs(a), 90)),
            "bias": float(np.median(a))}


def summarize_errors(rows: list[dict]) -> dict:
    """``{"all": {metric: stats}, "<key>=<value>": {metric: stats}, ...}`` over the simulated rows.

    Each row is a report row (``errors``, ``searched``, ``group``)."""
    groups: dict[str, list[dict]] = {"all": rows}
    for key in GROUP_KEYS:
        for r in rows:
            if key in r["group"]:
                groups.setdefault(f"{key}={r['group'][key]}", []).append(r)
    out = {}
    for name, members in groups.items():
        out[name] = {m: stats([r["errors"][m] for r in members if m in r["errors"] and m not in r["searched"]])
                     for m in METRICS}
    return out


__all__ = ["GENERATION", "GROUP_KEYS", "relative_errors", "stats", "summarize_errors"]

"""Pareto frontiers of throughput against interactivity, and the comparison of two of them.

A sweep's rows are points in the plane of **tokens/s/user** (x: ``tokens_per_s_per_user_p50``, the decode
speed the median user sees) and **output tokens/s/GPU** (y: ``output_tokens_per_s_per_gpu``). A point is
on the frontier of its model and traffic pattern when no other point of the same pair is at least as good
in both and better in one. Only rows with ``status == "ok"`` count (see :mod:`latentmoe_sim.stopping`);
an SLA filter (TTFT and/or TPOT bound on a chosen percentile) is applied first.

Comparison at equal interactivity (the LatentMoE paper's Figure 7, arXiv 2601.18089 §4.3.1): along the
x-range where both frontiers exist, each frontier is interpolated linearly in log-log space between its
points, and the ratio ``target / baseline`` of tokens/s/GPU is taken on 201 log-spaced x values. Min,
median and max of that curve, and where each occurs, summarise it; p10 and p90 say how much of the range
the extremes stand for (they often sit at the ends of the overlap, where a frontier's last point is a
single request on a large plan and the curve is steep). Interpolating between frontier points
assumes the frontier between two simulated points bends no more than a log-log line; a denser load grid
makes that assumption matter less.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from .errors import InputError

X = "tokens_per_s_per_user_p50"
Y = "output_tokens_per_s_per_gpu"
#: how many x values the comparison curve samples
CURVE_POINTS = 201


def usable(rows: pl.DataFrame, *, sla_ttft_s: float | None = None, sla_tpot_s: float | None = None,
           percentile: int = 90, max_gpus_per_instance: int | None = None) -> pl.DataFrame:
    """Rows with ``status == ok`` that meet the SLA on the given latency percentile (50, 90 or 99) and, if
    given, use at most ``max_gpus_per_instance`` GPUs in any one instance (the frontier a smaller
    instance cap would give, from the same sweep)."""
    if percentile not in (50, 90, 99):
        raise InputError(f"--sla-percentile = {percentile}: must be 50, 90 or 99")
    df = rows.filter(pl.col("status") == "ok").filter(pl.col(X).is_not_null() & (pl.col(Y) > 0))
    if max_gpus_per_instance is not None:
        df = df.filter(pl.col("gpus_per_instance") <= max_gpus_per_instance)
    if sla_ttft_s is not None:
        df = df.filter(pl.col(f"ttft_p{percentile}_s") <= sla_ttft_s)
    if sla_tpot_s is not None:
        df = df.filter(pl.col(f"tpot_p{percentile}_s") <= sla_tpot_s)
    return df


def pareto(df: pl.DataFrame, by: tuple[str, ...] = ("traffic", "model")) -> pl.DataFrame:
    """The non-dominated rows of each ``by`` group (max x, max y), sorted by group and ascending x."""
    if df.height == 0:
        return df
    ordered = df.sort([*by, X, Y], descending=[False] * len(by) + [True, True])
    best = pl.col(Y).cum_max().shift(1, fill_value=-math.inf).over(list(by))
    return ordered.filter(pl.col(Y) > best).sort([*by, X])


def frontiers(rows: pl.DataFrame, **sla) -> pl.DataFrame:
    """:func:`pareto` of :func:`usable` rows."""
    return pareto(usable(rows, **sla))


def _curve(front: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    f = front.sort(X)
    return np.log(f[X].to_numpy().astype(float)), np.log(f[Y].to_numpy().astype(float))


def compare(front: pl.DataFrame, baseline: str, target: str, traffic: str) -> dict:
    """Throughput ratio ``target / baseline`` at equal tokens/s/user along the overlap of two frontiers.

    Returns ``ratio_min``, ``ratio_median``, ``ratio_max``, the x (tokens/s/user) of each, the overlap,
    and the ``curve`` (x, ratio pairs). Without an overlap the ratios are None and ``reason`` says why.
    """
    out: dict = {"traffic": traffic, "baseline": baseline, "target": target}
    parts = {}
    for name in (baseline, target):
        f = front.filter((pl.col("traffic") == traffic) & (pl.col("model") == name))
        if f.height == 0:
            return {**out, "ratio_min": None, "ratio_median": None, "ratio_max": None,
                    "reason": f"no ok points of {name} for {traffic}"}
        parts[name] = _curve(f)
    (bx, by), (tx, ty) = parts[baseline], parts[target]
    lo, hi = max(bx[0], tx[0]), min(bx[-1], tx[-1])
    if not lo < hi:
        return {**out, "ratio_min": None, "ratio_median": None, "ratio_max": None,
                "reason": "the frontiers do not overlap in tokens/s/user"}
    grid = np.linspace(lo, hi, CURVE_POINTS)
    ratio = np.exp(np.interp(grid, tx, ty) - np.interp(grid, bx, by))
    xs = np.exp(grid)
    i_min, i_max = int(np.argmin(ratio)), int(np.argmax(ratio))
    median = float(np.median(ratio))
    i_med = int(np.argmin(np.abs(ratio - median)))
    return {**out, "ratio_min": float(ratio[i_min]), "ratio_median": median, "ratio_max": float(ratio[i_max]),
            "ratio_p10": float(np.percentile(ratio, 10)), "ratio_p90": float(np.percentile(ratio, 90)),
            "at_min_tokens_per_s_per_user": float(xs[i_min]), "at_median_tokens_per_s_per_user": float(xs[i_med]),
            "at_max_tokens_per_s_per_user": float(xs[i_max]), "overlap_tokens_per_s_per_user": [float(xs[0]), float(xs[-1])],
            "curve": [[float(x), float(r)] for x, r in zip(xs, ratio)]}


def comparisons(front: pl.DataFrame, pairs: list[tuple[str, str]]) -> list[dict]:
    """:func:`compare` for every (baseline, target) pair and every traffic pattern of ``front``."""
    traffics = sorted(set(front["traffic"].to_list())) if front.height else []
    return [compare(front, b, t, tr) for tr in traffics for b, t in pairs]


def default_pairs(models: list[str]) -> list[tuple[str, str]]:
    """Without a spec's ``compare``: every other model against the first."""
    return [(m, models[0]) for m in models[1:]]

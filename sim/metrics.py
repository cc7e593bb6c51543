"""Serving metrics: from per-request records to latency, throughput and goodput figures.

The serving engine writes one record per *completed* request. This module turns those records into the
figures a serving study reports: latency percentiles, tokens/s per GPU with a confidence interval, goodput
under an SLA, and the quantities of Little's law. Everything is vectorised (numpy over whole columns); no
Python loop runs over requests.

Records
-------
A polars DataFrame, one row per completed request. Times are seconds of simulated time.

=================  =====  ========================================================================
``request_id``     int    unique per request
``arrival_s``      float  when the request reached the system
``first_token_s``  float  when its first output token was produced (prefill done)
``finish_s``       float  when its last output token was produced
``input_tokens``   int    prompt length, >= 0
``output_tokens``  int    tokens generated, >= 1 (token 1 appears at ``first_token_s``)
``preemptions``    int    times it was evicted from a batch and resumed, >= 0
``instance``       int    serving instance that served it
=================  =====  ========================================================================

Each row must satisfy ``arrival_s <= first_token_s <= finish_s``; bad input raises :class:`InputError`.

Per-request latencies
---------------------
* ``ttft_s = first_token_s - arrival_s``: time to first token (queueing + prefill).
* ``e2e_s = finish_s - arrival_s``: end-to-end latency, the sojourn time W of Little's law.
* ``tpot_s = (finish_s - first_token_s) / (output_tokens - 1)``: time per output token after the first.
  Null for one-token requests, which never decode.
* ``tokens_per_s_per_user = 1 / tpot_s``: the decode speed one user sees (null where ``tpot_s`` is null
  or 0). Its mean is the mean of per-request rates, which is not ``1 / mean(tpot_s)``.

Steady-state window
-------------------
A finite run starts empty (the first requests meet no queue and small batches) and ends with a drain
(after the last arrival the batch empties and the last requests run nearly alone). Both make latency look
better and throughput look worse than in steady operation. With ``n`` completed requests the window
``[t0, t1)`` is:

* ``t0`` = the finish time of the ``ceil(warmup_fraction * n)``-th request to finish. Requests are then
  leaving as well as arriving, so the pipeline is full. If that count is 0, ``t0`` = the first arrival.
* ``t1`` = the arrival time of the ``floor((1 - cooldown_fraction) * n)``-th request in arrival order
  (at least the first). Arrivals go on after ``t1``, so a request that arrives just before ``t1`` is still
  served in a loaded system. With ``cooldown_fraction = 0`` the last requests are served during the drain.
* If ``t1 <= t0`` (a run too short for the fractions), the window becomes the whole run, from the first
  arrival to the last finish, and is flagged ``steady=False``: figures from it include warm-up and drain.
  The end is moved up by one ulp so that the half-open window still holds the last finish.

*Latency statistics* use the **measured requests**: those that arrive in ``[t0, t1)``, whatever their
finish time. *Rates* (tokens/s, requests/s) count what happens inside ``[t0, t1)``, from every request.

The rule does not detect overload. When requests arrive faster than the system serves them, the queue
grows without bound, so no steady state exists, and latency figures grow with the length of the run. The
rule also sees completed requests only: if the engine stops before it drains, requests that were still in
flight (the slowest ones) are missing. The cool-down margin limits, but does not remove, that bias.

Where tokens happen (throughput)
--------------------------------
A request's input tokens count at ``first_token_s`` (prefill done). Its output token 1 counts at
``first_token_s``. Tokens 2..n are spread uniformly over ``(first_token_s, finish_s]`` (all at
``finish_s`` if that interval is empty). So the tokens a request produces in ``[t0, t1)`` are::

    [t0 <= first_token_s < t1] * (1 + input_tokens)
        + (output_tokens - 1) * |(first_token_s, finish_s] ∩ [t0, t1)| / (finish_s - first_token_s)

Counts are fractional: this is the fluid view of the decode. For a periodic schedule and a window that
lasts a whole number of periods it is exact. Otherwise it is off by less than one token for each request
that straddles a window edge, which does not matter over a long window. Throughput is the sum over
requests divided by ``(t1 - t0)`` and by ``num_gpus``. ``requests_per_s`` is completions
(``finish_s`` in the window) per second for the whole system, not per GPU.

Confidence interval (batch means)
---------------------------------
Successive tokens are correlated: one slow step delays every request in the batch. So the per-request
variance does not give an honest error bar. Batch means: split ``[t0, t1)`` into ``n_batches`` equal
batches, compute the throughput in each, and treat the batch values as roughly independent. The interval is
``mean ± t_{(1+c)/2, B-1} * s / sqrt(B)`` (Student t, ``B`` batches, sample standard deviation ``s``). The
batches have equal length, so their mean equals the throughput over the whole window. The independence
assumption holds when a batch lasts much longer than the correlation time (a few mean e2e latencies). With
shorter batches the interval is too narrow.

Goodput
-------
A request *meets the SLA* when ``ttft_s <= ttft_s_max`` and ``tpot_s <= tpot_s_max``. A one-token request has
no TPOT and meets the TPOT bound. A bound given as ``None`` is not applied. Goodput is counted like throughput,
but only over requests that meet the SLA: SLA-meeting completions in the window per second, and their
output tokens produced in the window per second per GPU. The *attained fraction* is the share of measured
requests (arrived in the window) that meet the SLA.

Little's law
------------
For a window ``[t0, t1)`` of length ``T``: ``L = (1/T) * ∫ N(t) dt`` is the time-average number of requests
in the system, where a request is in the system from arrival to finish. ``lambda`` = arrivals in the
window / ``T``, and ``W`` = mean ``e2e_s`` of those arrivals. If every request that overlaps the window
both arrives and finishes inside it, then ``L = lambda * W`` exactly. In steady state it holds up to edge
effects of order ``W / T``. The integral is exact: ``N(t) = sum_i [a_i <= t < f_i]``, so
``∫ N dt = sum_i |[a_i, f_i) ∩ [t0, t1)|``, a clipped sum over requests.

Percentiles
-----------
The p-th percentile of ``m`` sorted values ``x_0 <= ... <= x_{m-1}`` is found by linear interpolation
between order statistics (numpy's default ``"linear"`` method, Hyndman & Fan type 7): at rank
``h = (m - 1) * p / 100`` it is ``x_floor(h) + (h - floor(h)) * (x_ceil(h) - x_floor(h))``. Statistics of an
empty set are ``None``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from .errors import InputError, require
from .tdist import t_quantile

#: the source named in error messages about the records frame
SOURCE = "request records"

#: required record columns -> "int" (any integer dtype) or "float" (any numeric dtype)
RECORD_COLUMNS: dict[str, str] = {
    "request_id": "int",
    "arrival_s": "float",
    "first_token_s": "float",
    "finish_s": "float",
    "input_tokens": "int",
    "output_tokens": "int",
    "preemptions": "int",
    "instance": "int",
}

# ---------------------------------------------------------------------------------------------------------
# Records -> validated numpy columns
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Requests:
    """The record columns as numpy arrays (float64 times, int64 counts), checked once."""

    request_id: np.ndarray
    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    preemptions: np.ndarray
    instance: np.ndarray

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_token_s - self.arrival_s

    @property
    def e2e_s(self) -> np.ndarray:
        return self.finish_s - self.arrival_s

    @property
    def tpot_s(self) -> np.ndarray:
        """Time per output token after the first; NaN for one-token requests."""
        decode_tokens = self.output_tokens - 1
        decode_s = self.finish_s - self.first_token_s
        return np.divide(decode_s, decode_tokens, out=np.full(decode_s.shape, np.nan), where=decode_tokens > 0)

    @property
    def tokens_per_s_per_user(self) -> np.ndarray:
        """Decode rate of each request, 1 / tpot_s; NaN where tpot_s is NaN or 0."""
        tpot = self.tpot_s
        ok = np.isfinite(tpot) & (tpot > 0)
        return np.divide(1.0, tpot, out=np.full(tpot.shape, np.nan), where=ok)


def _requests(records: pl.DataFrame) -> _Requests:
    """Check ``records`` against the schema and invariants above; return its columns as numpy arrays."""
    require(isinstance(records, pl.DataFrame), f"{SOURCE}: expected a polars DataFrame, got {type(records).__name__}")
    missing = [name for name in RECORD_COLUMNS if name not in records.columns]
    require(not missing, f"{SOURCE}: missing column(s) {', '.join(missing)}; required: {', '.join(RECORD_COLUMNS)}")
    require(records.height > 0, f"{SOURCE}: no rows; need at least one completed request")
    for name, kind in RECORD_COLUMNS.items():
        dtype = records.schema[name]
        ok = dtype.is_integer() if kind == "int" else dtype.is_numeric()
        require(ok, f"{SOURCE}: column {name} has dtype {dtype}; must be {'an integer' if kind == 'int' else 'a numeric'} type")
        nulls = records[name].null_count()
        require(nulls == 0, f"{SOURCE}: column {name} has {nulls} null value(s); none allowed")

    def column(name: str, dtype: type) -> np.ndarray:
        return records[name].to_numpy().astype(dtype, copy=False)

    req = _Requests(
        request_id=column("request_id", np.int64),
        arrival_s=column("arrival_s", np.float64),
        first_token_s=column("first_token_s", np.float64),
        finish_s=column("finish_s", np.float64),
        input_tokens=column("input_tokens", np.int64),
        output_tokens=column("output_tokens", np.int64),
        preemptions=column("preemptions", np.int64),
        instance=column("instance", np.int64),
    )

    def check(ok: np.ndarray, what: str) -> None:
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise InputError(f"{SOURCE}: request_id {req.request_id[bad]}: {what}")

    for name in ("arrival_s", "first_token_s", "finish_s"):
        check(np.isfinite(getattr(req, name)), f"{name} must be finite")
    check(req.first_token_s >= req.arrival_s, "first_token_s must be >= arrival_s")
    check(req.finish_s >= req.first_token_s, "finish_s must be >= first_token_s")
    check(req.output_tokens >= 1, "output_tokens must be >= 1")
    check(req.input_tokens >= 0, "input_tokens must be >= 0")
    check(req.preemptions >= 0, "preemptions must be >= 0")
    unique_ids = np.unique(req.request_id).size
    duplicates = req.request_id.size - unique_ids
    require(duplicates == 0, f"{SOURCE}: request_id must be unique ({duplicates} duplicate(s))")
    return req


def _check_num_gpus(num_gpus: int) -> int:
    ok = isinstance(num_gpus, (int, np.integer)) and not isinstance(num_gpus, bool) and num_gpus > 0
    require(ok, f"num_gpus: must be a positive integer, got {num_gpus!r}")
    return int(num_gpus)


# ---------------------------------------------------------------------------------------------------------
# 1. Per-request latencies
# ---------------------------------------------------------------------------------------------------------


def request_metrics(records: pl.DataFrame) -> pl.DataFrame:
    """Return ``records`` with ``ttft_s``, ``e2e_s``, ``tpot_s`` and ``tokens_per_s_per_user`` added.

    ``tpot_s`` is null for one-token requests. ``tokens_per_s_per_user = 1 / tpot_s`` is null where
    ``tpot_s`` is null or 0.
    """
    req = _requests(records)
    return records.with_columns(
        pl.Series("ttft_s", req.ttft_s),
        pl.Series("e2e_s", req.e2e_s),
        pl.Series("tpot_s", req.tpot_s, nan_to_null=True),
        pl.Series("tokens_per_s_per_user", req.tokens_per_s_per_user, nan_to_null=True),
    )


# ---------------------------------------------------------------------------------------------------------
# 2. The steady-state window
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A half-open interval ``[start_s, end_s)`` of simulated time over which figures are measured.

    ``steady`` is False when :func:`steady_window` had to fall back to the whole run. A Window unpacks
    like a pair: ``t0, t1 = steady_window(records)``.
    """

    start_s: float
    end_s: float
    steady: bool = True

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def __iter__(self) -> Iterator[float]:
        return iter((self.start_s, self.end_s))


def _bounds(window: Window | Sequence[float]) -> tuple[float, float]:
    """``(t0, t1)`` from a Window or any pair; requires finite ``t0 < t1``."""
    try:
        t0, t1 = (float(t) for t in window)
    except (TypeError, ValueError):
        raise InputError(f"window: must be a Window or a pair (start_s, end_s), got {window!r}") from None
    require(math.isfinite(t0) and math.isfinite(t1), f"window: start_s and end_s must be finite, got ({t0}, {t1})")
    require(t1 > t0, f"window: end_s ({t1}) must be > start_s ({t0})")
    return t0, t1


def _steady_window(req: _Requests, warmup_fraction: float, cooldown_fraction: float) -> Window:
    for name, value in (("warmup_fraction", warmup_fraction), ("cooldown_fraction", cooldown_fraction)):
        require(0.0 <= value < 1.0, f"{name}: must be in [0, 1), got {value!r}")
    total = warmup_fraction + cooldown_fraction
    require(total < 1.0, f"warmup_fraction + cooldown_fraction: must be < 1, got {total!r}")
    n = req.arrival_s.size
    # The 1e-9 keeps float noise from moving a count: 0.1 * 30 is 3.0000000000000004, and ceil would give 4.
    k_warm = math.ceil(warmup_fraction * n - 1e-9)
    k_cool = max(1, math.floor((1.0 - cooldown_fraction) * n + 1e-9))
    t0 = float(np.sort(req.finish_s)[k_warm - 1]) if k_warm >= 1 else float(req.arrival_s.min())
    t1 = float(np.sort(req.arrival_s)[k_cool - 1])
    if t1 > t0:
        return Window(t0, t1, steady=True)
    last_finish = float(req.finish_s.max())
    return Window(float(req.arrival_s.min()), float(np.nextafter(last_finish, math.inf)), steady=False)


def steady_window(records: pl.DataFrame, warmup_fraction: float = 0.1, cooldown_fraction: float = 0.1) -> Window:
    """The steady-state window ``[t0, t1)`` of a run, by the rule in the module docstring.

    ``t0`` is the finish time of the ``ceil(warmup_fraction * n)``-th request to finish. ``t1`` is the
    arrival time of the ``floor((1 - cooldown_fraction) * n)``-th arrival. If ``t1 <= t0``, the whole run
    is returned with ``steady=False``.
    """
    return _steady_window(_requests(records), warmup_fraction, cooldown_fraction)


def measured_requests(records: pl.DataFrame, window: Window | Sequence[float]) -> pl.DataFrame:
    """The rows of ``records`` (with :func:`request_metrics` columns) whose ``arrival_s`` lies in the window."""
    t0, t1 = _bounds(window)
    frame = request_metrics(records)
    return frame.filter((pl.col("arrival_s") >= t0) & (pl.col("arrival_s") < t1))


def _arrived_in(req: _Requests, t0: float, t1: float) -> np.ndarray:
    return (req.arrival_s >= t0) & (req.arrival_s < t1)


# ---------------------------------------------------------------------------------------------------------
# 3. Throughput
# ---------------------------------------------------------------------------------------------------------


def _output_tokens_in(req: _Requests, t0: float, t1: float) -> np.ndarray:
    """Output tokens each request produces in ``[t0, t1)``: token 1 at first_token_s, the rest spread."""
    first_in = (req.first_token_s >= t0) & (req.first_token_s < t1)
    decode_s = req.finish_s - req.first_token_s
    overlap_s = np.clip(np.minimum(req.finish_s, t1) - np.maximum(req.first_token_s, t0), 0.0, None)
    share = np.divide(overlap_s, decode_s, out=np.zeros_like(overlap_s), where=decode_s > 0)
    # A zero-length decode puts tokens 2..n all at finish_s.
    instant = (decode_s <= 0) & (req.finish_s >= t0) & (req.finish_s < t1)
    share = np.where(instant, 1.0, share)
    return first_in + (req.output_tokens - 1) * share


def _input_tokens_in(req: _Requests, t0: float, t1: float) -> np.ndarray:
    """Input tokens each request has prefilled in ``[t0, t1)``; all of them count at first_token_s."""
    return np.where((req.first_token_s >= t0) & (req.first_token_s < t1), req.input_tokens, 0)


def _finished_in(req: _Requests, t0: float, t1: float) -> np.ndarray:
    return (req.finish_s >= t0) & (req.finish_s < t1)


def output_tokens_per_s_per_gpu(records: pl.DataFrame, num_gpus: int, window: Window | Sequence[float]) -> float:
    """Output tokens produced in the window, per second of window, per GPU."""
    gpus = _check_num_gpus(num_gpus)
    t0, t1 = _bounds(window)
    return float(_output_tokens_in(_requests(records), t0, t1).sum()) / (t1 - t0) / gpus


def total_tokens_per_s_per_gpu(records: pl.DataFrame, num_gpus: int, window: Window | Sequence[float]) -> float:
    """Input plus output tokens processed in the window, per second, per GPU (input counts at first_token_s)."""
    gpus = _check_num_gpus(num_gpus)
    t0, t1 = _bounds(window)
    req = _requests(records)
    tokens = _output_tokens_in(req, t0, t1).sum() + _input_tokens_in(req, t0, t1).sum()
    return float(tokens) / (t1 - t0) / gpus


def requests_per_s(records: pl.DataFrame, window: Window | Sequence[float]) -> float:
    """Requests completed (``finish_s`` in the window) per second, for the whole system (not per GPU)."""
    t0, t1 = _bounds(window)
    return int(_finished_in(_requests(records), t0, t1).sum()) / (t1 - t0)


# ---------------------------------------------------------------------------------------------------------
# 4. Batch-means confidence interval for output throughput
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchMeansCI:
    """Output throughput over a window with a batch-means Student-t confidence interval."""

    #: output tokens/s/GPU over the whole window (equal to the mean of the batch values)
    mean_tokens_per_s_per_gpu: float
    #: half-width of the interval, tokens/s/GPU: the interval is mean ± half_width
    half_width_tokens_per_s_per_gpu: float
    #: confidence level, e.g. 0.95
    confidence: float
    #: output tokens/s/GPU in each batch, in time order
    batch_tokens_per_s_per_gpu: tuple[float, ...]
    #: length of one batch, seconds
    batch_length_s: float

    @property
    def low_tokens_per_s_per_gpu(self) -> float:
        return self.mean_tokens_per_s_per_gpu - self.half_width_tokens_per_s_per_gpu

    @property
    def high_tokens_per_s_per_gpu(self) -> float:
        return self.mean_tokens_per_s_per_gpu + self.half_width_tokens_per_s_per_gpu


def _output_throughput_ci(req: _Requests, gpus: int, t0: float, t1: float, n_batches: int, confidence: float) -> BatchMeansCI:
    ok = isinstance(n_batches, (int, np.integer)) and not isinstance(n_batches, bool) and n_batches >= 2
    require(ok, f"n_batches: must be an integer >= 2, got {n_batches!r}")
    require(0.0 < confidence < 1.0, f"confidence: must be in (0, 1), got {confidence!r}")

    edges_s = np.linspace(t0, t1, n_batches + 1)  # linspace puts the last edge exactly at t1
    length_s = (t1 - t0) / n_batches
    # n_batches iterations, each vectorised over all requests
    values = np.array([_output_tokens_in(req, a, b).sum() / (b - a) / gpus for a, b in zip(edges_s[:-1], edges_s[1:])])
    mean = float(_output_tokens_in(req, t0, t1).sum()) / (t1 - t0) / gpus
    quantile = t_quantile(0.5 + confidence / 2.0, n_batches - 1)  # closed form: no scipy.stats import
    half_width = quantile * float(values.std(ddof=1)) / math.sqrt(n_batches)
    return BatchMeansCI(mean, half_width, confidence, tuple(float(v) for v in values), length_s)


def output_throughput_ci(
    records: pl.DataFrame,
    num_gpus: int,
    window: Window | Sequence[float],
    n_batches: int = 10,
    confidence: float = 0.95,
) -> BatchMeansCI:
    """Output tokens/s/GPU over ``window`` with a batch-means Student-t interval (see the module docstring).

    The window is split into ``n_batches`` equal batches. For the interval to be honest, a batch should
    last several mean e2e latencies.
    """
    gpus = _check_num_gpus(num_gpus)
    t0, t1 = _bounds(window)
    return _output_throughput_ci(_requests(records), gpus, t0, t1, n_batches, confidence)


# ---------------------------------------------------------------------------------------------------------
# 5. Goodput under an SLA
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goodput:
    """What a window delivers within an SLA (bounds on TTFT and TPOT)."""

    ttft_s_max: float | None
    tpot_s_max: float | None
    #: SLA-meeting requests completed in the window, per second (whole system)
    requests_per_s: float
    #: output tokens produced in the window by SLA-meeting requests, per second per GPU
    output_tokens_per_s_per_gpu: float
    #: share of measured requests (arrived in the window) that meet the SLA; None if none arrived
    attained_fraction: float | None
    #: requests that arrived in the window
    measured_requests: int
    #: of those, requests that meet the SLA
    good_measured_requests: int


def _meets_sla(req: _Requests, ttft_s_max: float | None, tpot_s_max: float | None) -> np.ndarray:
    for name, bound in (("ttft_s_max", ttft_s_max), ("tpot_s_max", tpot_s_max)):
        ok = bound is None or (isinstance(bound, numbers.Real) and not isinstance(bound, bool) and bound > 0)
        require(ok, f"{name}: must be a positive number of seconds or None, got {bound!r}")
    ok = np.ones(req.arrival_s.size, dtype=bool)
    if ttft_s_max is not None:
        ok &= req.ttft_s <= ttft_s_max
    if tpot_s_max is not None:
        tpot = req.tpot_s
        ok &= np.isnan(tpot) | (tpot <= tpot_s_max)  # one-token requests have no TPOT and pass
    return ok


def _goodput(req: _Requests, ttft_s_max: float | None, tpot_s_max: float | None, t0: float, t1: float, gpus: int) -> Goodput:
    good = _meets_sla(req, ttft_s_max, tpot_s_max)
    measured = _arrived_in(req, t0, t1)
    n_measured = int(measured.sum())
    n_good = int((good & measured).sum())
    return Goodput(
        ttft_s_max=ttft_s_max,
        tpot_s_max=tpot_s_max,
        requests_per_s=int((good & _finished_in(req, t0, t1)).sum()) / (t1 - t0),
        output_tokens_per_s_per_gpu=float(_output_tokens_in(req, t0, t1)[good].sum()) / (t1 - t0) / gpus,
        attained_fraction=n_good / n_measured if n_measured else None,
        measured_requests=n_measured,
        good_measured_requests=n_good,
    )


def goodput(
    records: pl.DataFrame,
    ttft_s_max: float | None,
    tpot_s_max: float | None,
    window: Window | Sequence[float],
    *,
    num_gpus: int,
) -> Goodput:
    """Requests/s and output tokens/s/GPU from requests meeting both SLA bounds, and the attained fraction.

    A bound of ``None`` is not applied. One-token requests have no TPOT and meet any TPOT bound.
    ``num_gpus`` only scales ``output_tokens_per_s_per_gpu``.
    """
    gpus = _check_num_gpus(num_gpus)
    t0, t1 = _bounds(window)
    return _goodput(_requests(records), ttft_s_max, tpot_s_max, t0, t1, gpus)


# ---------------------------------------------------------------------------------------------------------
# 6. Little's law: L = lambda * W
# ---------------------------------------------------------------------------------------------------------


def requests_in_system(records: pl.DataFrame, times_s: np.ndarray | Sequence[float]) -> np.ndarray:
    """N(t), the number of requests in the system (``arrival_s <= t < finish_s``) at each of ``times_s``.

    Sort and sweep: ``N(t) = #{arrivals <= t} - #{finishes <= t}``, two binary searches per time.
    """
    req = _requests(records)
    t = np.asarray(times_s, dtype=np.float64)
    arrived = np.searchsorted(np.sort(req.arrival_s), t, side="right")
    left = np.searchsorted(np.sort(req.finish_s), t, side="right")
    return arrived - left


def _time_average_in_system(req: _Requests, t0: float, t1: float) -> float:
    # ∫_{t0}^{t1} N(t) dt = sum over requests of the time each spends in the system inside the window
    inside_s = np.clip(np.minimum(req.finish_s, t1) - np.maximum(req.arrival_s, t0), 0.0, None)
    return float(inside_s.sum()) / (t1 - t0)


def time_average_in_system(records: pl.DataFrame, t0: float, t1: float) -> float:
    """L: the exact time-average number of requests in the system over ``[t0, t1)``."""
    t0, t1 = _bounds((t0, t1))
    return _time_average_in_system(_requests(records), t0, t1)


def arrival_rate(records: pl.DataFrame, t0: float, t1: float) -> float:
    """lambda: arrivals in ``[t0, t1)`` per second."""
    t0, t1 = _bounds((t0, t1))
    return int(_arrived_in(_requests(records), t0, t1).sum()) / (t1 - t0)


def mean_sojourn_s(records: pl.DataFrame, t0: float, t1: float) -> float | None:
    """W: the mean ``e2e_s`` of requests arriving in ``[t0, t1)``; None if none arrived."""
    t0, t1 = _bounds((t0, t1))
    req = _requests(records)
    e2e = req.e2e_s[_arrived_in(req, t0, t1)]
    return float(e2e.mean()) if e2e.size else None


# ---------------------------------------------------------------------------------------------------------
# 7. One flat summary of a run
# ---------------------------------------------------------------------------------------------------------


def _describe(values: np.ndarray, name: str, unit: str, percentiles: Sequence[int]) -> dict[str, float | None]:
    """``{name}_mean{unit}`` and ``{name}_p{q}{unit}`` over the non-NaN values (None where there are none)."""
    values = values[~np.isnan(values)]
    out: dict[str, float | None] = {f"{name}_mean{unit}": float(values.mean()) if values.size else None}
    for q in percentiles:
        out[f"{name}_p{q}{unit}"] = float(np.percentile(values, q, method="linear")) if values.size else None
    return out


def summarize(
    records: pl.DataFrame,
    num_gpus: int,
    *,
    warmup_fraction: float = 0.1,
    cooldown_fraction: float = 0.1,
    sla_ttft_s: float | None = None,
    sla_tpot_s: float | None = None,
    n_batches: int = 10,
    sim_end_s: float | None = None,
) -> dict[str, float | int | bool | None]:
    """The serving figures of one run as a flat, JSON-ready dict (floats, ints, bools, None).

    Latency statistics are over the measured requests (arrived in the steady window). Rates are over the
    window. ``preemptions`` counts all completed requests and ``preemptions_measured`` counts the measured
    ones. Goodput keys appear when ``sla_ttft_s`` or ``sla_tpot_s`` is given. If ``sim_end_s`` is given, it
    is checked to be no earlier than every finish and reported.
    """
    gpus = _check_num_gpus(num_gpus)
    req = _requests(records)
    if sim_end_s is not None:
        last_finish = float(req.finish_s.max())
        ok = isinstance(sim_end_s, numbers.Real) and math.isfinite(sim_end_s) and sim_end_s >= last_finish
        require(ok, f"sim_end_s: must be >= the last finish_s ({last_finish}), got {sim_end_s!r}")
    window = _steady_window(req, warmup_fraction, cooldown_fraction)
    t0, t1 = window.start_s, window.end_s
    measured = _arrived_in(req, t0, t1)
    out_tokens = float(_output_tokens_in(req, t0, t1).sum())
    in_tokens = float(_input_tokens_in(req, t0, t1).sum())
    ci = _output_throughput_ci(req, gpus, t0, t1, n_batches, 0.95)

    summary: dict[str, float | int | bool | None] = {
        "completed_requests": int(req.arrival_s.size),
        "measured_requests": int(measured.sum()),
        "window_start_s": t0,
        "window_end_s": t1,
        "steady": window.steady,
        "num_gpus": gpus,
        "instances": int(np.unique(req.instance).size),
    }
    if sim_end_s is not None:
        summary["sim_end_s"] = float(sim_end_s)
    summary |= _describe(req.ttft_s[measured], "ttft", "_s", (50, 90, 99))
    summary |= _describe(req.tpot_s[measured], "tpot", "_s", (50, 90, 99))
    summary |= _describe(req.e2e_s[measured], "e2e", "_s", (50, 90, 99))
    summary |= _describe(req.tokens_per_s_per_user[measured], "tokens_per_s_per_user", "", (10, 50, 90))
    summary |= {
        "output_tokens_per_s_per_gpu": out_tokens / (t1 - t0) / gpus,
        "output_tokens_per_s_per_gpu_ci95": ci.half_width_tokens_per_s_per_gpu,
        "input_tokens_per_s_per_gpu": in_tokens / (t1 - t0) / gpus,
        "total_tokens_per_s_per_gpu": (out_tokens + in_tokens) / (t1 - t0) / gpus,
        "requests_per_s": int(_finished_in(req, t0, t1).sum()) / (t1 - t0),
        "arrival_rate_per_s": int(measured.sum()) / (t1 - t0),
        "requests_in_system_mean": _time_average_in_system(req, t0, t1),
        "preemptions": int(req.preemptions.sum()),
        "preemptions_measured": int(req.preemptions[measured].sum()),
    }
    if sla_ttft_s is not None or sla_tpot_s is not None:
        good = _goodput(req, sla_ttft_s, sla_tpot_s, t0, t1, gpus)
        summary |= {
            "sla_ttft_s": None if sla_ttft_s is None else float(sla_ttft_s),
            "sla_tpot_s": None if sla_tpot_s is None else float(sla_tpot_s),
            "goodput_requests_per_s": good.requests_per_s,
            "goodput_output_tokens_per_s_per_gpu": good.output_tokens_per_s_per_gpu,
            "sla_attained_fraction": good.attained_fraction,
        }
    return summary

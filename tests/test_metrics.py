"""Tests for latentmoe_sim.metrics against hand calculations and closed forms."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from latentmoe_sim import metrics as m
from latentmoe_sim.errors import InputError

SCHEMA = {
    "request_id": pl.Int64,
    "arrival_s": pl.Float64,
    "first_token_s": pl.Float64,
    "finish_s": pl.Float64,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "preemptions": pl.Int64,
    "instance": pl.Int64,
}


def records(arrival_s, first_token_s, finish_s, output_tokens, input_tokens=None, preemptions=None, instance=None):
    """A record frame from columns; ids are 0..n-1, and the defaults are 0 input tokens, no preemptions, instance 0."""
    n = len(arrival_s)
    return pl.DataFrame(
        {
            "request_id": np.arange(n),
            "arrival_s": np.asarray(arrival_s, dtype=float),
            "first_token_s": np.asarray(first_token_s, dtype=float),
            "finish_s": np.asarray(finish_s, dtype=float),
            "input_tokens": np.zeros(n, dtype=int) if input_tokens is None else np.asarray(input_tokens),
            "output_tokens": np.asarray(output_tokens),
            "preemptions": np.zeros(n, dtype=int) if preemptions is None else np.asarray(preemptions),
            "instance": np.zeros(n, dtype=int) if instance is None else np.asarray(instance),
        },
        schema=SCHEMA,
    )


def three_requests() -> pl.DataFrame:
    # r0: ttft 0.5, e2e 2.5, 4 decode tokens in 2.0 s -> tpot 0.5, 2 tok/s
    # r1: one token only -> tpot null
    # r2: ttft 2.0, e2e 5.0, 12 decode tokens in 3.0 s -> tpot 0.25, 4 tok/s
    return records(
        arrival_s=[0.0, 1.0, 2.0],
        first_token_s=[0.5, 1.25, 4.0],
        finish_s=[2.5, 1.25, 7.0],
        output_tokens=[5, 1, 13],
        input_tokens=[100, 20, 300],
        preemptions=[0, 0, 2],
    )


def periodic(n: int = 100, num_per_s: float = 1.0) -> pl.DataFrame:
    """Request k arrives at k s, gets its first token 1 s later and its 11th and last at 3 s (tpot 0.2 s)."""
    k = np.arange(n) / num_per_s
    return records(k, k + 1.0, k + 3.0, np.full(n, 11), input_tokens=np.full(n, 100))


def poisson_stream(seed: int, horizon_s: float, rate_per_s: float = 20.0, mean_output_tokens: float = 100.0) -> pl.DataFrame:
    """Independent requests (no queueing): Poisson arrivals, random TTFT, geometric length, random TPOT."""
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / rate_per_s, size=int(rate_per_s * horizon_s * 1.2)))
    arrival = arrival[arrival < horizon_s]
    n = arrival.size
    first = arrival + 0.05 + rng.exponential(0.2, size=n)
    out = rng.geometric(1.0 / mean_output_tokens, size=n)
    finish = first + (out - 1) * rng.uniform(0.02, 0.04, size=n)
    return records(arrival, first, finish, out, input_tokens=rng.integers(100, 1000, size=n))


# ------------------------------------------------------------------------------------------------- latencies


def test_request_metrics_by_hand():
    frame = m.request_metrics(three_requests())
    assert frame["ttft_s"].to_list() == pytest.approx([0.5, 0.25, 2.0])
    assert frame["e2e_s"].to_list() == pytest.approx([2.5, 0.25, 5.0])
    tpot = frame["tpot_s"].to_list()
    assert tpot[0] == pytest.approx(0.5) and tpot[1] is None and tpot[2] == pytest.approx(0.25)
    rate = frame["tokens_per_s_per_user"].to_list()
    assert rate[0] == pytest.approx(2.0) and rate[1] is None and rate[2] == pytest.approx(4.0)
    assert frame["tpot_s"].dtype == pl.Float64
    assert frame.columns[: len(SCHEMA)] == list(SCHEMA)  # input columns kept, in order


def test_zero_length_decode_has_no_user_rate():
    frame = m.request_metrics(records([0.0], [1.0], [1.0], [3]))
    assert frame["tpot_s"].to_list() == [0.0]
    assert frame["tokens_per_s_per_user"].to_list() == [None]


# ----------------------------------------------------------------------------------------------- the window


def known_ten() -> pl.DataFrame:
    # arrivals 0..9; finishes sorted are 3, 4, 5, 8, 9, 11, 12, 14, 15, 20
    arrival = np.arange(10.0)
    finish = np.array([5, 3, 8, 4, 12, 9, 15, 11, 14, 20], dtype=float)
    return records(arrival, arrival, finish, np.full(10, 2))


def test_steady_window_rule_on_known_frame():
    frame = known_ten()
    # default 10 %: t0 = 1st finish (3), t1 = 9th arrival (8)
    assert tuple(m.steady_window(frame)) == (3.0, 8.0)
    # 20 %: t0 = 2nd finish (4), t1 = 8th arrival (7)
    window = m.steady_window(frame, 0.2, 0.2)
    assert (window.start_s, window.end_s, window.steady) == (4.0, 7.0, True)
    assert m.measured_requests(frame, window)["arrival_s"].to_list() == [4.0, 5.0, 6.0]
    # no warm-up: t0 = first arrival
    assert m.steady_window(frame, 0.0, 0.2).start_s == 0.0
    t0, t1 = m.steady_window(frame, 0.0, 0.0)  # unpacks like a pair
    assert (t0, t1) == (0.0, 9.0)


def test_steady_window_falls_back_to_whole_run():
    frame = known_ten()
    # 50 %: t0 = 5th finish (9); 40 % cool-down: t1 = 6th arrival (5) <= t0
    window = m.steady_window(frame, 0.5, 0.4)
    assert window.steady is False
    assert window.start_s == 0.0
    assert window.end_s == pytest.approx(20.0) and window.end_s > 20.0  # holds the last finish
    assert m.measured_requests(frame, window).height == 10
    assert m.requests_per_s(frame, window) == pytest.approx(10 / 20.0)
    # one request: never steady
    assert m.steady_window(records([0.0], [1.0], [2.0], [2])).steady is False


def test_steady_window_counts_are_not_moved_by_float_noise():
    # 0.1 * 30 = 3.0000000000000004 in floating point; the 3rd finish is meant, not the 4th
    k = np.arange(30.0)
    frame = records(k, k, k + 0.5, np.full(30, 1))
    assert m.steady_window(frame).start_s == 2.5
    assert m.steady_window(frame).end_s == 26.0  # floor(0.9 * 30) = 27th arrival


# ---------------------------------------------------------------------------------------------- throughput


def test_token_spreading_by_hand():
    # one request: token 1 at 2 s, tokens 2..5 uniformly over (2, 6] (one per second), 10 input tokens at 2 s
    frame = records([0.0], [2.0], [6.0], [5], input_tokens=[10])
    assert m.output_tokens_per_s_per_gpu(frame, 1, (3.0, 5.0)) == pytest.approx(2 / 2.0)
    assert m.total_tokens_per_s_per_gpu(frame, 1, (3.0, 5.0)) == pytest.approx(2 / 2.0)
    assert m.output_tokens_per_s_per_gpu(frame, 1, (2.0, 4.0)) == pytest.approx(3 / 2.0)
    assert m.total_tokens_per_s_per_gpu(frame, 2, (2.0, 4.0)) == pytest.approx(13 / 2.0 / 2)
    assert m.output_tokens_per_s_per_gpu(frame, 1, (0.0, 10.0)) == pytest.approx(5 / 10.0)
    assert m.requests_per_s(frame, (0.0, 6.0)) == 0.0  # finish at 6 is outside [0, 6)
    assert m.requests_per_s(frame, (0.0, 8.0)) == pytest.approx(1 / 8.0)


def test_zero_length_decode_counts_at_finish():
    frame = records([0.0], [1.0], [1.0], [4])
    assert m.output_tokens_per_s_per_gpu(frame, 1, (0.0, 2.0)) == pytest.approx(4 / 2.0)
    assert m.output_tokens_per_s_per_gpu(frame, 1, (1.5, 2.0)) == 0.0


@pytest.mark.parametrize("num_gpus", [1, 2, 8])
def test_periodic_schedule_throughput_is_analytic(num_gpus):
    frame = periodic()
    # in steady state one request (11 output + 100 input tokens) completes per second
    for window in [(10.0, 30.0), (10.3, 30.3), (20.0, 21.0), m.steady_window(frame)]:
        assert m.output_tokens_per_s_per_gpu(frame, num_gpus, window) == pytest.approx(11.0 / num_gpus)
        assert m.total_tokens_per_s_per_gpu(frame, num_gpus, window) == pytest.approx(111.0 / num_gpus)
        assert m.requests_per_s(frame, window) == pytest.approx(1.0)


def test_periodic_schedule_summary():
    frame = periodic()
    s = m.summarize(frame, 2)
    # 10th finish is request 9 at 12 s; 90th arrival is request 89 at 89 s
    assert (s["window_start_s"], s["window_end_s"], s["steady"]) == (12.0, 89.0, True)
    assert s["completed_requests"] == 100 and s["measured_requests"] == 77
    for q in ("mean", "p50", "p90", "p99"):
        assert s[f"ttft_{q}_s"] == pytest.approx(1.0)
        assert s[f"tpot_{q}_s"] == pytest.approx(0.2)
        assert s[f"e2e_{q}_s"] == pytest.approx(3.0)
    for q in ("mean", "p10", "p50", "p90"):
        assert s[f"tokens_per_s_per_user_{q}"] == pytest.approx(5.0)
    assert s["output_tokens_per_s_per_gpu"] == pytest.approx(5.5)
    assert s["total_tokens_per_s_per_gpu"] == pytest.approx(55.5)
    assert s["requests_per_s"] == pytest.approx(1.0)
    assert s["output_tokens_per_s_per_gpu_ci95"] < 0.05  # nearly deterministic
    # Little's law in steady state: L = lambda * W = 1 * 3
    assert s["arrival_rate_per_s"] == pytest.approx(1.0)
    assert s["requests_in_system_mean"] == pytest.approx(3.0)


# -------------------------------------------------------------------------------------------- batch means


def test_batch_means_ci_brackets_truth_and_shrinks():
    truth = 20.0 * 100.0 / 8  # rate * mean output tokens / GPUs
    short = poisson_stream(seed=1, horizon_s=200.0)
    long = poisson_stream(seed=1, horizon_s=5000.0)
    ci_short = m.output_throughput_ci(short, 8, m.steady_window(short))
    ci_long = m.output_throughput_ci(long, 8, m.steady_window(long))
    for ci in (ci_short, ci_long):
        assert ci.low_tokens_per_s_per_gpu <= truth <= ci.high_tokens_per_s_per_gpu
        assert len(ci.batch_tokens_per_s_per_gpu) == 10
        assert np.mean(ci.batch_tokens_per_s_per_gpu) == pytest.approx(ci.mean_tokens_per_s_per_gpu)
    assert ci_long.half_width_tokens_per_s_per_gpu < ci_short.half_width_tokens_per_s_per_gpu / 2
    # summarize reports the same half-width
    s = m.summarize(long, 8)
    assert s["output_tokens_per_s_per_gpu_ci95"] == pytest.approx(ci_long.half_width_tokens_per_s_per_gpu)
    assert s["output_tokens_per_s_per_gpu"] == pytest.approx(ci_long.mean_tokens_per_s_per_gpu)


def test_batch_means_ci_coverage_is_near_nominal():
    truth = 20.0 * 100.0 / 8
    hits = 0
    for seed in range(100):
        frame = poisson_stream(seed=seed, horizon_s=300.0)
        ci = m.output_throughput_ci(frame, 8, m.steady_window(frame))
        hits += ci.low_tokens_per_s_per_gpu <= truth <= ci.high_tokens_per_s_per_gpu
    assert 85 <= hits <= 100


def test_batch_means_ci_by_hand():
    # one request decoding 1 token/s over (0, 10]: batch values are known exactly
    frame = records([0.0], [0.0], [10.0], [11])
    ci = m.output_throughput_ci(frame, 1, (0.0, 10.0), n_batches=2)
    # batch [0, 5): token 1 + 5 -> 6/5; batch [5, 10): 5 -> 1
    assert ci.batch_tokens_per_s_per_gpu == pytest.approx((1.2, 1.0))
    assert ci.mean_tokens_per_s_per_gpu == pytest.approx(1.1)
    # t_{0.975, 1} = 12.7062..., s = 0.1 * sqrt(2) ... half-width = t * s / sqrt(2) = 12.7062 * 0.1
    assert ci.half_width_tokens_per_s_per_gpu == pytest.approx(12.706204736 * 0.1, rel=1e-6)


# ------------------------------------------------------------------------------------------------ goodput


def four_requests() -> pl.DataFrame:
    # three_requests plus r3: ttft 0.1, tpot 1.0, finishing at 13.1 (after a [0, 10) window)
    return records(
        arrival_s=[0.0, 1.0, 2.0, 3.0],
        first_token_s=[0.5, 1.25, 4.0, 3.1],
        finish_s=[2.5, 1.25, 7.0, 13.1],
        output_tokens=[5, 1, 13, 11],
    )


def test_goodput_counts():
    frame = four_requests()
    both = m.goodput(frame, 1.0, 0.6, (0.0, 10.0), num_gpus=2)  # r0 and r1 pass; r2 slow TTFT; r3 slow TPOT
    assert (both.measured_requests, both.good_measured_requests, both.attained_fraction) == (4, 2, 0.5)
    assert both.requests_per_s == pytest.approx(2 / 10.0)
    assert both.output_tokens_per_s_per_gpu == pytest.approx((5 + 1) / 10.0 / 2)

    ttft_only = m.goodput(frame, 3.0, None, (0.0, 10.0), num_gpus=2)  # everyone passes
    assert ttft_only.attained_fraction == 1.0
    assert ttft_only.requests_per_s == pytest.approx(3 / 10.0)  # r3 finishes after the window
    # r3 has produced 1 + 10 * (10 - 3.1) / 10 = 7.9 tokens by 10 s
    assert ttft_only.output_tokens_per_s_per_gpu == pytest.approx((5 + 1 + 13 + 7.9) / 10.0 / 2)
    assert ttft_only.output_tokens_per_s_per_gpu == pytest.approx(m.output_tokens_per_s_per_gpu(frame, 2, (0.0, 10.0)))

    tpot_only = m.goodput(frame, None, 0.3, (0.0, 10.0), num_gpus=1)  # r1 (one token) and r2 pass
    assert tpot_only.good_measured_requests == 2

    late = m.goodput(frame, 1.0, 0.6, (20.0, 30.0), num_gpus=1)
    assert late.measured_requests == 0 and late.attained_fraction is None


def test_summarize_goodput_keys():
    frame = four_requests()
    assert "goodput_requests_per_s" not in m.summarize(frame, 1)
    s = m.summarize(frame, 1, warmup_fraction=0.0, cooldown_fraction=0.0, sla_ttft_s=1.0, sla_tpot_s=0.6)
    assert (s["window_start_s"], s["window_end_s"]) == (0.0, 3.0)  # arrivals 0, 1, 2 measured
    assert s["sla_attained_fraction"] == pytest.approx(2 / 3)
    assert s["goodput_requests_per_s"] == pytest.approx(2 / 3.0)
    assert (s["sla_ttft_s"], s["sla_tpot_s"]) == (1.0, 0.6)


# ------------------------------------------------------------------------------------------- Little's law


def test_littles_law_exact_when_everything_is_inside_the_window():
    rng = np.random.default_rng(7)
    arrival = np.sort(rng.uniform(0.0, 100.0, size=500))
    first = arrival + rng.exponential(0.5, size=500)
    finish = first + rng.exponential(3.0, size=500)
    frame = records(arrival, first, finish, np.full(500, 20))
    t0, t1 = -1.0, float(finish.max()) + 1.0
    L = m.time_average_in_system(frame, t0, t1)
    lam = m.arrival_rate(frame, t0, t1)
    W = m.mean_sojourn_s(frame, t0, t1)
    assert lam == pytest.approx(500 / (t1 - t0))
    assert W == pytest.approx(float(np.mean(finish - arrival)))
    assert L == pytest.approx(lam * W, rel=1e-12)


def test_requests_in_system_sweep():
    frame = three_requests()  # in system: r0 [0, 2.5), r1 [1, 1.25), r2 [2, 7)
    times = [-1.0, 0.0, 1.0, 1.25, 2.0, 2.5, 6.9, 7.0]
    assert m.requests_in_system(frame, times).tolist() == [0, 1, 2, 1, 2, 1, 1, 0]


def test_time_average_matches_integral_of_the_sweep():
    frame = poisson_stream(seed=3, horizon_s=50.0)
    t0, t1 = 10.0, 40.0
    events = np.concatenate([frame["arrival_s"].to_numpy(), frame["finish_s"].to_numpy()])
    edges = np.concatenate([[t0], np.sort(events[(events > t0) & (events < t1)]), [t1]])
    integral = float(np.sum(m.requests_in_system(frame, edges[:-1]) * np.diff(edges)))
    assert m.time_average_in_system(frame, t0, t1) == pytest.approx(integral / (t1 - t0), rel=1e-12)


def test_empty_window_statistics_are_none():
    assert m.mean_sojourn_s(three_requests(), 100.0, 200.0) is None
    assert m.arrival_rate(three_requests(), 100.0, 200.0) == 0.0


# ---------------------------------------------------------------------------------------------- summarize


def test_summarize_is_flat_json_with_all_keys():
    s = m.summarize(poisson_stream(seed=5, horizon_s=100.0), 8, sla_ttft_s=0.5, sla_tpot_s=0.035, sim_end_s=1e6)
    json.dumps(s, allow_nan=False)
    for key, value in s.items():
        assert value is None or type(value) in (int, float, bool), key
    expected = {"completed_requests", "measured_requests", "window_start_s", "window_end_s", "steady", "num_gpus",
                "output_tokens_per_s_per_gpu", "output_tokens_per_s_per_gpu_ci95", "total_tokens_per_s_per_gpu",
                "requests_per_s", "preemptions", "goodput_requests_per_s", "goodput_output_tokens_per_s_per_gpu",
                "sla_attained_fraction", "sim_end_s"}
    expected |= {f"{name}_{q}_s" for name in ("ttft", "tpot", "e2e") for q in ("mean", "p50", "p90", "p99")}
    expected |= {f"tokens_per_s_per_user_{q}" for q in ("mean", "p10", "p50", "p90")}
    assert expected <= set(s)
    assert 0.0 < s["sla_attained_fraction"] < 1.0
    assert s["tokens_per_s_per_user_p10"] < s["tokens_per_s_per_user_p50"] < s["tokens_per_s_per_user_p90"]


def test_summarize_percentiles_use_linear_interpolation():
    # window [0, 3) measures TTFTs 0, 1, 2 (one-token requests): p50 at rank 1 -> 1.0, p90 at rank 1.8 -> 1.8
    arrival = np.array([0.0, 1.0, 2.0, 3.0])
    frame = records(arrival, arrival + np.array([0.0, 1.0, 2.0, 3.0]), arrival + np.array([0.0, 1.0, 2.0, 3.0]), [1, 1, 1, 1],
                    preemptions=[1, 0, 2, 0])
    s = m.summarize(frame, 1, warmup_fraction=0.0, cooldown_fraction=0.0)
    assert s["window_end_s"] == 3.0 and s["measured_requests"] == 3  # arrivals 0, 1, 2
    assert s["ttft_p50_s"] == pytest.approx(1.0)
    assert s["ttft_p90_s"] == pytest.approx(1.8)
    assert s["tpot_mean_s"] is None and s["tokens_per_s_per_user_p50"] is None  # nobody decodes
    assert s["preemptions"] == 3 and s["preemptions_measured"] == 3


# --------------------------------------------------------------------------------------------- bad input


def test_empty_frame_raises():
    empty = pl.DataFrame(schema=SCHEMA)
    for call in (lambda: m.summarize(empty, 1), lambda: m.request_metrics(empty), lambda: m.steady_window(empty)):
        with pytest.raises(InputError, match="no rows"):
            call()


@pytest.mark.parametrize("num_gpus", [0, -1, 1.5, True, "8"])
def test_bad_num_gpus_raises(num_gpus):
    with pytest.raises(InputError, match="num_gpus"):
        m.summarize(three_requests(), num_gpus)
    with pytest.raises(InputError, match="num_gpus"):
        m.output_tokens_per_s_per_gpu(three_requests(), num_gpus, (0.0, 1.0))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop("instance"), "missing column"),
        (lambda f: f.with_columns(pl.lit(-1.0).alias("first_token_s")), "first_token_s must be >= arrival_s"),
        (lambda f: f.with_columns(pl.lit(0.0).alias("finish_s")), "finish_s must be >= first_token_s"),
        (lambda f: f.with_columns(pl.lit(0, dtype=pl.Int64).alias("output_tokens")), "output_tokens must be >= 1"),
        (lambda f: f.with_columns(pl.lit(None, dtype=pl.Float64).alias("arrival_s")), "null"),
        (lambda f: f.with_columns(pl.lit(float("nan")).alias("arrival_s")), "finite"),
        (lambda f: f.with_columns(pl.lit(1, dtype=pl.Int64).alias("request_id")), "unique"),
        (lambda f: f.with_columns(pl.col("output_tokens").cast(pl.Float64)), "integer"),
    ],
)
def test_bad_records_raise(change, message):
    with pytest.raises(InputError, match=message):
        m.summarize(change(three_requests()), 1)


def test_bad_arguments_raise():
    frame = three_requests()
    with pytest.raises(InputError, match="window"):
        m.requests_per_s(frame, (2.0, 2.0))
    with pytest.raises(InputError, match="window"):
        m.time_average_in_system(frame, 3.0, 1.0)
    with pytest.raises(InputError, match="warmup_fraction"):
        m.steady_window(frame, warmup_fraction=1.0)
    with pytest.raises(InputError, match="warmup_fraction \\+ cooldown_fraction"):
        m.steady_window(frame, 0.5, 0.5)
    with pytest.raises(InputError, match="n_batches"):
        m.output_throughput_ci(frame, 1, (0.0, 7.0), n_batches=1)
    with pytest.raises(InputError, match="ttft_s_max"):
        m.goodput(frame, -1.0, None, (0.0, 7.0), num_gpus=1)
    with pytest.raises(InputError, match="sim_end_s"):
        m.summarize(frame, 1, sim_end_s=5.0)  # before the last finish at 7 s
    with pytest.raises(InputError):
        m.summarize("not a frame", 1)

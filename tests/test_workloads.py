"""Tests for latentmoe_sim.workloads: lengths, arrivals, traces, workloads and presets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from latentmoe_sim.errors import InputError
from latentmoe_sim.workloads import (
    ClosedLoop,
    Empirical,
    Fixed,
    Gamma,
    LogNormal,
    Poisson,
    Trace,
    Uniform,
    Workload,
    list_presets,
    make_workload,
    parse_arrivals,
    parse_length,
    read_trace,
    sample_trace_path,
)


def one_line_input_error(call, *fragments):
    """Run ``call``; it must raise a one-line InputError containing every fragment."""
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- lengths -----------------------------------------------------------------------------------------

N = 200_000


@pytest.mark.parametrize(
    "dist, lo, hi",
    [
        (Fixed(1024), 1024, 1024),
        (Uniform(512, 2048), 512, 2048),
        (LogNormal(1024, 0.5), 1, None),
        (LogNormal(1024, 1.0, lo=64, hi=4096), 64, 4096),
        (LogNormal(3, 1.5), 1, None),
        (Empirical([5, 10, 10, 200]), 5, 200),
    ],
    ids=str,
)
def test_length_bounds_dtype_and_mean(dist, lo, hi):
    values = dist.sample(np.random.default_rng(1), N)
    assert values.dtype == np.int64 and values.shape == (N,)
    assert values.min() >= max(lo, 1)
    if hi is not None:
        assert values.max() <= hi
    assert values.mean() == pytest.approx(dist.mean(), rel=0.01)


def test_length_analytic_means():
    assert Uniform(512, 2048).mean() == 1280
    assert LogNormal(1024, 0.5).mean() == pytest.approx(1024 * math.exp(0.125))
    assert LogNormal(100, 0.0, lo=200).mean() == 200
    assert Empirical([1, 2, 6]).mean() == 3
    assert Uniform(7, 7).sample(np.random.default_rng(0), 3).tolist() == [7, 7, 7]


def test_uniform_hits_both_ends():
    values = Uniform(1, 3).sample(np.random.default_rng(0), 1000)
    assert set(values.tolist()) == {1, 2, 3}


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("1024", Fixed(1024)),
        ("fixed:8", Fixed(8)),
        ("uniform:512:2048", Uniform(512, 2048)),
        ("lognormal:1024:0.5", LogNormal(1024, 0.5)),
        ("lognormal:1024:0.5:16:4096", LogNormal(1024, 0.5, 16, 4096)),
    ],
)
def test_parse_length_round_trips(spec, expected):
    assert parse_length(spec) == expected
    assert parse_length(str(expected)) == expected


def test_empirical_from_file(tmp_path):
    plain = write(tmp_path, "lens.csv", "# observed prompt lengths\nlength\n10\n\n20\n30\n")
    dist = parse_length(f"empirical:{plain}")
    assert isinstance(dist, Empirical) and dist.values == (10, 20, 30) and dist.mean() == 20
    table = write(tmp_path, "table.csv", "id,prompt,gen\n1,100,7\n2,300,9\n")
    assert parse_length(f"empirical:{table}:prompt").values == (100, 300)
    assert Empirical.from_file(table, "gen").values == (7, 9)
    one_line_input_error(lambda: Empirical.from_file(table), "3 columns", "table.csv")
    one_line_input_error(lambda: Empirical.from_file(table, "nope"), "no column 'nope'", "id, prompt, gen")
    bad = write(tmp_path, "bad.csv", "10\n0\n")
    one_line_input_error(lambda: parse_length(f"empirical:{bad}", "--input-len"), "--input-len", "bad.csv:2", ">= 1")
    one_line_input_error(lambda: Empirical.from_file(write(tmp_path, "e.csv", "")), "empty")
    one_line_input_error(lambda: Empirical.from_file(tmp_path / "missing.csv"), "file not found")


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("0", "fixed length must be an integer >= 1"),
        ("-5", ">= 1"),
        ("uniform:10:5", "hi must be an integer >= 10"),
        ("uniform:10", "must be one of"),
        ("uniform:a:5", "lo must be an integer"),
        ("lognormal:0:0.5", "median must be a finite number > 0"),
        ("lognormal:100:-1", "sigma"),
        ("zipf:3", "must be one of"),
        ("", "must be one of"),
        ("10.5", "must be one of"),
    ],
)
def test_parse_length_errors(spec, fragment):
    one_line_input_error(lambda: parse_length(spec, "--output-len"), "--output-len", fragment)


def test_length_constructor_errors():
    one_line_input_error(lambda: Fixed(0), "fixed length")
    one_line_input_error(lambda: Fixed(True), "fixed length")
    one_line_input_error(lambda: Empirical([]), "non-empty")
    one_line_input_error(lambda: Empirical([3, 2.5]), "value 2", "whole number")


# --- arrivals ----------------------------------------------------------------------------------------


def test_poisson_gaps():
    times = Poisson(4.0).arrival_times(np.random.default_rng(2), N)
    assert times.dtype == np.float64 and times[0] == 0.0 and np.all(np.diff(times) >= 0)
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(0.25, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("cv", [0.5, 1.0, 2.0, 4.0])
def test_gamma_gaps(cv):
    gaps = np.diff(Gamma(10.0, cv).arrival_times(np.random.default_rng(3), N))
    assert gaps.mean() == pytest.approx(0.1, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)


def test_arrival_edge_counts():
    rng = np.random.default_rng(0)
    assert Poisson(1.0).arrival_times(rng, 0).size == 0
    assert Gamma(1.0, 2.0).arrival_times(rng, 1).tolist() == [0.0]


def test_parse_arrivals():
    assert parse_arrivals(concurrency=16) == ClosedLoop(16)
    assert parse_arrivals(concurrency=4, think_time_s=0.5).think_time_s == 0.5
    assert parse_arrivals(rate=2.0) == Poisson(2.0)
    assert parse_arrivals(rate=2.0, burstiness=1.0) == Poisson(2.0)
    assert parse_arrivals(rate=2.0, burstiness=3.0) == Gamma(2.0, 3.0)


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({}, ("exactly one", "--concurrency", "--rate")),
        ({"concurrency": 4, "rate": 1.0}, ("exactly one",)),
        ({"concurrency": 0}, ("--concurrency", ">= 1")),
        ({"concurrency": -3}, ("--concurrency",)),
        ({"concurrency": 2.5}, ("--concurrency", "integer")),
        ({"rate": 0.0}, ("--rate", "> 0")),
        ({"rate": -1.0}, ("--rate",)),
        ({"rate": float("inf")}, ("--rate", "finite")),
        ({"rate": 1.0, "burstiness": 0.0}, ("--burstiness", "> 0")),
        ({"concurrency": 4, "burstiness": 2.0}, ("--burstiness", "open-loop")),
        ({"rate": 1.0, "think_time_s": 1.0}, ("--think-time-s",)),
    ],
)
def test_parse_arrivals_errors(kwargs, fragments):
    one_line_input_error(lambda: parse_arrivals(**kwargs), *fragments)


# --- traces ------------------------------------------------------------------------------------------


def test_bundled_azure_sample():
    trace = read_trace(sample_trace_path())
    assert isinstance(trace, Trace) and len(trace) == 50
    assert trace.arrival_s[0] == 0.0 and np.all(np.diff(trace.arrival_s) >= 0)
    assert trace.input_tokens.dtype == np.int64 and trace.output_tokens.min() >= 1
    assert trace.arrival_s[1] == pytest.approx(0.196219)  # 7-digit Azure fractions, truncated to microseconds


def test_trace_seconds_aliases_and_sorting(tmp_path):
    path = write(tmp_path, "t.csv", "arrival_time,prompt_tokens,completion_tokens\n2.5,30,3\n1.0,10,1\n1.5,20,2\n")
    trace = read_trace(path)
    assert trace.arrival_s.tolist() == [0.0, 0.5, 1.5]
    assert trace.input_tokens.tolist() == [10, 20, 30] and trace.output_tokens.tolist() == [1, 2, 3]


def test_trace_iso_timestamps_and_case(tmp_path):
    text = (
        "timestamp,INPUT_TOKENS,output_tokens,extra\n"
        "2024-05-10T00:00:01Z,5,6,x\n"
        "2024-05-10 00:00:00.5,7,8,y\n"
        "2024-05-10T02:00:03+02:00,9,10,z\n"  # = 00:00:03 UTC
    )
    trace = read_trace(write(tmp_path, "iso.csv", text))
    assert trace.arrival_s.tolist() == [0.0, 0.5, 2.5]
    assert trace.input_tokens.tolist() == [7, 5, 9]


def test_trace_jsonl(tmp_path):
    records = [
        {"arrival_s": 0.25, "input_tokens": 100, "output_tokens": 5},
        {"arrival_s": 1.0, "input_tokens": 200, "output_tokens": 6, "id": "b"},
    ]
    text = "\n".join(json.dumps(r) for r in records) + "\n\n"
    trace = read_trace(write(tmp_path, "t.jsonl", text))
    assert trace.arrival_s.tolist() == [0.0, 0.75] and trace.input_tokens.tolist() == [100, 200]
    azure = '{"TIMESTAMP": "2023-11-16 18:15:46.6805900", "ContextTokens": 374, "GeneratedTokens": 44}\n'
    assert read_trace(write(tmp_path, "azure.log", azure)).output_tokens.tolist() == [44]  # sniffed as JSONL


@pytest.mark.parametrize(
    "name, text, fragments",
    [
        ("empty.csv", "", ("empty.csv", "empty")),
        ("header.csv", "arrival_s,input_tokens,output_tokens\n", ("no requests",)),
        ("nocol.csv", "arrival_s,input_tokens\n0,5\n", ("nocol.csv:1", "no output_tokens column", "GeneratedTokens")),
        ("text.csv", "arrival_s,input_tokens,output_tokens\n0,5,5\n1,five,5\n", ("text.csv:3", "input_tokens", "five")),
        ("zero.csv", "arrival_s,input_tokens,output_tokens\n0,5,5\n1,5,0\n", ("zero.csv:3", "output_tokens", ">= 1")),
        ("neg.csv", "arrival_s,input_tokens,output_tokens\n0,-2,5\n", ("neg.csv:2", "input_tokens")),
        ("frac.csv", "arrival_s,input_tokens,output_tokens\n0,2.5,5\n", ("frac.csv:2", "whole number")),
        ("short.csv", "arrival_s,input_tokens,output_tokens\n0,5\n", ("short.csv:2", "output_tokens is missing")),
        ("time.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1,1\nyesterday,1,1\n",
         ("time.csv:3", "TIMESTAMP", "ISO timestamp")),
        ("mixed.csv", "arrival_s,input_tokens,output_tokens\n0,1,1\n2023-11-16 18:15:46,1,1\n",
         ("mixed.csv:3", "arrival_s (seconds)")),
        ("nan.csv", "arrival_s,input_tokens,output_tokens\n0,1,1\nnan,1,1\n", ("nan.csv:3", "finite")),
        ("bad.jsonl", '{"arrival_s": 0, "input_tokens": 1, "output_tokens": 1}\n{oops\n', ("bad.jsonl:2", "JSON")),
        ("gap.jsonl", '{"arrival_s": 0, "input_tokens": 1, "output_tokens": 1}\n{"arrival_s": 1, "input_tokens": 1}\n',
         ("gap.jsonl:2", "output_tokens is missing")),
        ("list.jsonl", "[1, 2, 3]\n", ("list.jsonl:1", "JSON object")),
        ("empty.jsonl", "\n", ("empty.jsonl", "empty")),
    ],
)
def test_trace_errors(tmp_path, name, text, fragments):
    path = write(tmp_path, name, text)
    one_line_input_error(lambda: read_trace(path), *fragments)


def test_trace_missing_file(tmp_path):
    one_line_input_error(lambda: read_trace(tmp_path / "nope.csv"), "nope.csv", "file not found")


# --- workloads and presets ---------------------------------------------------------------------------


def test_generate_is_deterministic_and_streams_are_independent():
    a = make_workload("decode-heavy", rate=5.0, input_len="lognormal:1024:0.5", output_len="uniform:1:100", seed=7)
    b = make_workload("decode-heavy", rate=5.0, input_len="lognormal:1024:0.5", output_len="uniform:1:100", seed=7)
    sa, sb = a.generate(), b.generate()
    for field in ("arrival_s", "input_tokens", "output_tokens"):
        assert np.array_equal(getattr(sa, field), getattr(sb, field))
    assert np.array_equal(sa.arrival_s, a.generate().arrival_s)  # generate() is repeatable
    # A different rate / burstiness changes the times but not the lengths.
    sc = make_workload("decode-heavy", rate=50.0, burstiness=3.0, input_len="lognormal:1024:0.5",
                       output_len="uniform:1:100", seed=7).generate()
    assert np.array_equal(sa.input_tokens, sc.input_tokens) and np.array_equal(sa.output_tokens, sc.output_tokens)
    assert not np.array_equal(sa.arrival_s, sc.arrival_s)
    # Another output distribution leaves the input lengths alone; another seed changes everything.
    sd = make_workload("decode-heavy", rate=5.0, input_len="lognormal:1024:0.5", output_len=64, seed=7).generate()
    assert np.array_equal(sa.input_tokens, sd.input_tokens)
    se = make_workload("decode-heavy", rate=5.0, input_len="lognormal:1024:0.5", seed=8).generate()
    assert not np.array_equal(sa.input_tokens, se.input_tokens)


def test_request_specs_shapes_and_read_only():
    specs = make_workload("prefill-heavy", rate=1.0, num_requests=10).generate()
    assert len(specs) == specs.num_requests == 10 and specs.closed_loop is None
    assert specs.arrival_s.dtype == np.float64 and specs.input_tokens.dtype == np.int64
    assert specs.input_tokens.tolist() == [8192] * 10 and specs.output_tokens.tolist() == [1024] * 10
    with pytest.raises(ValueError):
        specs.input_tokens[0] = 1


def test_closed_loop_workload():
    specs = make_workload("decode-heavy", concurrency=32, think_time_s=0.5, num_requests=64).generate()
    assert len(specs) == 64 and np.isnan(specs.arrival_s).all()
    assert specs.closed_loop == ClosedLoop(32, 0.5) and specs.closed_loop.concurrency == 32


def test_presets_and_overrides():
    names = [p.name for p in list_presets()]
    assert names == ["decode-heavy", "prefill-heavy"]
    w = make_workload("decode-heavy", concurrency=8)
    assert (w.input_len, w.output_len, w.num_requests, w.seed) == (Fixed(1024), Fixed(8192), 1000, 0)
    assert make_workload("prefill-heavy", rate=1.0).input_len == Fixed(8192)
    w = make_workload("decode-heavy", concurrency=8, input_len=2048, output_len=Uniform(10, 20), num_requests=5, seed=3)
    assert (w.input_len, w.output_len, w.num_requests, w.seed) == (Fixed(2048), Uniform(10, 20), 5, 3)
    assert isinstance(make_workload("decode-heavy", rate=3.0, burstiness=2.5).arrivals, Gamma)


def test_trace_workload():
    path = sample_trace_path()
    trace = read_trace(path)
    specs = make_workload("decode-heavy", trace=path).generate()
    assert len(specs) == 50 and np.array_equal(specs.input_tokens, trace.input_tokens)
    assert np.array_equal(specs.arrival_s, trace.arrival_s)
    head = make_workload("decode-heavy", trace=trace, num_requests=10).generate()
    assert np.array_equal(head.output_tokens, trace.output_tokens[:10])
    fixed_out = make_workload("decode-heavy", trace=trace, output_len=77).generate()
    assert fixed_out.output_tokens.tolist() == [77] * 50
    assert np.array_equal(fixed_out.input_tokens, trace.input_tokens)
    one_line_input_error(lambda: make_workload("decode-heavy", trace=trace, num_requests=51), "51", "50 requests")


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"preset": "chat"}, ("unknown workload preset 'chat'", "decode-heavy", "prefill-heavy")),
        ({}, ("exactly one arrival source", "got none")),
        ({"concurrency": 4, "rate": 2.0}, ("--concurrency and --rate",)),
        ({"rate": 2.0, "trace": "x.csv"}, ("--rate and --trace",)),
        ({"concurrency": 0}, ("--concurrency", ">= 1")),
        ({"rate": -1.0}, ("--rate", "> 0")),
        ({"rate": 1.0, "num_requests": 0}, ("--num-requests", ">= 1")),
        ({"rate": 1.0, "seed": -1}, ("--seed", ">= 0")),
        ({"rate": 1.0, "input_len": "uniform:5:1"}, ("--input-len", "hi")),
        ({"rate": 1.0, "output_len": 0}, ("--output-len",)),
        ({"rate": 1.0, "output_len": 2.5}, ("--output-len",)),
        ({"trace": "no/such/trace.csv"}, ("trace", "file not found")),
        ({"trace": "ignored", "burstiness": 2.0}, ("--burstiness",)),
    ],
)
def test_make_workload_errors(kwargs, fragments):
    kwargs = {"preset": "decode-heavy", **kwargs}
    if kwargs.get("trace") == "ignored":
        kwargs["trace"] = sample_trace_path()
    one_line_input_error(lambda: make_workload(**kwargs), *fragments)


def test_workload_direct_construction():
    w = Workload("custom", Uniform(1, 4), Fixed(2), Poisson(1.0), 3, seed=1)
    assert len(w.generate()) == 3 and "custom" in w.describe()
    one_line_input_error(lambda: Workload("w", None, Fixed(2), Poisson(1.0), 3), "input_len is required")
    one_line_input_error(lambda: Workload("w", Fixed(1), Fixed(2), Poisson(1.0), None), "num_requests is required")
    one_line_input_error(lambda: Workload("w", Fixed(1), Fixed(2), "poisson", 3), "arrivals must be")

"""Tests of the Effective Parameter Multiplier: fit, multiplier, variant, bootstrap, CLI and its errors.

Reference values are facts.md §2.3 (reproduced fit of the Qwen3 dense MMLU family) and the paper's chain
(arXiv 2601.18089 §4.3.1: λ ≈ 1.35 -> 1.35T -> Kimi-K2 at 80 layers), read from the model catalog.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pytest

from latentmoe_sim import epm as E
from latentmoe_sim.cli import main
from latentmoe_sim.errors import InputError
from latentmoe_sim.models.catalog import load_model

# The paper's MMLU pairs (Table 3 / Table 4): baseline -> ℓ-MoE_acc.
PAIR_95B = (58.95, 62.23)
PAIR_HYBRID = (70.10, 72.11)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def assert_one_line_error(capsys, *argv: str, contains: str = "") -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("lmsim: error: ") and err.count("\n") == 1, err
    assert contains in err, err
    return err


def write_csv(tmp_path, text: str, name: str = "fam.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ----------------------------------------------------------------------------------------------- paper chain


def test_paper_chain_from_catalog():
    """EPM 1.35 x Kimi-K2's nominal 1T = 1.35T -> 80 layers, exactly the catalog's kimi-k2-1.35t entry."""
    base, ref = load_model("kimi-k2-1t"), load_model("kimi-k2-1.35t")
    size, _ = E.base_size(base)
    assert size == 1e12  # 1.026e12 rounded to two significant digits: the paper's "1T"
    epm = ref.reported["total_params"] / size  # the paper's λ, read from the catalog entry
    assert epm == pytest.approx(1.35)
    v = E.make_variant(base, epm)
    assert v.spec.layers == ref.layers
    assert v.spec.num_layers == ref.num_layers == 80
    assert v.total_params == ref.total_params
    assert abs(v.total_params - ref.reported["total_params"]) / ref.reported["total_params"] < 1e-3
    assert v.unit == ("AE",) and v.units_added == 19


def test_paper_chain_cli(capsys):
    d = run_json(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "1.35")
    assert d["num_layers"] == 80
    assert d["target_params"] == pytest.approx(1.35e12)
    assert abs(d["total_params"] - 1.35e12) / 1.35e12 < 1e-3
    assert abs(d["residual"]) < 1e-3
    assert {"name", "num_layers", "total_params", "epm", "target_params", "residual"} <= set(d)
    code, out, _ = run(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "1.35")
    assert code == 0 and "80" in out and "residual" in out


# ----------------------------------------------------------------------------------------------- fit


@pytest.mark.parametrize("convention, A, B, r2", [
    ("nominal", 58.840, 8.023, 0.964),
    ("exact", 58.822, 7.942, 0.965),
    ("non-embedding", 60.646, 7.535, 0.968),
])
def test_bundled_fit_reproduces_facts(convention, A, B, r2):
    fit = E.fit_family(E.load_family(params=convention))
    assert round(fit.A, 3) == A
    assert round(fit.B, 3) == B
    assert round(fit.r2, 3) == r2
    # the same line numpy.polyfit finds
    slope, intercept = np.polyfit(np.log(fit.family.params / 1e9), fit.family.scores, 1)
    assert fit.B == pytest.approx(slope) and fit.A == pytest.approx(intercept)


def test_bundled_fit_residuals_and_sources():
    fit = E.fit_family(E.load_family())
    assert np.round(fit.residuals, 2).tolist() == [-1.93, -0.47, 3.03, 1.37, 1.04, -3.03]
    assert fit.B_per_decade == pytest.approx(18.47, abs=5e-3)
    assert len(fit.family.names) == 6 and all("2505.09388" in s for s in fit.family.sources)


def test_absolute_inversion_is_not_the_paper_method():
    """Inverting the curve at Kimi-K2-Base's MMLU 87.8 gives ~38B, i.e. λ ~ 0.04 for 1T (facts.md §2.3)."""
    fit = E.fit_family(E.load_family())
    assert fit.params_for_score(87.8) / 1e12 == pytest.approx(0.037, abs=0.003)


def test_fit_cli_text_and_json(capsys):
    code, out, _ = run(capsys, "epm", "fit")
    assert code == 0
    assert "58.840" in out and "8.023" in out and "0.964" in out and "nominal" in out
    d = run_json(capsys, "epm", "fit", "--params", "non-embedding")
    assert round(d["B"], 3) == 7.535 and d["params_convention"] == "non-embedding"
    assert d["params_column"] == "non_embedding_params" and len(d["points"]) == 6
    assert all(p["source"] for p in d["points"])


def test_user_csv_with_params_column_and_units(tmp_path, capsys):
    path = write_csv(tmp_path, "# a comment\nname,params,score\na,1e9,50\nb,10B,60\nc,1e11,70\n")
    fit = E.fit_family(E.load_family(path))
    assert fit.B == pytest.approx(10 / math.log(10))
    assert fit.A == pytest.approx(50.0) and fit.r2 == pytest.approx(1.0)
    assert fit.family.column == "params"
    d = run_json(capsys, "epm", "fit", "--family", path)
    assert d["B"] == pytest.approx(fit.B)


# ----------------------------------------------------------------------------------------------- multiplier


@pytest.mark.parametrize("convention, pair, expected", [
    ("nominal", PAIR_95B, 1.505),
    ("nominal", PAIR_HYBRID, 1.285),
    ("exact", PAIR_95B, 1.511),
    ("exact", PAIR_HYBRID, 1.288),
    ("non-embedding", PAIR_95B, 1.545),
    ("non-embedding", PAIR_HYBRID, 1.306),
])
def test_paper_gains_imply_epm(convention, pair, expected):
    fit = E.fit_family(E.load_family(params=convention))
    assert round(E.epm_from_scores(fit.B, *pair), 3) == expected


def test_multiplier_cli(capsys):
    d = run_json(capsys, "epm", "multiplier", "--baseline-score", "58.95", "--treated-score", "62.23")
    assert round(d["epm"], 3) == 1.505 and d["score_gain"] == pytest.approx(3.28)
    d = run_json(capsys, "epm", "multiplier", "--baseline-score", "70.10", "--treated-score", "72.11")
    assert round(d["epm"], 3) == 1.285
    d = run_json(capsys, "epm", "multiplier", "--epm", "1.35", "--size", "1T")
    assert round(d["score_gain"], 2) == 2.41  # facts.md §2.3: ΔMMLU for λ = 1.35, nominal
    assert d["iso_params"] == pytest.approx(1.35e12)


@pytest.mark.parametrize("epm", [0.5, 1.0, 1.35, 2.0, 10.0])
def test_round_trip_epm_gain(epm):
    B = E.fit_family(E.load_family()).B
    gain = E.score_gain(B, epm)
    assert E.epm_from_scores(B, 60.0, 60.0 + gain) == pytest.approx(epm)
    assert E.score_gain(B, E.epm_from_scores(B, 60.0, 60.0 + gain)) == pytest.approx(gain)


def test_round_trip_cli(capsys):
    d = run_json(capsys, "epm", "multiplier", "--epm", "1.7")
    back = run_json(capsys, "epm", "multiplier", "--baseline-score", "50", "--treated-score", str(50 + d["score_gain"]))
    assert back["epm"] == pytest.approx(1.7)


# ----------------------------------------------------------------------------------------------- variant


def test_variant_of_exact(capsys):
    base = load_model("kimi-k2-1t")
    v = E.make_variant(base, 1.35, of="exact")
    assert v.target == pytest.approx(1.35 * base.total_params)
    per_layer = base.with_layers(base.layers + ("AE",)).total_params - base.total_params
    assert abs(v.total_params - v.target) <= per_layer / 2
    assert v.spec.num_layers == 82  # 1.3857T; 61 + 21 layers of 17.06B
    d = run_json(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "1.35", "--of", "exact")
    assert d["num_layers"] == 82 and d["of"] == "exact" and d["base_size"] == base.total_params


def test_nominal_rule_and_overrides():
    base = load_model("kimi-k2-1t")
    assert E.nominal_round(1.0264e12) == 1e12
    assert E.nominal_round(72_588_276_736) == 7.3e10
    assert E.base_size(base, nominal=1.04e12)[0] == 1.04e12
    with_nominal = dataclasses.replace(base, reported={"nominal_params": 1.1e12})
    assert E.base_size(with_nominal)[0] == 1.1e12
    assert E.make_variant(base, 1.35, nominal=1.04e12).spec.num_layers == 83


@pytest.mark.parametrize("align", [1, 128])
def test_width_scaling_within_tolerance(align, capsys):
    base = load_model("kimi-k2-1t")
    v = E.make_variant(base, 1.35, scale="width", align=align)
    assert v.spec.num_layers == base.num_layers and v.expert_ffn % align == 0
    step = (base.block_count("E") * base.moe.num_experts * 3 * base.hidden_size) * align  # params per align step of m
    assert abs(v.total_params - v.target) <= step / 2 + 1
    assert abs(v.residual) < 0.01
    d = run_json(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "1.35", "--scale", "width")
    assert d["expert_ffn"] == E.make_variant(base, 1.35, scale="width").expert_ffn
    assert abs(d["residual"]) < 1e-3


def test_width_can_shrink_depth_cannot():
    base = load_model("kimi-k2-1t")
    assert E.make_variant(base, 0.8, scale="width").expert_ffn < base.moe.expert_ffn
    with pytest.raises(InputError, match="adding layers cannot reach"):
        E.make_variant(base, 0.8)


def test_repeat_unit():
    assert E.repeat_unit(load_model("kimi-k2-1t").layers) == ("AE",)
    hybrid = load_model("hybrid-73bt-8ba").layers
    assert E.repeat_unit(hybrid) == tuple("MEMEMEMEMEME") + ("A",)
    assert E.repeat_unit(load_model("nemotron-3-super").layers) == ("M", "E")
    assert E.repeat_unit(("AD", "AE")) == ("AE",)  # nothing repeats: the last layer
    assert E.parse_unit("M,E", hybrid) == ("M", "E") and E.parse_unit("last", hybrid) == ("A",)


def test_hybrid_variant_keeps_mix():
    base = load_model("hybrid-73bt-8ba")
    v = E.make_variant(base, 1.5)
    assert v.spec.num_layers == base.num_layers + 13 * v.units_added
    assert v.spec.block_count("A") == 4 + v.units_added


@pytest.mark.parametrize("base, extra", [
    ("kimi-k2-1t", []),
    ("kimi-k2-1t", ["--scale", "width"]),
    ("hybrid-73bt-8ba", ["--unit", "M,E"]),
])
def test_write_reads_back(tmp_path, capsys, base, extra):
    path = tmp_path / f"{base}-{len(extra)}.yaml"
    d = run_json(capsys, "epm", "variant", base, "--epm", "1.35", "--write", str(path), *extra)
    text = path.read_text()
    assert f"base: {base}" in text
    spec = load_model(str(path))
    assert spec.total_params == d["total_params"] == d["written"]["reads_back_total_params"]
    assert spec.num_layers == d["num_layers"]
    assert spec.reported["nominal_params"] == pytest.approx(d["target_params"])


def test_write_from_file_base_spells_out_spec(tmp_path, capsys):
    first = tmp_path / "k2-deeper.yaml"
    run_json(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "1.35", "--write", str(first))
    second = tmp_path / "k2-deeper-wider.yaml"
    d = run_json(capsys, "epm", "variant", str(first), "--epm", "1.1", "--scale", "width", "--write", str(second))
    assert "base:" not in second.read_text()
    assert d["base_size"] == pytest.approx(1.35e12)  # the first variant's reported nominal size
    assert load_model(str(second)).total_params == d["total_params"]


# ----------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_contains_point_and_is_deterministic():
    family = E.load_family()
    fit = E.fit_family(family)
    b1 = E.bootstrap_fit(family, 2000, seed=7)
    b2 = E.bootstrap_fit(family, 2000, seed=7)
    b3 = E.bootstrap_fit(family, 2000, seed=8)
    lo, hi = b1.interval(b1.slopes)
    assert lo < fit.B < hi
    lo_a, hi_a = b1.interval(b1.intercepts)
    assert lo_a < fit.A < hi_a
    assert np.array_equal(b1.slopes, b2.slopes) and b1.interval(b1.slopes) == b2.interval(b2.slopes)
    assert b1.interval(b1.slopes) != b3.interval(b3.slopes)
    epm_lo, epm_hi = b1.interval(E.epm_from_scores(b1.slopes, *PAIR_95B))
    assert epm_lo < E.epm_from_scores(fit.B, *PAIR_95B) < epm_hi


def test_bootstrap_skips_degenerate_draws(tmp_path):
    family = E.load_family(write_csv(tmp_path, "name,params,score\na,1e9,50\nb,1e10,60\n"))
    b = E.bootstrap_fit(family, 1000, seed=0)
    assert 0 < b.skipped < 1000 and b.slopes.size == 1000 - b.skipped
    assert np.allclose(b.slopes, 10 / math.log(10))


def test_bootstrap_is_fast():
    family = E.load_family()
    E.bootstrap_fit(family, 10, seed=0)
    t = time.perf_counter()
    E.bootstrap_fit(family, 2000, seed=0)
    assert time.perf_counter() - t < 0.2


def test_bootstrap_cli_carries_through(capsys):
    d = run_json(capsys, "epm", "multiplier", "--baseline-score", "58.95", "--treated-score", "62.23",
                 "--bootstrap", "2000", "--seed", "3", "--size", "1T")
    lo, hi = d["bootstrap"]["epm_interval"]
    assert lo < d["epm"] < hi
    assert d["bootstrap"]["iso_params_interval"] == pytest.approx([lo * 1e12, hi * 1e12])
    again = run_json(capsys, "epm", "multiplier", "--baseline-score", "58.95", "--treated-score", "62.23",
                     "--bootstrap", "2000", "--seed", "3", "--size", "1T")
    assert again == d
    v = run_json(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "1.35", "--bootstrap", "2000")
    lo_l, hi_l = v["bootstrap"]["num_layers_interval"]
    assert lo_l <= 80 <= hi_l and lo_l < hi_l
    f = run_json(capsys, "epm", "fit", "--bootstrap", "500", "--level", "0.8")
    assert f["bootstrap"]["level"] == 0.8 and f["bootstrap"]["B_interval"][0] < f["B"] < f["bootstrap"]["B_interval"][1]
    code, out, _ = run(capsys, "epm", "multiplier", "--baseline-score", "58.95", "--treated-score", "62.23", "--bootstrap", "2000")
    assert code == 0 and "90% CI" in out


# ----------------------------------------------------------------------------------------------- errors


def test_error_fewer_than_two_points(tmp_path, capsys):
    path = write_csv(tmp_path, "name,params,score\na,1e9,50\n")
    with pytest.raises(InputError, match="at least 2 points"):
        E.load_family(path)
    assert_one_line_error(capsys, "epm", "fit", "--family", path, contains="at least 2 points")
    same = write_csv(tmp_path, "name,params,score\na,1e9,50\nb,1e9,51\n", "same.csv")
    assert_one_line_error(capsys, "epm", "fit", "--family", same, contains="distinct")


@pytest.mark.parametrize("value", ["0", "-5e9", "abc", "0.6"])
def test_error_bad_params(tmp_path, capsys, value):
    path = write_csv(tmp_path, f"name,params,score\na,{value},50\nb,1e10,60\n")
    err = assert_one_line_error(capsys, "epm", "fit", "--family", path, contains="field params")
    assert "row 1" in err


def test_error_non_numeric_score(tmp_path, capsys):
    path = write_csv(tmp_path, "name,params,score\na,1e9,fifty\nb,1e10,60\n")
    assert_one_line_error(capsys, "epm", "fit", "--family", path, contains="field score = 'fifty' is not a number")


def test_error_missing_column_and_file(tmp_path, capsys):
    path = write_csv(tmp_path, "name,size,score\na,1e9,50\nb,1e10,60\n")
    assert_one_line_error(capsys, "epm", "fit", "--family", path, contains="missing column")
    assert_one_line_error(capsys, "epm", "fit", "--family", str(tmp_path / "nope.csv"), contains="not found")


@pytest.mark.parametrize("argv", [
    ("epm", "multiplier", "--epm", "0"),
    ("epm", "multiplier", "--epm", "-1.2"),
    ("epm", "variant", "kimi-k2-1t", "--epm", "0"),
    ("epm", "variant", "kimi-k2-1t", "--epm", "nan"),
])
def test_error_epm_not_positive(capsys, argv):
    assert_one_line_error(capsys, *argv, contains="--epm")


def test_error_variant_below_base(capsys):
    err = assert_one_line_error(capsys, "epm", "variant", "kimi-k2-1t", "--baseline-score", "62", "--treated-score", "60")
    assert "smaller than" in err and "adding layers cannot reach" in err
    assert_one_line_error(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "0.9", contains="adding layers cannot reach")
    # --epm is bounded to [0.01, 100] on the command line; the library still refuses an unreachable width
    from latentmoe_sim.models import load_model

    with pytest.raises(InputError, match="not reachable"):
        E.make_variant(load_model("kimi-k2-1t"), 0.001, scale="width")
    assert_one_line_error(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "0.001", contains="allowed [0.01, 100]")


def test_error_unknown_model(capsys):
    assert_one_line_error(capsys, "epm", "variant", "no-such-model", "--epm", "1.35", contains="unknown model")


def test_error_score_arguments(capsys):
    assert_one_line_error(capsys, "epm", "multiplier", contains="--baseline-score")
    assert_one_line_error(capsys, "epm", "multiplier", "--baseline-score", "50", contains="together")
    assert_one_line_error(capsys, "epm", "multiplier", "--baseline-score", "50", "--treated-score", "51",
                          "--epm", "1.2", contains="not both")
    # argparse usage error: one line, exit 2 (main returns the status rather than raising SystemExit)
    assert main(["epm", "multiplier", "--baseline-score", "abc", "--treated-score", "51"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_error_bad_unit_and_write_path(tmp_path, capsys):
    assert_one_line_error(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "1.35", "--unit", "XQ", contains="--unit")
    assert_one_line_error(capsys, "epm", "variant", "kimi-k2-1t", "--epm", "1.35", "--write", str(tmp_path / "a.txt"),
                          contains="--write")


def test_error_flat_family(tmp_path, capsys):
    path = write_csv(tmp_path, "name,params,score\na,1e9,60\nb,1e10,50\n")
    assert_one_line_error(capsys, "epm", "multiplier", "--family", path, "--epm", "1.3", contains="not > 0")

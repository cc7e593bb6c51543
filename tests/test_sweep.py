"""Sweeps: spec validation, grid, executors (serial = process = Ray), resume after kill -9, worker death,
frontier and comparison against hand-made points (issue 8, deliverables 3-5)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from latentmoe_sim.cli import main
from latentmoe_sim.errors import InputError
from latentmoe_sim.frontier import compare, pareto
from latentmoe_sim.point import TIMING_COLUMNS
from latentmoe_sim.schema.experiment import load_experiment
from latentmoe_sim.sweep import Store, expand, read_rows, run_sweep, take

TINY = """
name: tiny
hardware: gb200_nvl72
precision: fp4
models: [kimi-k2-1t-latentmoe, {name: k2-epm, base: kimi-k2-1t, epm: 1.35}]
gpu_budget: 16
max_gpus_per_instance: 16
seed: 3
stopping: {max_requests: 2000}
compare: [{baseline: k2-epm, target: kimi-k2-1t-latentmoe}]
traffic:
  - name: short
    workload: decode-heavy
    input_len: "256"
    output_len: "uniform:48:80"
    plans: [{tp: 1, dp: 8}, {tp: 1, dp: 16}, {tp: 1, dp: 1}]
    concurrency: [4, 32]
"""


@pytest.fixture
def spec_file(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY)
    return p


def _rows(out):
    return read_rows(out).drop([c for c in TIMING_COLUMNS if c in read_rows(out).columns])


def test_grid_expands_plans_loads_and_keeps_one_infeasible_point(spec_file):
    points = expand(load_experiment(spec_file))
    # 2 models x (2 fitting plans x 2 loads + 1 infeasible DP1 point)
    assert len(points) == 2 * (2 * 2 + 1)
    assert len({p.point_id for p in points}) == len(points)
    assert {p.model_label for p in points} == {"kimi-k2-1t-latentmoe", "k2-epm"}
    assert take(points, 3) == [points[0], points[3], points[6]]


def test_all_plans_search_respects_caps():
    from latentmoe_sim.schema import validate
    from latentmoe_sim.schema.experiment import ExperimentSpec
    import yaml

    data = yaml.safe_load(TINY)
    data["traffic"][0]["plans"] = "all"
    data["traffic"][0]["search"] = {"tp": [1, 2, 4, 8, 16], "dp": [1, 2, 4, 8, 16]}
    data["max_gpus_per_instance"] = 8
    points = expand(validate(ExperimentSpec, data, "t"))
    assert points and all(p.tp * p.dp <= 8 and p.tp <= 8 for p in points)
    assert all(p.ep == p.tp * p.dp for p in points)  # search.ep: full


@pytest.mark.parametrize("edit,needle", [
    ("gpu_budget: 16", "gpu_budget: 0"),
    ("    concurrency: [4, 32]", "concurrency"),
    ("precision: fp4", "precision"),
    ("seed: 3", "unknown field"),
])
def test_bad_spec_is_one_line_exit_2(tmp_path, capsys, edit, needle):
    bad = {"gpu_budget: 16": TINY.replace("gpu_budget: 16", "gpu_budget: 0"),
           "    concurrency: [4, 32]": TINY.replace("    concurrency: [4, 32]", "    concurrency: [4, 32]\n    rate: [1.0]"),
           "precision: fp4": TINY.replace("precision: fp4", "precision: fp3"),
           "seed: 3": TINY.replace("seed: 3", "seed: 3\nseeds: 4")}[edit]
    p = tmp_path / "bad.yaml"
    p.write_text(bad)
    rc = main(["sweep", str(p), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "bad.yaml" in err and "Traceback" not in err
    assert needle.split(":")[0] in err


def test_serial_process_and_ray_give_identical_rows(spec_file, tmp_path):
    spec = load_experiment(spec_file)
    points = take(expand(spec), 7)  # both models, an infeasible plan among them
    frames = {}
    for ex in ("serial", "process", "ray"):
        out = tmp_path / ex
        res = run_sweep(points, Store(out, spec.model_dump_json(), spec.name), executor=ex, workers=2, batch_size=3,
                        progress=False)
        assert res["ran"] == len(points)
        frames[ex] = _rows(out)
    assert frames["serial"].height == len(points)
    assert frames["serial"].equals(frames["process"]) and frames["serial"].equals(frames["ray"])
    st = frames["serial"]["status"].to_list()
    assert st.count("infeasible") >= 1 and st.count("ok") >= 4
    # the embedded Ray left nothing behind
    assert not (Path.home() / ".ray" / "auth_token").exists() or os.environ.get("LMSIM_KEEP_RAY_TOKEN")
    from latentmoe_sim.sweep import executor

    assert executor.last_ray_temp_dir and not Path(executor.last_ray_temp_dir).exists()


def test_other_specs_folder_is_refused(spec_file, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["sweep", str(spec_file), "--out", str(out), "--executor", "serial", "--max-points", "2"]) == 0
    other = tmp_path / "other.yaml"
    other.write_text(TINY.replace("seed: 3", "seed: 4"))
    capsys.readouterr()
    assert main(["sweep", str(other), "--out", str(out), "--executor", "serial"]) == 2
    err = capsys.readouterr().err
    assert "another spec" in err and err.count("\n") == 1


def test_resume_after_kill_9_loses_and_repeats_nothing(spec_file, tmp_path):
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "latentmoe_sim.cli", "sweep", str(spec_file), "--out", str(out), "--executor",
           "serial", "--batch-size", "1", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "shards").glob("part-*.parquet"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = len(list((out / "shards").glob("part-*.parquet")))
    assert 3 <= first < 10
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    summary = json.loads(res.stdout)
    assert summary["already_done"] == first and summary["ran"] == 10 - first
    rows = pl.concat([pl.read_parquet(f) for f in (out / "shards").glob("part-*.parquet")], how="diagonal_relaxed")
    assert rows.height == 10 and rows["point_id"].n_unique() == 10


def test_dead_worker_is_retried_and_the_sweep_goes_on(spec_file, tmp_path, monkeypatch):
    monkeypatch.setenv("LMSIM_TEST_CRASH_ONCE", str(tmp_path / "crashed"))
    spec = load_experiment(spec_file)
    points = take(expand(spec), 4)
    out = tmp_path / "o"
    run_sweep(points, Store(out, spec.model_dump_json(), spec.name), executor="process", workers=2, batch_size=2,
              progress=False)
    assert (tmp_path / "crashed").exists()  # a worker did die
    rows = read_rows(out)
    assert rows.height == len(points) and "error" not in rows["status"].to_list()


def _frame(points):
    return pl.DataFrame([{"traffic": "t", "model": m, "tokens_per_s_per_user_p50": x, "output_tokens_per_s_per_gpu": y}
                         for m, x, y in points])


def test_pareto_keeps_exactly_the_non_dominated_points():
    df = _frame([("a", 10, 100), ("a", 20, 50), ("a", 15, 40), ("a", 5, 90), ("a", 30, 10), ("b", 1, 1)])
    front = pareto(df)
    assert front.filter(pl.col("model") == "a")["tokens_per_s_per_user_p50"].to_list() == [10, 20, 30]


def test_compare_interpolates_in_log_space():
    # baseline y = 1000 / x (a line in log-log); target = 2x baseline at low x, 3x at high x, linearly in log x
    base = [("B", x, 1000 / x) for x in (10, 100)]
    targ = [("T", 10, 2000 / 10), ("T", 100, 3000 / 100), ("T", 200, 5.0)]
    r = compare(pareto(_frame(base + targ)), "B", "T", "t")
    assert r["overlap_tokens_per_s_per_user"] == pytest.approx([10, 100])
    assert r["ratio_min"] == pytest.approx(2.0) and r["ratio_max"] == pytest.approx(3.0)
    assert r["at_min_tokens_per_s_per_user"] == pytest.approx(10) and r["at_max_tokens_per_s_per_user"] == pytest.approx(100)
    # ratio at the log-midpoint x = sqrt(1000) is the geometric mean of 2 and 3
    assert r["ratio_median"] == pytest.approx(6 ** 0.5, rel=1e-3)
    assert 2.0 < r["ratio_p10"] < r["ratio_median"] < r["ratio_p90"] < 3.0


def test_frontier_compare_plot_commands(spec_file, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["sweep", str(spec_file), "--out", str(out), "--executor", "serial"]) == 0
    capsys.readouterr()
    assert main(["frontier", str(out), "--json"]) == 0
    fr = json.loads(capsys.readouterr().out)
    assert fr["points"] == 10 and fr["ok"] == 8 and fr["frontier"]
    assert main(["compare", str(out), "--baseline", "k2-epm", "--target", "kimi-k2-1t-latentmoe", "--json"]) == 0
    cmp_ = json.loads(capsys.readouterr().out)
    assert {"ratio_min", "ratio_median", "ratio_max", "curve"} <= set(cmp_)
    assert cmp_["ratio_min"] is None or cmp_["ratio_min"] <= cmp_["ratio_median"] <= cmp_["ratio_max"]
    assert main(["plot", str(out), "--no-png"]) == 0
    html = (out / "frontier.html").read_text()
    assert "plotly" in html and "kimi-k2-1t-latentmoe" in html
    # the figure says what it leaves out (2 of the 10 points are not ok), and the table is what it plotted
    assert "8 of 10 points plotted; not plotted: 2 " in html
    import polars as pl

    table = pl.read_parquet(out / "frontier.parquet")
    csv = pl.read_csv(out / "frontier.csv", schema_overrides={"point_id": pl.String})
    assert csv["point_id"].to_list() == table["point_id"].to_list() and csv.columns == table.columns
    assert set(table["point_id"]) <= set(_rows(out)["point_id"]) and (table["status"] == "ok").all()
    assert table.height == len(fr["frontier"])
    assert (out / "frontier_ratios.csv").exists()
    assert main(["compare", str(out), "--baseline", "nope", "--target", "k2-epm"]) == 2

"""CLI conventions (docs/CLI.md): --json and an example on every command, the version in every output,
bounds stated in --help, did-you-mean, exit codes 2 and 3, outputs checked before any work, strict JSON."""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time

import pytest
from _fuzz import run_cli

from latentmoe_sim import __version__
from latentmoe_sim.cli import build_parser
from latentmoe_sim.commands._fmt import dumps
from latentmoe_sim.schema.bounds import Count, Real


def _leaves(parser: argparse.ArgumentParser):
    """Every runnable (sub)command parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
        return
    for sub in subs[0].choices.values():
        yield from _leaves(sub)


LEAVES = list(_leaves(build_parser()))


@pytest.mark.parametrize("parser", LEAVES, ids=[p.prog for p in LEAVES])
def test_every_command_has_json_and_an_example(parser):
    assert any("--json" in a.option_strings for a in parser._actions), parser.prog
    assert parser.epilog and "lmsim " in parser.epilog and parser.prog in parser.epilog, parser.prog


@pytest.mark.parametrize("parser", LEAVES, ids=[p.prog for p in LEAVES])
def test_every_numeric_flag_states_its_bounds_in_help(parser):
    for action in parser._actions:
        if action.type in (int, float) and not action.choices:  # a choices list is its own bound
            pytest.fail(f"{parser.prog} {action.option_strings}: unbounded {action.type.__name__} flag; use schema.bounds")
        if isinstance(action.type, (Count, Real)):
            assert action.type.text in (action.help or ""), f"{parser.prog} {action.option_strings}"


def test_bare_lmsim_lists_the_commands_and_version_flag():
    rc, out, err, _ = run_cli([])
    assert rc == 0 and err == ""
    for command in ("models", "hw", "cost", "memory", "simulate", "epm"):
        assert command in out
    assert "exit status" in out
    rc, out, _, _ = run_cli(["--version"])
    assert rc == 0 and out.strip() == f"lmsim {__version__}"


@pytest.mark.parametrize("argv", [
    ["models", "list", "--json"], ["models", "show", "kimi-k2-1t", "--json"], ["hw", "list", "--json"],
    ["hw", "show", "h100_sxm", "--json"], ["hw", "validate", "hwprofiles/h200_sxm.yaml", "--json"],
    ["cost", "--dp", "8", "--decode-seqs", "8", "--kv-len", "256", "--json"], ["epm", "fit", "--json"],
])
def test_json_output_carries_the_version(argv):
    rc, out, _, _ = run_cli(argv)
    assert rc == 0
    assert json.loads(out)["lmsim_version"] == __version__


def test_text_output_ends_with_the_version():
    rc, out, _, _ = run_cli(["models", "list"])
    assert rc == 0 and out.rstrip().splitlines()[-1] == f"lmsim {__version__}"


def test_json_is_strict():
    text = dumps({"a": math.nan, "b": [math.inf, 1.5], "c": {"d": -math.inf}})
    assert json.loads(text) == {"lmsim_version": __version__, "a": None, "b": [None, 1.5], "c": {"d": None}}
    assert "NaN" not in text and "Infinity" not in text


@pytest.mark.parametrize("argv, guess", [
    (["models", "show", "kimi-k2"], "did you mean 'kimi-k2-1t'"),
    (["cost", "--hw", "h200", "--decode-seqs", "1"], "did you mean"),
    (["simulate", "--workload", "decode-heavyy", "--num-requests", "10"], "did you mean 'decode-heavy'"),
])
def test_did_you_mean(argv, guess):
    rc, _, err, _ = run_cli(argv)
    assert rc == 2 and guess in err and err.count("\n") == 1


@pytest.mark.parametrize("flag, value", [("--tp", "0"), ("--dp", "0"), ("--pp", "0"), ("--prefill-tp", "0"),
                                         ("--expert-imbalance", "nan"), ("--instances", "100000000"),
                                         ("--num-requests", "100000000"), ("--burstiness", "1e308"),
                                         ("--burstiness", "1e-320"), ("--input-len", "99999999999999999999"),
                                         ("--output-len", "9223372036854775807")])
def test_issue_flags_refused_with_the_range(flag, value):
    rc, out, err, _ = run_cli(["simulate", "--json", flag, value])
    assert rc == 2 and out == "" and err.count("\n") == 1 and err.startswith("lmsim: error:")
    assert "allowed" in err or "must be" in err, err


def test_outputs_checked_before_any_work(tmp_path):
    t0 = time.perf_counter()
    rc, _, err, _ = run_cli(["simulate", "--records", str(tmp_path / "missing" / "r.csv")])
    assert rc == 2 and "folder" in err and "does not exist" in err
    rc, _, err, _ = run_cli(["simulate", "--records", ""])
    assert rc == 2 and "empty path" in err
    rc, _, err, _ = run_cli(["simulate", "--records", str(tmp_path / "r.txt")])
    assert rc == 2 and ".parquet or .csv" in err
    assert time.perf_counter() - t0 < 5  # refused before any simulation
    rc, _, err, _ = run_cli(["models", "import", str(tmp_path / "none.json"), "--write", str(tmp_path / "no" / "m.yaml")])
    assert rc == 2 and "--write" in err  # the output is checked before the config is even read


def test_does_not_fit_is_exit_3_with_one_line():
    for argv in (["memory", "--model", "kimi-k2-1t", "--hw", "h100_sxm"], ["memory", "--model", "kimi-k2-1t", "--json"]):
        rc, out, err, _ = run_cli(argv)
        assert rc == 3 and err.count("\n") == 1 and "does not fit" in err
        if "--json" in argv:
            assert json.loads(out)["fits"] is False  # the report is still the answer
    rc, out, err, _ = run_cli(["memory", "--model", "kimi-k2-1t", "--dp", "16"])
    assert rc == 0 and err == ""


def test_simulate_text_header_names_everything(tmp_path):
    rc, out, err, _ = run_cli(["simulate", "--model", "deepseek-v3", "--hw", "h200_sxm", "--dp", "8", "--precision", "fp8",
                               "--num-requests", "40", "--input-len", "256", "--output-len", "16", "--concurrency", "8",
                               "--seed", "7", "--sla-ttft-s", "2", "--sla-tpot-s", "0.1"])
    assert rc == 0, err
    head = out.splitlines()[:4]
    assert "deepseek-v3" in head[0] and "h200_sxm" in head[0] and "precision" in head[0] and "FP8" in head[0]
    assert "DP8" in head[1]
    assert "decode-heavy" in head[2] and "ISL 256" in head[2] and "OSL 16" in head[2] and "seed 7" in head[2]
    assert "40 simulated" in head[3]
    assert any("goodput" in line for line in out.splitlines())


def test_trace_runs_are_not_reported_as_a_preset(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n" + "".join(f"{i * 0.1},128,8\n" for i in range(30)))
    rc, out, err, _ = run_cli(["simulate", "--model", "deepseek-v3", "--dp", "8", "--trace", str(trace), "--num-requests", "30", "--json"])
    assert rc == 0, err
    assert json.loads(out)["traffic"] == "trace t.csv"


# ------------------------------------------------------------------------------------------- subprocess smoke

LMSIM = shutil.which("lmsim")


@pytest.mark.skipif(LMSIM is None, reason="the lmsim console script is not installed")
def test_subprocess_bare_version_and_bad_flag():
    done = subprocess.run([LMSIM], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "simulate" in done.stdout
    done = subprocess.run([LMSIM, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"lmsim {__version__}"
    done = subprocess.run([LMSIM, "cost", "--tp", "0", "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_subprocess_module_entry_and_special_file():
    done = subprocess.run([sys.executable, "-m", "latentmoe_sim.cli", "models", "show", "/dev/zero.yaml"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_output_folders_checked_before_work(tmp_path):
    from latentmoe_sim.errors import InputError
    from latentmoe_sim.schema.outputs import check_output_dir

    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert check_output_dir("--out", tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"  # mkdir -p is fine
    assert not (tmp_path / "new").exists()  # checking creates nothing
    for bad, needle in ((a_file, "not a folder"), ("", "empty path"), (a_file / "sub", "is not a folder")):
        with pytest.raises(InputError, match=needle):
            check_output_dir("--out", bad)
    rc, out, err, _ = run_cli(["sweep", "experiments/quickstart.yaml", "--out", str(a_file), "--json"])
    assert rc == 2 and out == "" and "--out" in err and err.count("\n") == 1


def test_trace_longer_than_a_year_is_refused(tmp_path):
    # an arrival at 1e300 s made every rate ~1e-300 and every latency 0 (the clock lost the step's seconds)
    trace = tmp_path / "far.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,64,4\n1e300,64,4\n")
    rc, out, err, _ = run_cli(["simulate", "--model", "deepseek-v3", "--dp", "8", "--trace", str(trace), "--json"])
    assert rc == 2 and out == "" and "far.csv:3" in err and "one year" in err


def test_warnings_only_after_success():
    # FP4 on an H200 warns; when the plan then does not fit, the error must be the only stderr line
    rc, out, err, _ = run_cli(["simulate", "--precision", "fp4", "--num-requests", "5", "--json"])
    assert rc == 3 and err.count("\n") == 1 and err.startswith("lmsim: error:") and "does not fit" in err
    rc, out, err, _ = run_cli(["cost", "--precision", "fp4", "--tp", "0", "--json"])
    assert rc == 2 and err.count("\n") == 1
    rc, out, err, _ = run_cli(["cost", "--model", "deepseek-v3", "--dp", "8", "--precision", "fp4", "--decode-seqs", "8",
                               "--kv-len", "64", "--json"])
    assert rc == 0 and "FP4" in err and json.loads(out)["step_time_s"] > 0  # the warning still shows on success


def test_fp32_weights_are_bad_input_not_a_crash():
    # fp32 is a storage dtype (KV, state) but not a GEMM dtype; it was a KeyError (exit 70) in the cost model
    rc, out, err, _ = run_cli(["cost", "--weights-dtype", "fp32", "--decode-seqs", "8", "--json"])
    assert rc == 2 and out == "" and "not a GEMM dtype" in err and err.count("\n") == 1

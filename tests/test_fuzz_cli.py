"""Fuzz every command's flags in-process (``latentmoe_sim.cli.main(argv)``) under the issue's contract
(tests/_fuzz.py): exit 0 with strict, finite JSON, or exit 2/3 with exactly one stderr line; never a
traceback, an internal error (exit 70) or a run over 10 s.

Two kinds of input: one numeric flag of a command set to a hostile string (NaN, 1e308, 99999999999999999999,
0, -1, a 5,001-digit number, text), and random sequences of flags and values as a careless user types them.
``simulate`` runs on a small workload so that the values that are valid still finish quickly.
"""

from __future__ import annotations

from _fuzz import check_contract, fuzz_settings, run_cli, wild_number_text
from hypothesis import assume, given
from hypothesis import strategies as st

#: command prefix -> the numeric flags it takes (and a base command line that is valid on its own).
CHEAP = {
    ("cost", "--decode-seqs", "8", "--kv-len", "512", "--dp", "8", "--json"): (
        "--tp", "--dp", "--ep", "--pp", "--redundant-experts", "--prefill-tokens", "--prefill-offset", "--decode-seqs",
        "--kv-len", "--expert-imbalance"),
    ("memory", "--dp", "8", "--json"): ("--tp", "--dp", "--ep", "--pp", "--max-batch-tokens", "--max-seqs",
                                        "--expert-imbalance"),
    ("epm", "multiplier", "--baseline-score", "60", "--treated-score", "61", "--json"): (
        "--baseline-score", "--treated-score", "--size", "--bootstrap", "--seed", "--level"),
    ("epm", "multiplier", "--epm", "1.35", "--json"): ("--epm", "--size", "--level"),
    ("epm", "variant", "kimi-k2-1t", "--epm", "1.35", "--json"): ("--epm", "--align", "--nominal"),
    ("epm", "variant", "kimi-k2-1t", "--epm", "1.35", "--scale", "width", "--json"): ("--epm", "--align"),
    ("epm", "fit", "--json"): ("--bootstrap", "--seed", "--level"),
}

_SIM_BASE = ("simulate", "--model", "deepseek-v3", "--hw", "h200_sxm", "--dp", "8", "--num-requests", "24",
             "--input-len", "128", "--output-len", "8", "--json")
SIMULATE_FLAGS = ("--tp", "--dp", "--ep", "--pp", "--instances", "--concurrency", "--rate", "--burstiness", "--ramp-s",
                  "--seed", "--num-requests", "--ci-target", "--max-requests", "--max-batch-tokens", "--max-seqs",
                  "--block-size", "--warmup-fraction", "--cooldown-fraction", "--sla-ttft-s", "--sla-tpot-s",
                  "--input-len", "--output-len", "--expert-imbalance", "--mtp", "--redundant-experts")


@fuzz_settings(160)
@given(data=st.data(), base=st.sampled_from(sorted(CHEAP)))
def test_fuzz_numeric_flags_cheap_commands(data, base):
    flags = data.draw(st.lists(st.sampled_from(CHEAP[base]), min_size=1, max_size=2, unique=True))
    argv = list(base)
    for flag in flags:
        argv += [flag, data.draw(wild_number_text())]
    check_contract(argv, *run_cli(argv))


@fuzz_settings(30)
@given(flag=st.sampled_from(SIMULATE_FLAGS), value=st.one_of(
    st.sampled_from(["0", "-1", "nan", "inf", "1e308", "1e-320", "99999999999999999999", "9223372036854775807",
                     "1e6", "2.5", "abc", "", "1" * 5001, "0.95"]),
    st.integers(min_value=-3, max_value=9).map(str)))
def test_fuzz_simulate_flags(flag, value):
    argv = list(_SIM_BASE)
    if flag == "--rate":
        argv += ["--rate", value]
    else:
        argv += ["--concurrency", "8", flag, value]
    check_contract(argv, *run_cli(argv))


_WORDS = st.sampled_from([
    "models", "list", "show", "import", "hw", "validate", "cost", "memory", "epm", "fit", "multiplier", "variant",
    "--model", "--hw", "--json", "--tp", "--dp", "--ep", "--pp", "--precision", "--weights-dtype", "--decode-seqs",
    "--kv-len", "--epm", "--bootstrap", "--unit", "--scale", "--of", "--help", "--version", "-h", "--nope",
    "kimi-k2", "kimi-k2-1t", "h200", "h200_sxm", "gb200_nvl72", "fp4", "fp5", "AE", "M,E", "width", "depth",
    "8", "0", "-1", "nan", "1e308", "1T", "x.yaml", "/dev/zero", "/proc/self/status", "/", "config.json", "",
    "frontier", "plot", "--write", "--family", "a" * 5000, "a" * 5000 + ".yaml", "a" * 300 + "/x.json",
])


@fuzz_settings(120)
@given(argv=st.lists(_WORDS, min_size=0, max_size=8))
def test_fuzz_argv_sequences(argv):
    # `lmsim validate` alone simulates every shipped measurement (a minute by design); `hw validate` stays in.
    assume(not argv or argv[0] != "validate")
    rc, out, err, seconds = run_cli(argv)
    if rc == 0 and "--json" in argv and ("--help" in argv or "-h" in argv or "--version" in argv or not out.strip().startswith("{")):
        argv = [a for a in argv if a != "--json"]  # --help/--version print text even when --json is also given
    check_contract(argv, rc, out, err, seconds)


#: Valid-looking values per simulate flag: combinations of them reach deep (plans, precisions, modes, MTP).
_COMBO = {"--tp": ["1", "2", "8", "3"], "--dp": ["1", "8", "16", "7"], "--ep": ["1", "8", "16", "7"], "--pp": ["1", "2", "61"],
          "--mode": ["agg", "disagg", "decode-only", "prefill-only"], "--precision": ["bf16", "fp8", "fp4"],
          "--hw": ["h200_sxm", "b200", "gb200_nvl72", "mi355x", "h100_sxm"],
          "--model": ["deepseek-v3", "kimi-k2-1t", "qwen3-235b-a22b", "nemotron-3-super"],
          "--max-seqs": ["1", "4"], "--max-batch-tokens": ["1", "16", "1048576"], "--block-size": ["1", "4096"],
          "--input-len": ["1", "uniform:1:200", "lognormal:100:2"], "--output-len": ["1", "2", "lognormal:10:1"],
          "--mtp": ["0", "1", "16"], "--mtp-acceptance": ["0.9", "len:2", "1", "0"], "--redundant-experts": ["8", "7"],
          "--expert-imbalance": ["1.5", "100"], "--costs": ["auto", "measured"], "--warmup-fraction": ["0", "0.5"],
          "--sla-ttft-s": ["0.001", "10"], "--prefill-dp": ["1", "8"], "--decode-dp": ["8", "16"], "--rate": ["0.001", "1000000"],
          "--burstiness": ["0.01", "100"]}


@fuzz_settings(40)
@given(picks=st.lists(st.sampled_from(sorted(_COMBO)), min_size=1, max_size=4, unique=True), data=st.data())
def test_fuzz_simulate_flag_combinations(picks, data):
    argv = ["simulate", "--num-requests", "12", "--json", "--input-len", "128", "--output-len", "8"]
    for flag in picks:
        argv += [flag, data.draw(st.sampled_from(_COMBO[flag]))]
    if "--rate" not in picks:
        argv += ["--concurrency", "8"]
    check_contract(argv, *run_cli(argv))


_COST_COMBO = {"--tp": ["1", "2", "8", "3"], "--dp": ["1", "8", "16", "7"], "--ep": ["1", "8", "7"], "--pp": ["1", "2", "61"],
               "--precision": ["bf16", "fp8", "fp4"], "--hw": ["h200_sxm", "gb200_nvl72", "mi355x", "h800"],
               "--model": ["deepseek-v3", "kimi-k2-1t", "nemotron-3-super", "hybrid-73bt-8ba", "95bt-8ba-latentmoe"],
               "--mtp": ["1", "16"], "--mtp-acceptance": ["len:2", "0", "0.5,0.5"], "--redundant-experts": ["8", "65536"],
               "--costs": ["auto", "measured"], "--weights-dtype": ["int4", "fp32", "fp4"], "--kv-cache-dtype": ["fp8", "fp4"],
               "--activations-dtype": ["fp4", "int8", "fp32"], "--prefill-tokens": ["1", "16777216"],
               "--kv-len": ["0", "16777216"], "--decode-seqs": ["1", "1048576"]}


@fuzz_settings(60)
@given(picks=st.lists(st.sampled_from(sorted(_COST_COMBO)), min_size=1, max_size=5, unique=True), data=st.data(),
       command=st.sampled_from(["cost", "memory"]))
def test_fuzz_cost_memory_flag_combinations(picks, data, command):
    argv = [command, "--json"]
    for flag in picks:
        if command == "memory" and flag in ("--prefill-tokens", "--kv-len", "--decode-seqs", "--mtp", "--mtp-acceptance", "--costs"):
            continue
        argv += [flag, data.draw(st.sampled_from(_COST_COMBO[flag]))]
    if command == "cost" and "--decode-seqs" not in argv:
        argv += ["--decode-seqs", "8"]
    check_contract(argv, *run_cli(argv))

"""Fuzz the files a user writes: hardware profiles, model entries, HF config.json, traces, experiment specs,
raw YAML/JSON.

Each test starts from a real file (a bundled profile, a catalog entry, a real HF config), applies a few
random mutations (a field set to a hostile value of any type, a field deleted, an unknown key added, a
section replaced) and asserts the contract: the loader returns something whose numbers are finite and in
range, or raises one InputError line that names the file; nothing else, and quickly. The models that load
are also pushed through ``lmsim cost`` and ``lmsim memory`` (in-process) under the CLI contract.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from _fuzz import MAX_SECONDS, WILD_VALUE, check_contract, fuzz_settings, run_cli
from hypothesis import given
from hypothesis import strategies as st

from latentmoe_sim.errors import InputError
from latentmoe_sim.hwprofile_io import bundled_dir, validate_hw_file
from latentmoe_sim.models.catalog import CATALOG_DIR, load_model
from latentmoe_sim.models.hf_import import spec_from_hf_config
from latentmoe_sim.schema import load_file
from latentmoe_sim.workloads.traces import read_trace

_COUNTER = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _paths(doc, prefix=()):
    """Every key path in a nested dict (lists are leaves)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))


@st.composite
def mutated(draw, base: dict):
    """``base`` with 1-3 random mutations."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["set", "set", "set", "delete", "unknown", "leaf_value"]))
        if op == "set":
            parent[path[-1]] = draw(WILD_VALUE)
        elif op == "delete":
            del parent[path[-1]]
        elif op == "unknown":
            parent[draw(st.sampled_from(["extra", "Value", "hidden_size ", "top_k_"]))] = draw(WILD_VALUE)
        elif isinstance(parent[path[-1]], dict) and "value" in parent[path[-1]]:
            parent[path[-1]]["value"] = draw(WILD_VALUE)
    return doc


def _write(folder, doc, suffix: str) -> str:
    path = folder / f"f{next(_COUNTER)}{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(doc))  # NaN/Infinity literals included: the loader must refuse them
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _one_line(exc: InputError, label: str) -> None:
    msg = str(exc)
    assert "\n" not in msg and 0 < len(msg) < 2000, msg[:300]
    assert label in msg or msg.startswith(("unknown", "model ", "variant ")), msg[:300]


def _finite_positive(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values)


# ------------------------------------------------------------------------------------------------ hardware

_H200 = yaml.safe_load((bundled_dir() / "h200_sxm.yaml").read_text())


@fuzz_settings(120)
@given(doc=mutated(_H200))
def test_fuzz_hw_profile(folder, doc):
    path = _write(folder, doc, ".yaml")
    t0 = time.perf_counter()
    try:
        p = validate_hw_file(path)
    except InputError as exc:
        _one_line(exc, path)
    else:
        assert _finite_positive(p.hbm_capacity_bytes, p.hbm_bandwidth_bytes_per_s, p.compute_efficiency,
                                p.memory_efficiency, p.comm_efficiency, p.step_overhead_s, p.runtime_reserve_bytes,
                                *p.peak_flops.values())
        assert p.hbm_bandwidth_bytes_per_s >= 1e10 and p.peak_flops["bf16"] >= 1e12
        assert p.runtime_reserve_bytes < p.hbm_capacity_bytes
    assert time.perf_counter() - t0 < MAX_SECONDS


# ------------------------------------------------------------------------------------------------ models

_MODELS = {name: yaml.safe_load((CATALOG_DIR / f"{name}.yaml").read_text())
           for name in ("kimi-k2-1t", "qwen3-235b-a22b", "nemotron-3-super", "kimi-k2-1t-latentmoe")}


def _check_model_loads(path: str) -> None:
    t0 = time.perf_counter()
    try:
        spec = load_model(path)
    except InputError as exc:
        _one_line(exc, path.rsplit("/", 1)[-1])
        return
    assert spec.total_params > 0 and spec.active_params > 0 and spec.num_layers >= 1
    assert _finite_positive(spec.total_params, spec.active_params, spec.kv_bytes_per_token, spec.state_bytes_per_seq)
    assert time.perf_counter() - t0 < MAX_SECONDS
    for argv in (["cost", "--model", path, "--hw", "b200", "--decode-seqs", "4", "--kv-len", "64", "--json"],
                 ["memory", "--model", path, "--hw", "b200", "--json"]):
        check_contract(argv, *run_cli(argv))


@fuzz_settings(100)
@given(data=st.data(), name=st.sampled_from(sorted(_MODELS)))
def test_fuzz_model_entry(folder, data, name):
    _check_model_loads(_write(folder, data.draw(mutated(_MODELS[name])), ".yaml"))


# A DeepSeek-V3 / Qwen3-MoE / Nemotron-H config.json with the fields the importer reads (values as published:
# deepseek-ai/DeepSeek-V3, Qwen/Qwen3-235B-A22B and NVIDIA Nemotron-3 Super config.json; see tests/test_models.py).
_HF = {
    "deepseek": {"model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168,
                 "vocab_size": 129280, "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128,
                 "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
                 "v_head_dim": 128, "moe_intermediate_size": 2048, "n_routed_experts": 256, "num_experts_per_tok": 8,
                 "n_shared_experts": 1, "first_k_dense_replace": 3, "moe_layer_freq": 1, "intermediate_size": 18432,
                 "topk_method": "noaux_tc", "rope_scaling": {"type": "yarn", "factor": 40},
                 "quantization_config": {"quant_method": "fp8", "fmt": "e4m3"}},
    "qwen": {"model_type": "qwen3_moe", "hidden_size": 4096, "vocab_size": 151936, "num_hidden_layers": 94,
             "num_attention_heads": 64, "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128,
             "num_experts_per_tok": 8, "moe_intermediate_size": 1536, "decoder_sparse_step": 1, "mlp_only_layers": [],
             "intermediate_size": 12288, "tie_word_embeddings": False},
    "nemotron": {"model_type": "nemotron_h", "hidden_size": 4096, "vocab_size": 131072, "num_attention_heads": 32,
                 "num_key_value_heads": 2, "head_dim": 128, "hybrid_override_pattern": "MEMEM*EMEMEM*EME",
                 "n_routed_experts": 512, "num_experts_per_tok": 22, "moe_intermediate_size": 2688,
                 "n_shared_experts": 1, "moe_shared_expert_intermediate_size": 5376, "moe_latent_size": 1024,
                 "mlp_hidden_act": "relu2", "mamba_num_heads": 128, "mamba_head_dim": 64, "ssm_state_size": 128,
                 "n_groups": 8, "conv_kernel": 4},
}


@fuzz_settings(100)
@given(data=st.data(), family=st.sampled_from(sorted(_HF)))
def test_fuzz_hf_config(folder, data, family):
    path = _write(folder, data.draw(mutated(_HF[family])), ".json")
    t0 = time.perf_counter()
    try:
        spec = spec_from_hf_config(path)
    except InputError as exc:
        _one_line(exc, path)
    else:
        assert spec.total_params > 0 and _finite_positive(spec.total_params, spec.kv_bytes_per_token)
    assert time.perf_counter() - t0 < MAX_SECONDS


# ------------------------------------------------------------------------------------------------ traces

_CELL = st.one_of(
    st.integers(min_value=-5, max_value=5000).map(str),
    st.sampled_from(["0", "-1", "1.5", "12.0", "nan", "inf", "1e308", "9223372036854775807", "99999999999999999999",
                     "", "abc", "2024-05-10 00:00:00.0000000", "2024-05-10T00:00:01+02:00", "1e-320", '"3"']),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@fuzz_settings(80)
@given(rows=st.lists(st.tuples(_CELL, _CELL, _CELL), min_size=0, max_size=6),
       header=st.sampled_from(["arrival_s,input_tokens,output_tokens", "TIMESTAMP,ContextTokens,GeneratedTokens",
                               "arrival_s,input_tokens", "a,b,c", ""]),
       jsonl=st.booleans())
def test_fuzz_trace(folder, rows, header, jsonl):
    n = next(_COUNTER)
    if jsonl:
        keys = header.split(",") if header else ["x"]
        lines = [json.dumps(dict(zip(keys, r))) for r in rows]
        path = folder / f"t{n}.jsonl"
        path.write_text("\n".join(lines) + "\n")
    else:
        path = folder / f"t{n}.csv"
        path.write_text("\n".join([header] + [",".join(r) for r in rows]) + "\n")
    t0 = time.perf_counter()
    try:
        trace = read_trace(path)
    except InputError as exc:
        _one_line(exc, str(path))
    else:
        assert len(trace) >= 1 and np.isfinite(trace.arrival_s).all() and (trace.arrival_s >= 0).all()
        assert trace.duration_s <= 365 * 86400
        assert (trace.input_tokens >= 1).all() and (trace.output_tokens >= 1).all()
        assert (trace.input_tokens <= 2**24).all() and (trace.output_tokens <= 2**24).all()
    assert time.perf_counter() - t0 < MAX_SECONDS


# ------------------------------------------------------------------------------------------------ raw text


@fuzz_settings(150)
@given(text=st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.lists(st.sampled_from(["a: ", "&x ", "*x ", "[", "]", "{", "}", "- ", "\n", "  ", ": ", ",", "!!python/object:os.system ",
                              "<<: *x\n", "? ", "1e999", ".nan", "'", '"', "\t", "%YAML 1.1\n", "---\n", "!!binary "]),
             max_size=60).map("".join),
), suffix=st.sampled_from([".yaml", ".json"]))
def test_fuzz_raw_text(folder, text, suffix):
    path = folder / f"r{next(_COUNTER)}{suffix}"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if suffix else b"")
    t0 = time.perf_counter()
    try:
        load_file(path)
    except InputError as exc:
        _one_line(exc, str(path))
    assert time.perf_counter() - t0 < MAX_SECONDS


@fuzz_settings(20)
@given(depth=st.integers(2, 12), width=st.integers(2, 12))
def test_fuzz_alias_bombs(folder, depth, width):
    lines = ["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, depth)]
    path = folder / f"b{next(_COUNTER)}.yaml"
    path.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    try:
        load_file(path)
    except InputError as exc:
        _one_line(exc, str(path))
    assert time.perf_counter() - t0 < 2.0


# ------------------------------------------------------------------------------------------------ experiment specs

_QUICKSTART = yaml.safe_load((Path(__file__).parents[1] / "experiments" / "quickstart.yaml").read_text())


@fuzz_settings(60)
@given(doc=mutated(_QUICKSTART))
def test_fuzz_experiment_spec(folder, doc):
    """The sweep's experiment spec (sim/schema/experiment.py) under the same contract: loads and expands to
    operating points, or one InputError line naming the file."""
    from latentmoe_sim.schema.experiment import load_experiment
    from latentmoe_sim.sweep import expand

    path = _write(folder, doc, ".yaml")
    t0 = time.perf_counter()
    try:
        points = expand(load_experiment(path))
    except InputError as exc:
        _one_line(exc, path)
    else:
        assert len(points) >= 1
    assert time.perf_counter() - t0 < MAX_SECONDS

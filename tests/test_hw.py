"""Hardware profiles: bundled files, SI conversion, validation errors, `lmsim hw` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from latentmoe_sim.cli import main
from latentmoe_sim.errors import InputError
from latentmoe_sim.hw import HwProfile
from latentmoe_sim.hwprofile_io import FIELDS, bundled_dir, list_hw, load_hw, validate_hw_file

BUNDLED = ["b200", "b300", "gb200_nvl72", "gb300_nvl72", "h100_sxm", "h200_sxm", "h800", "mi300x", "mi325x", "mi355x"]


def _h100_doc() -> dict:
    return yaml.safe_load((bundled_dir() / "h100_sxm.yaml").read_text())


def _write(tmp_path: Path, doc: dict, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        validate_hw_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# ------------------------------------------------------------------------------------------ bundled files


def test_list_hw_has_the_bundled_profiles():
    assert list_hw() == BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_profile_loads_and_validates(name):
    p = load_hw(name)
    assert isinstance(p, HwProfile)
    assert p.name == name  # file stem == name
    assert validate_hw_file(bundled_dir() / f"{name}.yaml") == p
    # every present field carries a non-empty source
    for spec in FIELDS:
        if spec.required:
            assert p.sources[spec.attr].strip()
    assert 0 < p.compute_efficiency <= 1 and 0 < p.memory_efficiency <= 1 and 0 < p.comm_efficiency <= 1
    assert p.runtime_reserve_bytes < p.hbm_capacity_bytes
    assert p.tdp_w > 0


def test_paper_gb200_numbers_and_ridge_point():
    p = load_hw("gb200_nvl72")
    assert p.flops("fp4") == 10e15
    assert p.hbm_bandwidth_bytes_per_s == 8e12
    assert p.nvlink_bandwidth_bytes_per_s == 900e9
    assert p.nvlink_domain_size == 72
    assert p.flops("fp4") / p.hbm_bandwidth_bytes_per_s == pytest.approx(1250.0, rel=1e-12)


def test_h100_fp8_ridge_point_and_no_fp4():
    p = load_hw("h100_sxm")
    assert p.flops("fp8") / p.hbm_bandwidth_bytes_per_s == pytest.approx(591, abs=0.5)
    assert "fp4" not in p.peak_flops
    with pytest.raises(InputError, match="fp4"):
        p.flops("fp4")


def test_unit_conversions_to_si():
    p = load_hw("h100_sxm")
    assert p.hbm_bandwidth_bytes_per_s == pytest.approx(3.35e12)  # TB/s -> 1e12 B/s
    assert p.nvlink_bandwidth_bytes_per_s == pytest.approx(450e9)  # GB/s -> 1e9 B/s
    assert p.scaleout_bandwidth_bytes_per_s == pytest.approx(400e9 / 8)  # Gb/s -> bits / 8
    assert p.peak_flops["bf16"] == pytest.approx(989e12)  # TFLOP/s -> 1e12 FLOP/s
    assert p.hbm_capacity_bytes == 81559 * 2**20  # GiB -> 2^30 B (nvidia-smi MiB)
    assert p.runtime_reserve_bytes == 3.5 * 2**30 == 3758096384
    assert p.mem_op_latency_s == pytest.approx(3e-6)  # us -> 1e-6 s
    assert p.step_overhead_s == pytest.approx(500e-6)
    assert isinstance(p.nvlink_domain_size, int)


def test_load_returns_independent_copies():
    a = load_hw("h200_sxm")
    a.peak_flops["bf16"] = 1.0
    a.sources.clear()
    b = load_hw("h200_sxm")
    assert b.peak_flops["bf16"] == pytest.approx(989e12)
    assert b.sources


def test_unknown_name_lists_known_ones():
    with pytest.raises(InputError) as info:
        load_hw("h300")
    assert "h300" in str(info.value)
    for name in BUNDLED:
        assert name in str(info.value)


# ----------------------------------------------------------------------------------------- custom files


def test_custom_file_by_path(tmp_path):
    doc = _h100_doc()
    doc["name"] = "my_gpu"
    doc["memory"]["hbm_bandwidth_TBps"] = {"value": 4.0, "source": "my measurement"}
    path = _write(tmp_path, doc, "my_gpu.yml")
    p = load_hw(str(path))
    assert p.name == "my_gpu"
    assert p.hbm_bandwidth_bytes_per_s == pytest.approx(4e12)
    assert p.sources["hbm_bandwidth_bytes_per_s"] == "my measurement"
    # an edited file is read again, not served from the cache
    doc["memory"]["hbm_bandwidth_TBps"]["value"] = 5.0
    path.write_text(yaml.safe_dump(doc, sort_keys=False) + "\n# edited\n")
    assert load_hw(str(path)).hbm_bandwidth_bytes_per_s == pytest.approx(5e12)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_hw(str(tmp_path / "nope.yaml"))


# ------------------------------------------------------------------------------------------- bad files


def test_out_of_range_efficiency(tmp_path):
    doc = _h100_doc()
    doc["compute"]["compute_efficiency"]["value"] = 1.5
    path = _write(tmp_path, doc)
    assert _error(path) == f"{path}: field compute.compute_efficiency.value = 1.5: out of range, allowed [0.01, 1]"


@pytest.mark.parametrize("value", [0, -0.1])
def test_zero_or_negative_efficiency(tmp_path, value):
    doc = _h100_doc()
    doc["memory"]["memory_efficiency"]["value"] = value
    assert "memory.memory_efficiency" in _error(_write(tmp_path, doc))


def test_negative_bandwidth(tmp_path):
    doc = _h100_doc()
    doc["interconnect"]["scaleup_GBps_per_direction"]["value"] = -450
    msg = _error(_write(tmp_path, doc))
    assert "interconnect.scaleup_GBps_per_direction.value = -450.0: out of range, allowed [1, 100000] GB/s" in msg


def test_missing_field(tmp_path):
    doc = _h100_doc()
    del doc["memory"]["hbm_bandwidth_TBps"]
    msg = _error(_write(tmp_path, doc))
    assert "missing field memory.hbm_bandwidth_TBps" in msg and "[0.01, 1000] TB/s" in msg


def test_missing_section(tmp_path):
    doc = _h100_doc()
    del doc["power"]
    assert "missing field power, allowed a mapping of tdp_W" in _error(_write(tmp_path, doc))


def test_unknown_field(tmp_path):
    doc = _h100_doc()
    doc["memory"]["hbm_bandwith_TBps"] = {"value": 3.35, "source": "typo"}
    msg = _error(_write(tmp_path, doc))
    assert "unknown field memory.hbm_bandwith_TBps" in msg and "hbm_bandwidth_TBps" in msg


def test_unknown_dtype(tmp_path):
    doc = _h100_doc()
    doc["compute"]["peak_tflops_dense"]["fp6"] = {"value": 1, "source": "x"}
    assert "unknown field compute.peak_tflops_dense.fp6" in _error(_write(tmp_path, doc))


def test_wrong_type(tmp_path):
    doc = _h100_doc()
    doc["memory"]["hbm_capacity_GiB"]["value"] = "80GB"
    msg = _error(_write(tmp_path, doc))
    assert "memory.hbm_capacity_GiB" in msg and "must be a number" in msg


def test_bare_number_instead_of_value_source(tmp_path):
    doc = _h100_doc()
    doc["memory"]["hbm_bandwidth_TBps"] = 3.35
    msg = _error(_write(tmp_path, doc))
    assert "memory.hbm_bandwidth_TBps = 3.35: must be a mapping, allowed {value: <number>" in msg


def test_missing_source(tmp_path):
    doc = _h100_doc()
    del doc["power"]["tdp_W"]["source"]
    assert "missing field power.tdp_W.source" in _error(_write(tmp_path, doc))


@pytest.mark.parametrize("value", [8.5, 0, True])
def test_domain_size_must_be_positive_integer(tmp_path, value):
    doc = _h100_doc()
    doc["interconnect"]["scaleup_domain_size"]["value"] = value
    msg = _error(_write(tmp_path, doc))
    assert "interconnect.scaleup_domain_size" in msg and "integer in [1, 65536]" in msg


def test_negative_latency(tmp_path):
    doc = _h100_doc()
    doc["interconnect"]["scaleout_latency_us"]["value"] = -1
    assert "scaleout_latency_us.value = -1.0: out of range, allowed [0, 10000] us" in _error(_write(tmp_path, doc))


def test_bf16_peak_is_required_but_fp8_may_be_null(tmp_path):
    doc = _h100_doc()
    doc["compute"]["peak_tflops_dense"]["fp8"]["value"] = None
    assert "fp8" not in load_hw(str(_write(tmp_path, doc, "ok.yaml"))).peak_flops
    doc["compute"]["peak_tflops_dense"]["bf16"]["value"] = None
    assert "compute.peak_tflops_dense.bf16.value = null: must be a number" in _error(_write(tmp_path, doc))


def test_reserve_must_be_below_capacity(tmp_path):
    doc = _h100_doc()
    doc["memory"]["runtime_reserve_GiB"]["value"] = 100
    assert "memory.runtime_reserve_GiB.value = 100: out of range" in _error(_write(tmp_path, doc))


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text('name: bad\ndescription: "x"\ncompute:\n  compute_efficiency: {value: 0.7, source: "a"\n')
    msg = _error(path)
    assert msg.startswith(f"{path}:") and "malformed YAML" in msg
    line = int(msg[len(str(path)) + 1 :].split(":", 1)[0])
    assert line >= 4


def test_duplicate_key_is_an_error(tmp_path):
    path = tmp_path / "dup.yaml"
    text = (bundled_dir() / "h100_sxm.yaml").read_text().replace("name: h100_sxm\n", "name: a\nname: b\n")
    path.write_text(text)
    msg = _error(path)
    assert "duplicate key 'name'" in msg and "malformed YAML" in msg


@pytest.mark.parametrize("field, value, allowed", [
    ("hbm_capacity_GiB", 1e300, "[1, 65536] GiB"),  # 1e300 GiB is inf bytes: refused, not accepted as inf
    ("hbm_bandwidth_TBps", 1e-300, "[0.01, 1000] TB/s"),  # would make a 1e298 s step
    ("hbm_bandwidth_TBps", float("nan"), "[0.01, 1000] TB/s"),
])
def test_ranges_checked_in_si_after_conversion(tmp_path, field, value, allowed):
    doc = _h100_doc()
    doc["memory"][field]["value"] = value
    msg = _error(_write(tmp_path, doc))
    assert f"memory.{field}.value" in msg and allowed in msg


def test_top_level_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    assert "top level must be a mapping" in _error(path)


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_list(capsys):
    assert main(["hw", "list"]) == 0
    out = capsys.readouterr().out
    for name in BUNDLED:
        assert name in out
    assert "x72" in out


def test_cli_show_text_and_json(capsys):
    assert main(["hw", "show", "gb200_nvl72"]) == 0
    out = capsys.readouterr().out
    assert "interconnect.scaleup_GBps_per_direction" in out and "LatentMoE paper" in out and "1,250" in out
    assert main(["hw", "show", "h100_sxm", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "h100_sxm"
    bw = data["fields"]["memory.hbm_bandwidth_TBps"]
    assert bw["value"] == 3.35 and bw["unit"] == "TB/s" and bw["si_value"] == pytest.approx(3.35e12)
    assert bw["source"]
    assert data["derived"]["ridge_point_flop_per_byte"]["fp8"] == pytest.approx(590.7, abs=0.1)


def test_cli_validate_ok(capsys, tmp_path):
    path = _write(tmp_path, _h100_doc(), "good.yaml")
    assert main(["hw", "validate", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "ok: h100_sxm"


def test_cli_validate_bad_file_exits_2_with_one_line(capsys, tmp_path):
    doc = _h100_doc()
    doc["compute"]["compute_efficiency"]["value"] = 1.5
    path = _write(tmp_path, doc)
    assert main(["hw", "validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert lines == [f"lmsim: error: {path}: field compute.compute_efficiency.value = 1.5: out of range, allowed [0.01, 1]"]
    assert "Traceback" not in captured.err


def test_cli_show_unknown_name_exits_2(capsys):
    assert main(["hw", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "known: b200" in err and "Traceback" not in err


def test_cli_malformed_yaml_exits_2(capsys, tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text("name: [unclosed\n")
    assert main(["hw", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"{path}:" in err and "Traceback" not in err

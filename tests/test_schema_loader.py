"""The safe loader (sim/schema/loader.py) and the strict schema base (sim/schema/base.py) on hostile files.

Each case must end in one InputError line naming the file, quickly, and build nothing huge."""

from __future__ import annotations

import os
import time
from typing import Annotated, Literal

import pytest
from pydantic import Field

from latentmoe_sim.errors import InputError
from latentmoe_sim.schema import MAX_DEPTH, StrictModel, load_file, parse_json, parse_yaml, short, validate


def one_line_error(fn, *args, **kw) -> str:
    with pytest.raises(InputError) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400, msg
    return msg


def test_special_files_refused_without_reading(tmp_path):
    assert "not a regular file" in one_line_error(load_file, "/dev/zero")
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    assert "/dev/zero" in one_line_error(load_file, str(link))
    assert "refusing" in one_line_error(load_file, "/proc/self/status")
    assert "directory" in one_line_error(load_file, str(tmp_path))
    fifo = tmp_path / "f.yaml"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    assert "not a regular file" in one_line_error(load_file, str(fifo))  # no writer: open() must not block
    assert time.perf_counter() - t0 < 5
    assert "not found" in one_line_error(load_file, str(tmp_path / "missing.yaml"), what="model file")


def test_size_limit_before_parsing(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 5000)
    msg = one_line_error(load_file, str(big), max_bytes=1000)
    assert "1000-byte limit" in msg and str(big) in msg


def test_non_utf8_one_line(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_bytes(b"name: \xff\xfe bad\n")
    assert "not UTF-8 text (byte 6" in one_line_error(load_file, str(bad))
    bom = tmp_path / "bom.json"
    bom.write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert load_file(str(bom)) == {"a": 1}


def test_duplicate_and_non_string_keys_refused():
    assert "duplicate key 'hidden_size'" in one_line_error(parse_yaml, "hidden_size: 1\nhidden_size: 2\n", "m.yaml")
    assert "m.yaml:2" in one_line_error(parse_yaml, "a: {b: 1}\na: 3\n", "m.yaml")
    assert "duplicate key" in one_line_error(parse_json, '{"a": 1, "a": 2}', "c.json")
    assert "must be a string" in one_line_error(parse_yaml, "1: a\n", "m.yaml")
    assert "plain strings" in one_line_error(parse_yaml, "? [a, b]\n: 1\n", "m.yaml")
    # YAML merge keys still work (the catalog could use them)
    assert parse_yaml("base: &b {x: 1}\nderived: {<<: *b, y: 2}\n", "m.yaml")["derived"] == {"x": 1, "y": 2}


def test_exponent_floats_read_as_numbers():
    data = parse_yaml("a: 1e12\nb: 7.26e10\nc: -2.5E-3\nd: 12\ne: '1e3'\nf: 1_000\n", "m.yaml")
    assert data == {"a": 1e12, "b": 7.26e10, "c": -2.5e-3, "d": 12, "e": "1e3", "f": 1000}
    assert type(data["d"]) is int and type(data["a"]) is float


def test_alias_bomb_refused_quickly():
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    t0 = time.perf_counter()
    assert "alias bomb" in one_line_error(parse_yaml, "\n".join(lines), "bomb.yaml")
    assert time.perf_counter() - t0 < 2
    # a few honest aliases are fine
    assert parse_yaml("x: &x [1, 2]\ny: *x\n", "ok.yaml") == {"x": [1, 2], "y": [1, 2]}


@pytest.mark.parametrize("text, parse", [("[" * 100_000 + "]" * 100_000, parse_yaml), ("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 200)), parse_yaml),
                                         ("[" * 100_000 + "]" * 100_000, parse_json), ('{"a":' * 100_000 + "1" + "}" * 100_000, parse_json)])
def test_deep_nesting_refused_quickly(text, parse):
    t0 = time.perf_counter()
    assert f"deeper than {MAX_DEPTH}" in one_line_error(parse, text, "deep")
    assert time.perf_counter() - t0 < 2
    ok = "[" * 10 + "]" * 10
    assert parse(ok, "ok") == [[[[[[[[[[]]]]]]]]]]  # brackets inside strings do not count for JSON
    if parse is parse_json:
        assert parse_json('{"s": "' + "[" * 1000 + '"}', "ok") == {"s": "[" * 1000}


def test_huge_integers_and_non_finite_json():
    assert "malformed YAML" in one_line_error(parse_yaml, "n: " + "9" * 5001, "m.yaml")
    assert "malformed JSON" in one_line_error(parse_json, '{"n": ' + "9" * 5001 + "}", "c.json")
    assert "NaN is not valid JSON" in one_line_error(parse_json, '{"n": NaN}', "c.json")
    assert "Infinity" in one_line_error(parse_json, '{"n": -Infinity}', "c.json")
    assert "c.json:1: malformed JSON" in one_line_error(parse_json, '{"n": }', "c.json")


def test_short_never_formats_the_whole_value():
    assert short(10**5000) == "an integer of about 5001 digits"
    assert len(short("x" * 10**6)) <= 60
    assert short(list(range(10**6))) == "a list of 1000000 items"
    assert short(2.5) == "2.5" and short(True) == "true" and short(None) == "null"


class _Moe(StrictModel):
    top_k: Annotated[int, Field(ge=1, le=1024)]
    variant: Literal["acc", "eff"] = "acc"
    frac: Annotated[float, Field(gt=0, le=1)] = 1.0


class _Doc(StrictModel):
    name: str
    moe: _Moe | None = None
    runs: list[Annotated[int, Field(ge=1)]] = []


@pytest.mark.parametrize("data, expected", [
    ({"name": "m", "moe": {"top_k": 2.5}}, "m.yaml: field moe.top_k = 2.5: must be an integer, allowed integer in [1, 1024]"),
    ({"name": "m", "moe": {"top_k": "8"}}, "m.yaml: field moe.top_k = '8': must be an integer, allowed integer in [1, 1024]"),
    ({"name": "m", "moe": {"top_k": 0}}, "m.yaml: field moe.top_k = 0: out of range, allowed integer in [1, 1024]"),
    ({"name": "m", "moe": {"top_k": True}}, "m.yaml: field moe.top_k = true: must be an integer, allowed integer in [1, 1024]"),
    ({"name": "m", "moe": {"top_k": 1, "frac": float("nan")}}, "m.yaml: field moe.frac = nan: must be a finite number, allowed (0, 1]"),
    ({"name": "m", "moe": {"top_k": 1, "variant": "x"}}, "m.yaml: field moe.variant = 'x': must be one of 'acc' or 'eff'"),
    ({"name": "m", "moe": {"top_k": 1, "oops": 1}}, "m.yaml: unknown field moe.oops (allowed here: top_k, variant, frac)"),
    ({"moe": {"top_k": 1}}, "m.yaml: missing field name, allowed a string"),
    ({"name": "m", "runs": [1, 0]}, "m.yaml: field runs[1] = 0: out of range, allowed integer >= 1"),
    ([1, 2], "m.yaml: top level must be a mapping of fields, not a list of 2 items"),
    ({"name": "x" * 10**6, "moe": {"top_k": 10**5000}}, "m.yaml: field moe.top_k = an integer of about 5001 digits: out of range"),
])
def test_validation_error_is_one_line(data, expected):
    msg = one_line_error(validate, _Doc, data, "m.yaml")
    assert msg.startswith(expected), msg

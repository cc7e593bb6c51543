"""Bounds on command-line numbers (sim/schema/bounds.py): finite, integer where a count, in range, never coerced."""

from __future__ import annotations

import argparse

import pytest

from latentmoe_sim.errors import InputError
from latentmoe_sim.schema.bounds import Count, Real, check_count, check_real


@pytest.mark.parametrize("text", ["0", "-1", "2.5", "nan", "inf", "1e400", "abc", "", "99999999999999999999", "1" * 5001, "1025"])
def test_count_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"allowed integer in \[1, 1024\]"):
        Count(1, 1024)(text)


def test_count_accepts_exact_integers():
    c = Count(1, 10**6)
    assert c("8") == 8 and c(" 16 ") == 16 and c("1e5") == 100_000 and c("100_000") == 100_000 and c("1000000") == 10**6
    assert Count(0, 5)("0") == 0


@pytest.mark.parametrize("text", ["nan", "-inf", "1e308", "0", "x", "1" * 50])
def test_real_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"allowed \(0, 100\]"):
        Real(0, 100, lo_open=True)(text)


def test_real_and_checks():
    assert Real(1, 4)("1") == 1.0 and Real(1, 4)("4") == 4.0
    assert check_count("--x", 3.0, Count(1, 4)) == 3
    for bad in (True, 2.5, float("nan"), 5, "3"):
        with pytest.raises(InputError, match="^--x = "):
            check_count("--x", bad, Count(1, 4))
    for bad in (float("inf"), 10**5000, 0.5, None):
        with pytest.raises(InputError, match="^--y = "):
            check_real("--y", bad, Real(1, 4))

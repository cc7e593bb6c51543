"""Student's t quantiles in closed form, against tables and SciPy."""

from __future__ import annotations

import pytest

from latentmoe_sim.tdist import t_quantile


def test_textbook_values():
    # two-sided 95 % critical values (any t table): df 1: 12.706, df 9: 2.262, df 30: 2.042
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 9) == pytest.approx(2.2622, abs=1e-4)
    assert t_quantile(0.975, 30) == pytest.approx(2.0423, abs=1e-4)
    assert t_quantile(0.025, 9) == -t_quantile(0.975, 9)
    assert t_quantile(0.5, 4) == 0.0


def test_matches_scipy():
    student_t = pytest.importorskip("scipy.stats").t
    for nu in (1, 2, 3, 4, 5, 9, 10, 19, 29, 60):
        for p in (0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.05):
            assert t_quantile(p, nu) == pytest.approx(student_t.ppf(p, nu), rel=1e-10)


def test_bad_input():
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        t_quantile(0.9, 0)

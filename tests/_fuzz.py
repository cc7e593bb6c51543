"""Shared pieces of the fuzz suite (tests/test_fuzz_*.py): the in-process CLI runner, the contract every
run must keep, and strategies for hostile values.

The contract (issue 9): every invocation either exits 0 with strict JSON of finite numbers (``--json``), or
exits 2 (bad input) or 3 (well-formed but does not fit) with exactly one line on stderr and nothing on stdout
for ``--json``; never a traceback, never exit 70 (an internal error), never longer than ``MAX_SECONDS``.

Set ``LMSIM_FUZZ_SCALE=10`` to run ten times the examples (a deeper local hunt); CI runs the default.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from latentmoe_sim.cli import main

#: A run longer than this is a hang by the issue's definition.
MAX_SECONDS = 10.0
SCALE = max(1, int(os.environ.get("LMSIM_FUZZ_SCALE", "1")))


def fuzz_settings(examples: int):
    """Deterministic (derandomized) settings so CI sees the same examples every time; no per-example deadline
    (the MAX_SECONDS check below is the hang detector)."""
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


def run_cli(argv: list[str]) -> tuple[int, str, str, float]:
    """``lmsim argv`` in-process: (exit status, stdout, stderr, seconds)."""
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue(), time.perf_counter() - t0


def _strict_loads(text: str):
    def refuse(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _all_finite(obj) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_all_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_all_finite(v) for v in obj)
    return True


def check_contract(argv: list[str], rc: int, out: str, err: str, seconds: float) -> None:
    """Assert the issue's contract for one invocation (see the module docstring)."""
    where = f"lmsim {' '.join(argv)!s}"[:400]
    assert "Traceback" not in err and "Traceback" not in out, where
    assert seconds < MAX_SECONDS, f"{where}: {seconds:.1f} s"
    assert rc in (0, 2, 3), f"{where}: exit {rc}; stderr {err[:300]!r}"
    if rc == 0:
        if "--json" in argv:
            data = _strict_loads(out)
            assert _all_finite(data), where
            if isinstance(data, dict):  # a NaN printed as null would hide a nonsensical result: key figures must be numbers
                for key in KEY_FIGURES & set(data):
                    assert isinstance(data[key], (int, float)) and data[key] >= 0, f"{where}: {key} = {data[key]!r}"
        return
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmsim: error: "), f"{where}: stderr {err[:500]!r}"
    if "--json" in argv:
        assert rc == 3 or out == "", f"{where}: stdout not empty on error"


#: Figures that must be real non-negative numbers whenever a --json output has them (null would mean NaN).
KEY_FIGURES = {"step_time_s", "compiled_step_time_s", "tokens_per_s_per_gpu", "total_params", "active_params",
               "kv_bytes_per_token", "weight_bytes", "num_gpus", "completed_requests", "output_tokens_per_s_per_gpu",
               "epm", "target_params"}


#: Strings a careless or hostile user types where a number belongs.
WILD_TEXT = st.sampled_from([
    "0", "-0", "-1", "1", "2", "7", "1.5", "2.5", "-2.5", "nan", "NaN", "inf", "-inf", "Infinity", "1e308", "-1e308",
    "1e-320", "1e-300", "1e6", "1e9", "1e400", "99999999999999999999", "9223372036854775807", "-9223372036854775808",
    "0x10", "1_000", "1,000", "", " ", "abc", "8 ", "1e", "--", "½", "\x00", "1" * 5001, "٣",
])


def wild_number_text() -> st.SearchStrategy[str]:
    """A number-ish string: the named hostile ones, or any int/float rendered as text."""
    return st.one_of(
        WILD_TEXT,
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(max_size=8),
    )


#: Values for a field of a user file (YAML/JSON): every type, hostile numbers included.
WILD_VALUE = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**63 - 1, 2**64, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.5, 1.5, 1e-300, 1e300, float("nan"), float("inf")]),
    st.text(max_size=12),
    st.sampled_from(["8", "no", "yes", "true", "abc", "", "1e3", "fp4", "gqa", "mla", "AE"]),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
    st.dictionaries(st.sampled_from(["value", "source", "x"]), st.integers(min_value=-2, max_value=2), max_size=2),
)

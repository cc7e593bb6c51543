"""Bounds on every number a user types: argparse ``type=`` callables and plain checks, one place for all.

Each flag that takes a number uses :class:`Count` (an integer count or size) or :class:`Real` (a finite
real) with explicit bounds; the bound text goes into ``--help`` via ``.text``::

    TP = Count(1, 1024)
    p.add_argument("--tp", type=TP, metavar="N", help=f"tensor parallel ({TP.text})")

Both refuse NaN, infinities, overlong literals (``99999999999999999999``) and values outside the range with
one line (argparse prints ``lmsim simulate: error: argument --tp: 0 is out of range, allowed integer in
[1, 1024]`` and exits with 2). Zero or negative sizes are refused, never coerced to 1. :class:`Count`
accepts ``1e5`` and ``100_000`` for a count when the value is an exact integer.

For numbers that arrive elsewhere (a library call, a trace column) use :func:`check_count` /
:func:`check_real`, which raise :class:`~latentmoe_sim.errors.InputError` naming the source.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from ..errors import InputError

__all__ = ["Count", "Real", "check_count", "check_real", "PLAN_DEGREE", "INSTANCES", "RANKS", "REQUESTS", "CONCURRENCY",
           "RATE", "BURSTINESS", "TOKENS", "TOKENS_OR_ZERO", "BATCH_TOKENS", "SEQS", "SEQS_OR_ZERO", "BLOCK", "SEED",
           "WINDOW_FRACTION", "SLA_S", "CI_TARGET", "SECONDS", "IMBALANCE", "MTP", "REDUNDANT", "BOOTSTRAP", "LEVEL", "SCORE", "EPM",
           "ALIGN", "WORKERS", "POINTS", "GPUS"]

_MAX_LITERAL = 40  # characters; longer numbers are refused before int()/float() see them


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else f"{x:,}".replace(",", "_") if abs(x) >= 100_000 else str(x)


@dataclass(frozen=True)
class Count:
    """An integer in ``[lo, hi]`` (both inclusive): a count, a size, a length."""

    lo: int = 1
    hi: int = 1_000_000

    __name__ = "count"  # argparse names the type in some messages

    @property
    def text(self) -> str:
        """The allowed range for ``--help`` and errors, e.g. ``integer in [1, 1024]``."""
        return f"integer in [{_fmt(self.lo)}, {_fmt(self.hi)}]"

    def parse(self, text: str) -> int:
        """The integer ``text`` names; raises ValueError with a one-line reason."""
        raw = str(text).strip()
        if not raw or len(raw) > _MAX_LITERAL:
            raise ValueError(f"{_shorten(raw)!s} must be an integer, allowed {self.text}")
        try:
            value = int(raw, 10)
        except ValueError:
            try:
                as_float = float(raw)
            except ValueError:
                raise ValueError(f"{_shorten(raw)} must be an integer, allowed {self.text}") from None
            if not math.isfinite(as_float) or not as_float.is_integer():
                raise ValueError(f"{_shorten(raw)} must be an integer, allowed {self.text}") from None
            value = int(as_float)
        if not self.lo <= value <= self.hi:
            raise ValueError(f"{_shorten(raw)} is out of range, allowed {self.text}")
        return value

    def __call__(self, text: str) -> int:
        try:
            return self.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True)
class Real:
    """A finite real in the interval ``lo..hi`` (open or closed at each end)."""

    lo: float = 0.0
    hi: float = 1e6
    lo_open: bool = False
    hi_open: bool = False

    __name__ = "number"

    @property
    def text(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"{left}{_fmt(float(self.lo))}, {_fmt(float(self.hi))}{right}"

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def parse(self, text: str) -> float:
        raw = str(text).strip()
        if not raw or len(raw) > _MAX_LITERAL:
            raise ValueError(f"{_shorten(raw)} must be a number, allowed {self.text}")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{_shorten(raw)} must be a number, allowed {self.text}") from None
        if not math.isfinite(value):
            raise ValueError(f"{_shorten(raw)} must be a finite number, allowed {self.text}")
        if not self.contains(value):
            raise ValueError(f"{_shorten(raw)} is out of range, allowed {self.text}")
        return value

    def __call__(self, text: str) -> float:
        try:
            return self.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


def check_count(name: str, value, bound: Count) -> int:
    """``value`` as an int within ``bound``, else :class:`InputError` ``"<name> = <value> ..."``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        else:
            raise InputError(f"{name} = {_shorten(value)} must be an integer, allowed {bound.text}")
    if not bound.lo <= value <= bound.hi:
        raise InputError(f"{name} = {_shorten(value)} is out of range, allowed {bound.text}")
    return value


def check_real(name: str, value, bound: Real) -> float:
    """``value`` as a finite float within ``bound``, else :class:`InputError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} = {_shorten(value)} must be a number, allowed {bound.text}")
    if isinstance(value, int) and value.bit_length() > 1000:
        raise InputError(f"{name} = {_shorten(value)} is out of range, allowed {bound.text}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{name} = {value} must be a finite number, allowed {bound.text}")
    if not bound.contains(value):
        raise InputError(f"{name} = {value:g} is out of range, allowed {bound.text}")
    return value


def _shorten(value) -> str:
    from .loader import short

    return value[:20] + "..." if isinstance(value, str) and len(value) > 23 else (value if isinstance(value, str) else short(value))


# ---------------------------------------------------------------------------------------------- the bounds
# One place for the limits of every number a user can type; flags, experiment specs and library checks use
# these. Upper bounds keep one run within memory and minutes on a laptop; each says why it is where it is.

#: --tp/--dp/--ep/--pp: 1024 is 14x an NVL72 domain; plans beyond it are outside what the cost model was built for.
PLAN_DEGREE = Count(1, 1024)
#: GPUs of one instance (tp x dp x pp at most 1024^3 in principle; 2^20 covers every plan the flags allow in practice).
GPUS = Count(1, 1 << 20)
#: --instances, --prefill-instances, --decode-instances.
INSTANCES = Count(1, 1024)
#: attention-DP ranks the engine simulates in one pool (dp x instances): each is a scheduler in the engine.
RANKS = Count(1, 4096)
#: --num-requests, --max-requests: 3x the adaptive rule's default cap (64,000, sim/point.py).
REQUESTS = Count(1, 200_000)
#: --concurrency: clients of a closed loop (each holds one request in flight).
CONCURRENCY = Count(1, 100_000)
#: --rate, requests/s: 1e-3 (one every 17 minutes) to 1e6. The lower bound keeps 200,000 arrivals within
#: 2e8 s, where a double still resolves nanoseconds (a slower rate would blur microsecond step times).
RATE = Real(1e-3, 1e6)
#: --burstiness: the CV of gamma inter-arrival gaps; 0.01 is nearly periodic, 100 one burst.
BURSTINESS = Real(0.01, 100.0)
#: Tokens of one request (prompt or output): 2^24 = 16.8M, the longest context a model entry may declare.
TOKENS = Count(1, 1 << 24)
TOKENS_OR_ZERO = Count(0, 1 << 24)
#: --max-batch-tokens and friends: 2^20 tokens per step (128x the largest default, 8,192).
BATCH_TOKENS = Count(1, 1 << 20)
#: --max-seqs: running sequences per rank (512x vLLM's default 128).
SEQS = Count(1, 1 << 16)
SEQS_OR_ZERO = Count(0, 1 << 20)
#: --block-size: KV block, tokens (vLLM uses 16; 4096 is a whole long prompt per block).
BLOCK = Count(1, 4096)
#: --seed: any 63-bit integer (numpy's SeedSequence takes it as entropy).
SEED = Count(0, 2**63 - 1)
#: --warmup-fraction, --cooldown-fraction: each in [0, 0.9]; their sum must leave a window (checked by the command).
WINDOW_FRACTION = Real(0.0, 0.9)
#: --sla-ttft-s, --sla-tpot-s: a bound of more than a day measures nothing.
SLA_S = Real(0.0, 86400.0, lo_open=True)
#: --ci-target: relative CI half-width; below 0.1 % the adaptive rule would need millions of requests.
CI_TARGET = Real(0.001, 1.0)
#: --ramp-s, --think-time-s and other durations in seconds (a week).
SECONDS = Real(0.0, 604800.0)
#: --expert-imbalance: busiest expert slot / mean; 1 is balanced, 100 is one slot taking almost all tokens.
IMBALANCE = Real(1.0, 100.0)
#: --redundant-experts: EPLB's extra expert slots (DeepSeek-V3 serves 256 experts with 32 redundant ones).
REDUNDANT = Count(0, 65536)
#: --mtp: draft tokens per step (DeepSeek-V3 uses 1; published speculative setups use up to ~8).
MTP = Count(0, 16)
#: --workers of a process/Ray executor: a large node's core count.
WORKERS = Count(1, 256)
#: sweep --max-points, --batch-size: operating points (a 10^6-point sweep is days of CPU).
POINTS = Count(1, 1_000_000)
#: epm --bootstrap: draws (10,000 gives percentile intervals to ~0.5 %; 100,000 is plenty and takes seconds).
BOOTSTRAP = Count(0, 100_000)
#: epm --level: central interval level.
LEVEL = Real(0.5, 0.999)
#: epm scores (benchmark points, e.g. MMLU 0..100).
SCORE = Real(-1e6, 1e6)
#: epm --epm: the multiplier; the paper reports 1.35; 100x would need a model 100x the base.
EPM = Real(0.01, 100.0)
#: epm variant --align: the routed-expert width is a multiple of this.
ALIGN = Count(1, 65536)

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

__all__ = ["Count", "Real", "check_count", "check_real"]

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

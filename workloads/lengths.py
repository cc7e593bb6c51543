"""Request length distributions, in tokens (prompt = input, generation = output).

Each distribution is a frozen dataclass with

* ``sample(rng, n) -> np.ndarray`` of ``n`` int64 token counts, every one >= 1, and
* ``mean() -> float``, the analytic mean of what ``sample`` draws,

and ``str(dist)`` gives back the CLI spec that :func:`parse_length` reads:

==============================  =============================================================
``1024`` or ``fixed:1024``      :class:`Fixed`: every request has 1024 tokens
``uniform:512:2048``            :class:`Uniform`: integers 512..2048, both ends included
``lognormal:1024:0.5[:lo[:hi]]`` :class:`LogNormal`: median 1024, log-space sigma 0.5, clipped
``empirical:lens.csv[:column]`` :class:`Empirical`: resample the numbers in a CSV file
==============================  =============================================================
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentmoe_sim.errors import InputError

from ._util import MAX_TOKENS, check_float, check_int, csv_rows, existing_file, to_token_array

__all__ = ["LengthDist", "Fixed", "Uniform", "LogNormal", "Empirical", "parse_length", "as_length"]


class LengthDist(ABC):
    """A distribution of token counts (base class of :class:`Fixed`, :class:`Uniform`, ...)."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` token counts (int64, each >= 1) drawn with ``rng``."""

    @abstractmethod
    def mean(self) -> float:
        """The analytic mean token count."""


def _count(n: int) -> int:
    return check_int(n, "sample size n", minimum=0)


@dataclass(frozen=True)
class Fixed(LengthDist):
    """Every request has exactly ``n`` tokens."""

    n: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_int(self.n, "fixed length", maximum=MAX_TOKENS))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(_count(n), self.n, dtype=np.int64)

    def mean(self) -> float:
        return float(self.n)

    def __str__(self) -> str:
        return str(self.n)


@dataclass(frozen=True)
class Uniform(LengthDist):
    """Integers from ``lo`` to ``hi``, both included, equally likely."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        lo = check_int(self.lo, "uniform length lo", maximum=MAX_TOKENS)
        hi = check_int(self.hi, "uniform length hi", minimum=lo, maximum=MAX_TOKENS)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(self.lo, self.hi, size=_count(n), endpoint=True, dtype=np.int64)

    def mean(self) -> float:
        return (self.lo + self.hi) / 2

    def __str__(self) -> str:
        return f"uniform:{self.lo}:{self.hi}"


def _phi(z: float) -> float:
    """Standard normal CDF (``erfc`` keeps the tails accurate)."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@dataclass(frozen=True)
class LogNormal(LengthDist):
    """Log-normal token counts: ``exp(N(ln median, sigma))`` rounded to integers and clipped to ``[lo, hi]``.

    ``sigma`` is the standard deviation of ``ln(length)`` (0.5 gives a spread of roughly x0.6..x1.6 around
    the median for the middle two thirds); ``hi=None`` means no upper clip. :meth:`mean` is the exact
    mean of the clipped continuous distribution; rounding to whole tokens moves it by far less than one
    token unless the median is only a few tokens.
    """

    median: float
    sigma: float
    lo: int = 1
    hi: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "median", check_float(self.median, "lognormal length median", maximum=MAX_TOKENS))
        # sigma 5 spreads the middle two thirds of lengths over a factor e^10 = 22,000; beyond that the
        # distribution is all clipping.
        object.__setattr__(self, "sigma", check_float(self.sigma, "lognormal length sigma", inclusive=True, maximum=5.0))
        lo = check_int(self.lo, "lognormal length lo", maximum=MAX_TOKENS)
        object.__setattr__(self, "lo", lo)
        if self.hi is not None:
            object.__setattr__(self, "hi", check_int(self.hi, "lognormal length hi", minimum=lo, maximum=MAX_TOKENS))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raw = rng.lognormal(math.log(self.median), self.sigma, size=_count(n))
        return np.clip(np.rint(raw), self.lo, self.hi if self.hi is not None else MAX_TOKENS).astype(np.int64)

    def mean(self) -> float:
        # ``hi=None`` still clips at MAX_TOKENS in sample(); the mean follows the same clip.
        mu, s, lo = math.log(self.median), self.sigma, self.lo
        hi = self.hi if self.hi is not None else MAX_TOKENS
        if s == 0.0:
            return float(min(max(self.median, lo), hi))
        z_lo = (math.log(lo) - mu) / s
        z_hi = (math.log(hi) - mu) / s
        # E[clip(X, lo, hi)] = lo P(X<lo) + E[X; lo<=X<=hi] + hi P(X>hi), with
        # E[X; X<=c] = exp(mu + s^2/2) Phi((ln c - mu)/s - s).
        body = math.exp(mu + s * s / 2) * (_phi(z_hi - s) - _phi(z_lo - s))
        upper = hi * _phi(-z_hi)
        return lo * _phi(z_lo) + body + upper

    def __str__(self) -> str:
        spec = f"lognormal:{self.median:g}:{self.sigma:g}"
        if self.lo != 1 or self.hi is not None:
            spec += f":{self.lo}"
        if self.hi is not None:
            spec += f":{self.hi}"
        return spec


@dataclass(frozen=True)
class Empirical(LengthDist):
    """Resample (with replacement, equally likely) from observed token counts.

    ``values`` are whole numbers >= 1; ``source`` only labels where they came from (a file path).
    """

    values: tuple[int, ...] = field(repr=False)
    source: str = ""
    _array: np.ndarray = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        label = f"empirical lengths{f' from {self.source}' if self.source else ''}"
        try:
            array = np.asarray(self.values, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{label}: values must be numbers") from None
        if array.ndim != 1 or array.size == 0:
            raise InputError(f"{label}: need a non-empty list of token counts")
        bad = ~np.isfinite(array) | (array < 1) | (array != np.floor(array)) | (array > MAX_TOKENS)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{label}: value {i + 1} must be a whole number of tokens >= 1 and <= {MAX_TOKENS}, got {array[i]:g}")
        array = array.astype(np.int64)
        array.setflags(write=False)
        object.__setattr__(self, "values", tuple(array.tolist()))
        object.__setattr__(self, "_array", array)

    @classmethod
    def from_file(cls, path: str | Path, column: str | None = None) -> Empirical:
        """Read token counts from a CSV file: one number per row, or the named ``column`` of a CSV with a header.

        Blank lines and lines starting with ``#`` are skipped; without ``column`` a non-numeric first row is
        taken as a header.
        """
        p = existing_file(path, "empirical lengths file")
        rows = list(csv_rows(p))
        if not rows:
            raise InputError(f"{p}: empty file, expected one token count per row")
        if column is None:
            first_line, first = rows[0]
            if len(first) != 1:
                raise InputError(
                    f"{p}:{first_line}: {len(first)} columns; name one as empirical:{path}:COLUMN "
                    f"(columns: {', '.join(first)})"
                )
            try:
                float(first[0])
            except ValueError:
                rows = rows[1:]  # a header
            index = 0
        else:
            header_line, header = rows[0]
            if column not in header:
                raise InputError(f"{p}:{header_line}: no column {column!r} (columns: {', '.join(header)})")
            index = header.index(column)
            rows = rows[1:]
        if not rows:
            raise InputError(f"{p}: no values below the header")
        where, texts = [], []
        for line, fields in rows:
            where.append(f"{p}:{line}")
            texts.append(fields[index] if index < len(fields) else "")
        field_name = column if column is not None else "length"
        return cls(tuple(to_token_array(texts, where, field_name).tolist()), source=str(path))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(self._array, size=_count(n), replace=True)

    def mean(self) -> float:
        return float(self._array.mean())

    def __str__(self) -> str:
        return f"empirical:{self.source}" if self.source else f"empirical:<{len(self.values)} values>"


def _int_arg(text: str, what: str, spec: str, name: str) -> int:
    try:
        if len(text.strip()) > 30:  # int() of thousands of digits is slow and refused anyway
            raise ValueError
        return int(text)
    except ValueError:
        raise InputError(f"{what} {spec!r}: {name} must be an integer, got {text!r}") from None


def _float_arg(text: str, what: str, spec: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{what} {spec!r}: {name} must be a number, got {text!r}") from None


_FORMS = "N, fixed:N, uniform:LO:HI, lognormal:MEDIAN:SIGMA[:LO[:HI]] or empirical:FILE.csv[:COLUMN]"


def parse_length(spec: str, what: str = "length") -> LengthDist:
    """Parse a CLI length spec (see the module docstring); ``what`` (e.g. ``--input-len``) prefixes errors."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"{what} must be one of {_FORMS}, got {spec!r}")
    spec = spec.strip()
    kind, _, rest = spec.partition(":")
    kind = kind.lower()
    args = rest.split(":") if rest else []
    try:
        if not rest and kind.lstrip("+-").isdigit():
            return Fixed(_int_arg(spec, what, spec, "length"))
        if kind == "fixed" and len(args) == 1:
            return Fixed(_int_arg(args[0], what, spec, "length"))
        if kind == "uniform" and len(args) == 2:
            return Uniform(_int_arg(args[0], what, spec, "lo"), _int_arg(args[1], what, spec, "hi"))
        if kind == "lognormal" and 2 <= len(args) <= 4:
            median = _float_arg(args[0], what, spec, "median")
            sigma = _float_arg(args[1], what, spec, "sigma")
            lo = _int_arg(args[2], what, spec, "lo") if len(args) > 2 else 1
            hi = _int_arg(args[3], what, spec, "hi") if len(args) > 3 else None
            return LogNormal(median, sigma, lo, hi)
        if kind == "empirical" and rest:
            # The path may itself contain ':'; a trailing ':COLUMN' counts only if the whole is not a file.
            path, column = rest, None
            if not Path(rest).is_file() and ":" in rest:
                path, column = rest.rsplit(":", 1)
            return Empirical.from_file(path, column or None)
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith(what) else f"{what} {spec!r}: {message}") from None
    raise InputError(f"{what} must be one of {_FORMS}, got {spec!r}")


def as_length(value: int | str | LengthDist, what: str = "length") -> LengthDist:
    """Accept a :class:`LengthDist`, an int (fixed length) or a CLI spec string."""
    if isinstance(value, LengthDist):
        return value
    if isinstance(value, str):
        return parse_length(value, what)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{what} must be a token count, a length spec ({_FORMS}), got {value!r}")
    try:
        return Fixed(int(value))
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None

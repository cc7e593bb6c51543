"""Small validation and file-reading helpers shared by the workload modules (private).

Every failure raises :class:`~latentmoe_sim.errors.InputError` with a one-line message that starts with
``what`` (a flag such as ``--rate``, a field such as ``Poisson rate_per_s``, or ``file:line``).
"""

from __future__ import annotations

import csv
import math
import numbers
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from latentmoe_sim.errors import InputError


def check_int(value: object, what: str, minimum: int = 1) -> int:
    """``value`` as a Python int >= ``minimum`` (bools and non-integral numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise InputError(f"{what} must be an integer >= {minimum}, got {int(value)}")
    return int(value)


def check_float(value: object, what: str, minimum: float = 0.0, *, inclusive: bool = False) -> float:
    """``value`` as a finite float > ``minimum`` (or >= with ``inclusive``)."""
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{what} must be a finite number {bound}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < minimum or (number == minimum and not inclusive):
        raise InputError(f"{what} must be a finite number {bound}, got {value!r}")
    return number


def existing_file(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path`, or an InputError if it is not a readable file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {str(path)!r}: file not found")
    return p


def csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for each row of a CSV file, skipping blank and ``#`` comment lines.

    Fields are stripped of surrounding whitespace; line numbers are 1-based (the line a row starts on).
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            line = 1
            for fields in reader:
                start, line = line, reader.line_num + 1
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if fields[0].lstrip().startswith("#"):
                    continue
                yield start, [f.strip() for f in fields]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None


def to_float_array(texts: list[str], where: list[str], field: str) -> np.ndarray:
    """Parse strings as float64; on failure name the first bad entry (``where[i]`` is e.g. ``file:line``)."""
    try:
        values = np.array(texts, dtype=np.float64)
    except (ValueError, TypeError):
        values = None
    if values is not None and np.isfinite(values).all():
        return values
    for i, text in enumerate(texts):
        try:
            ok = math.isfinite(float(text))
        except (ValueError, TypeError):
            ok = False
        if not ok:
            shown = "nothing" if text in ("", None) else repr(text)
            raise InputError(f"{where[i]}: {field} must be a finite number, got {shown}")
    raise AssertionError("unreachable")  # pragma: no cover


def to_token_array(texts: list[str], where: list[str], field: str) -> np.ndarray:
    """Parse strings as token counts: int64, each a whole number >= 1 (``12.0`` is accepted)."""
    values = to_float_array(texts, where, field)
    bad = (values < 1) | (values != np.floor(values))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{where[i]}: {field} must be a whole number of tokens >= 1, got {texts[i]!r}")
    return values.astype(np.int64)

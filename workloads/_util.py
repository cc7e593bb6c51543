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


#: Most tokens one request may have (prompt or output): 2^24, the longest context a model entry may declare
#: (latentmoe_sim.schema.bounds.TOKENS). Larger counts would overflow int64 sums over a run.
MAX_TOKENS = 1 << 24


def check_int(value: object, what: str, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as a Python int in ``[minimum, maximum]`` (bools and non-integral numbers are refused)."""
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer >= {minimum} and <= {maximum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{what} must be {allowed}, got {_short(value)}")
    if int(value) < minimum or (maximum is not None and int(value) > maximum):
        raise InputError(f"{what} must be {allowed}, got {_short(int(value))}")
    return int(value)


def _short(value: object) -> str:
    from latentmoe_sim.schema import short

    return short(value)


def check_float(value: object, what: str, minimum: float = 0.0, *, inclusive: bool = False,
                maximum: float | None = None) -> float:
    """``value`` as a finite float > ``minimum`` (or >= with ``inclusive``), and <= ``maximum`` if given."""
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
    if maximum is not None:
        bound += f" and <= {maximum:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{what} must be a finite number {bound}, got {_short(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if (not math.isfinite(number) or number < minimum or (number == minimum and not inclusive)
            or (maximum is not None and number > maximum)):
        raise InputError(f"{what} must be a finite number {bound}, got {_short(value)}")
    return number


#: Largest trace or length file read: 1 GiB (the Azure 2024 week-long traces are a few hundred MB).
MAX_DATA_FILE_BYTES = 1 << 30


def existing_file(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path`, or an InputError if it is not a regular, readable file of at most
    :data:`MAX_DATA_FILE_BYTES` (devices, fifos, directories and /proc files are refused before reading)."""
    import os
    import stat

    text = str(path)
    p = Path(path)
    try:
        resolved = os.path.realpath(text)
        st = os.stat(text)
    except FileNotFoundError:
        raise InputError(f"{what} {text[:200]!r}: file not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{what} {text[:200]!r}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if not stat.S_ISREG(st.st_mode) or resolved.startswith(("/proc/", "/sys/", "/dev/")):
        raise InputError(f"{what} {text[:200]!r}: not a regular file")
    if st.st_size > MAX_DATA_FILE_BYTES:
        raise InputError(f"{what} {text[:200]!r}: {st.st_size} bytes is more than the {MAX_DATA_FILE_BYTES}-byte limit")
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
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV file ({' '.join(str(exc).split())[:200]})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


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
            shown = "nothing" if text in ("", None) else _short(text)
            raise InputError(f"{where[i]}: {field} must be a finite number, got {shown}")
    raise AssertionError("unreachable")  # pragma: no cover


def to_token_array(texts: list[str], where: list[str], field: str) -> np.ndarray:
    """Parse strings as token counts: int64, each a whole number >= 1 (``12.0`` is accepted)."""
    values = to_float_array(texts, where, field)
    bad = (values < 1) | (values != np.floor(values)) | (values > MAX_TOKENS)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{where[i]}: {field} must be a whole number of tokens >= 1 and <= {MAX_TOKENS}, got {_short(texts[i])}")
    return values.astype(np.int64)

"""Request traces read from CSV or JSONL: arrival time, input tokens and output tokens per request.

Columns (JSONL keys) are matched case-insensitively against these aliases, first match wins:

=================  =========================================================
arrival            ``arrival_s``, ``arrival_time``, ``timestamp``
input tokens       ``input_tokens``, ``prompt_tokens``, ``ContextTokens``
output tokens      ``output_tokens``, ``completion_tokens``, ``GeneratedTokens``
=================  =========================================================

so the Azure LLM inference traces (2023 and 2024: ``TIMESTAMP,ContextTokens,GeneratedTokens``) read as
they are. Arrival values are either numbers of seconds or timestamps (ISO 8601, or
``YYYY-MM-DD HH:MM:SS.fffffff`` as Azure writes them; naive times are taken as UTC). Either way they are
shifted so the earliest request arrives at 0 s, and rows are sorted by arrival time (a stable sort, so
ties keep file order); a trace may span at most :data:`MAX_TRACE_SPAN_S` (one year). Blank lines and CSV lines starting with ``#`` are skipped. Token counts must be
whole numbers >= 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from latentmoe_sim.errors import InputError
from latentmoe_sim.schema.loader import parse_json

from ._util import csv_rows, existing_file, to_float_array, to_token_array

__all__ = ["Trace", "read_trace", "COLUMN_ALIASES", "MAX_TRACE_SPAN_S"]

#: Longest trace, seconds from first to last arrival: one year (the Azure 2024 traces span a week, 6.05e5 s).
#: Beyond ~1e9 s the simulated clock loses the microseconds of a step (a double has 15-16 digits), and a
#: 1e300 s arrival made every rate ~1e-300 and every latency 0.
MAX_TRACE_SPAN_S = 365 * 86400.0

#: Field -> accepted column names, in priority order (matched case-insensitively).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "arrival": ("arrival_s", "arrival_time", "timestamp"),
    "input_tokens": ("input_tokens", "prompt_tokens", "ContextTokens"),
    "output_tokens": ("output_tokens", "completion_tokens", "GeneratedTokens"),
}


@dataclass(frozen=True, eq=False)
class Trace:
    """A parsed trace: read-only arrays of equal length, sorted by arrival, ``arrival_s[0] == 0``."""

    source: str
    arrival_s: np.ndarray  # float64 seconds from the first request
    input_tokens: np.ndarray  # int64, >= 1
    output_tokens: np.ndarray  # int64, >= 1

    def __post_init__(self) -> None:
        for array in (self.arrival_s, self.input_tokens, self.output_tokens):
            array.setflags(write=False)

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last arrival."""
        return float(self.arrival_s[-1]) if len(self) else 0.0

    def __str__(self) -> str:
        return f"trace {self.source} ({len(self)} requests over {self.duration_s:g} s)"


def _pick_columns(names: list[str], where: str) -> dict[str, str]:
    """Map each field to the name of its column in ``names``; InputError naming the missing field."""
    lowered = {name.strip().lower(): name for name in names}
    chosen = {}
    for field, aliases in COLUMN_ALIASES.items():
        match = next((lowered[a.lower()] for a in aliases if a.lower() in lowered), None)
        if match is None:
            found = ", ".join(names) if names else "none"
            raise InputError(f"{where}: no {field} column (one of {'|'.join(aliases)}); found: {found}")
        chosen[field] = match
    return chosen


def _read_csv(path: Path) -> tuple[dict[str, list[str]], list[str], dict[str, str]]:
    rows = csv_rows(path)
    try:
        header_line, header = next(rows)
    except StopIteration:
        raise InputError(f"{path}: empty trace file, expected a header row and one row per request") from None
    columns = _pick_columns(header, f"{path}:{header_line}")
    index = {field: header.index(name) for field, name in columns.items()}
    values: dict[str, list[str]] = {field: [] for field in columns}
    where: list[str] = []
    for line, fields in rows:
        where.append(f"{path}:{line}")
        for field, i in index.items():
            if i >= len(fields) or fields[i] == "":
                raise InputError(f"{path}:{line}: {columns[field]} is missing")
            values[field].append(fields[i])
    return values, where, columns


def _read_jsonl(path: Path) -> tuple[dict[str, list[str]], list[str], dict[str, str]]:
    columns: dict[str, str] | None = None
    values: dict[str, list[str]] = {field: [] for field in COLUMN_ALIASES}
    where: list[str] = []
    with path.open(encoding="utf-8-sig", errors="strict") as handle:
        for line_number, line in _lines(handle, path):
            if not line.strip():
                continue
            try:
                record = parse_json(line, f"{path}:{line_number}")  # no NaN, duplicate keys or deep nesting
            except InputError as exc:
                raise InputError(f"{exc} (not a valid JSON object line)") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{line_number}: expected a JSON object per line")
            if columns is None:
                columns = _pick_columns(list(record), f"{path}:{line_number}")
            where.append(f"{path}:{line_number}")
            for field, key in columns.items():
                value = record.get(key)
                if value is None or value == "":
                    raise InputError(f"{path}:{line_number}: {key} is missing")
                values[field].append(repr(value) if isinstance(value, float) else str(value))
    if columns is None:
        raise InputError(f"{path}: empty trace file, expected one JSON object per request")
    return values, where, columns


def _lines(handle, path: Path):
    """``(line_number, line)`` of a text file, a decoding error as one InputError line."""
    try:
        yield from enumerate(handle, start=1)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def _timestamps_s(texts: list[str], where: list[str], column: str) -> np.ndarray:
    """Timestamps -> float64 seconds since the first one (naive times taken as UTC)."""
    stamps = []
    for i, text in enumerate(texts):
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"{where[i]}: {column} must be seconds or an ISO timestamp (YYYY-MM-DD HH:MM:SS.ffffff), "
                f"got {text[:60]!r}"
            ) from None
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(timezone.utc).replace(tzinfo=None)
        stamps.append(stamp)
    first = stamps[0]
    return np.array([(s - first).total_seconds() for s in stamps], dtype=np.float64)


def _arrivals_s(texts: list[str], where: list[str], column: str) -> np.ndarray:
    """Arrival column -> float64 seconds: all numbers (seconds) or, if the first is not, all timestamps."""
    try:
        float(texts[0])
    except ValueError:
        return _timestamps_s(texts, where, column)
    return to_float_array(texts, where, f"{column} (seconds)")


def read_trace(path: str | Path) -> Trace:
    """Read a CSV (``.csv`` or anything not JSONL) or JSONL (``.jsonl``, ``.ndjson``, or a file whose first
    character is ``{``) trace; see the module docstring for the columns and the normalization."""
    p = existing_file(path, "trace")
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        is_jsonl = True
    elif p.suffix.lower() == ".csv":
        is_jsonl = False
    else:
        with p.open(encoding="utf-8-sig", errors="replace") as handle:
            is_jsonl = handle.read(4096).lstrip().startswith("{")
    values, where, columns = (_read_jsonl if is_jsonl else _read_csv)(p)
    if not where:
        raise InputError(f"{p}: trace has a header but no requests")
    arrival_s = _arrivals_s(values["arrival"], where, columns["arrival"])
    input_tokens = to_token_array(values["input_tokens"], where, columns["input_tokens"])
    output_tokens = to_token_array(values["output_tokens"], where, columns["output_tokens"])
    order = np.argsort(arrival_s, kind="stable")
    arrival_s = arrival_s[order]
    span = float(arrival_s[-1] - arrival_s[0])
    if not span <= MAX_TRACE_SPAN_S:
        i = int(order[-1])
        raise InputError(f"{where[i]}: {columns['arrival']} is {span:.4g} s after the first request; a trace may span "
                         f"at most {MAX_TRACE_SPAN_S:.4g} s (one year)")
    return Trace(
        source=str(path),
        arrival_s=arrival_s - arrival_s[0],
        input_tokens=input_tokens[order],
        output_tokens=output_tokens[order],
    )

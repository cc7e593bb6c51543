"""The measured-results format: one published serving measurement per CSV row.

The format is the one of ``../shared/reference/measured_format.md`` (36 columns; documented for users in
docs/VALIDATION.md). A blank field means "the source does not state it": it is read as ``None`` and never
filled with a default here (the mapping to a simulated configuration applies defaults and says so).

:func:`read_measured` checks every field against its type and allowed values and raises
:class:`~latentmoe_sim.errors.InputError` naming the file, line, column and what is allowed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import InputError

#: The format's enums (measured_format.md).
MODELS = ("deepseek-v3", "kimi-k2-1t", "hybrid-73bt-8ba", "hybrid-73bt-8ba-latentmoe")
HARDWARE = ("h100_sxm", "h200_sxm", "h800", "b200", "b300", "gb200_nvl72", "gb300_nvl72", "mi300x", "mi325x", "mi355x")
FRAMEWORKS = ("vllm", "sglang", "trtllm", "deepseek", "dynamo-trtllm", "dynamo-sglang")
WEIGHT_DTYPES = ("bf16", "fp8", "fp4", "int4")
ACT_DTYPES = ("fp8", "bf16")
MODES = ("agg", "disagg")
PHASES = ("both", "prefill", "decode")
CONFIDENCE = ("high", "medium", "low")

#: The measured metrics a row can carry, and the simulated quantity each is compared with.
METRICS = ("output_tps_per_gpu", "input_tps_per_gpu", "tps_per_user", "tpot_ms", "ttft_ms")

_INT_FIELDS = ("num_gpus", "tp", "ep", "dp_attn", "pp", "prefill_gpus", "prefill_tp", "prefill_ep", "prefill_dp_attn",
               "decode_gpus", "decode_tp", "decode_ep", "decode_dp_attn", "isl", "osl", "concurrency",
               "decode_batch_per_gpu")


@dataclass(frozen=True)
class MeasuredRow:
    """One row of the format; ``None`` = blank (not stated by the source). Units as the column names say."""

    id: str
    source: str
    source_ref: str
    model: str
    hw: str
    framework: str
    weight_dtype: str
    act_dtype: str | None
    kv_dtype: str | None
    mode: str
    phase: str
    num_gpus: int | None
    tp: int | None
    ep: int | None
    dp_attn: int | None
    pp: int | None
    prefill_gpus: int | None
    prefill_tp: int | None
    prefill_ep: int | None
    prefill_dp_attn: int | None
    decode_gpus: int | None
    decode_tp: int | None
    decode_ep: int | None
    decode_dp_attn: int | None
    #: draft tokens per step; 0 = stated off, -1 = "on" (depth not stated), None = not stated
    mtp: int | None
    isl: int | None
    osl: int | None
    concurrency: int | None
    decode_batch_per_gpu: int | None
    output_tps_per_gpu: float | None
    input_tps_per_gpu: float | None
    tps_per_user: float | None
    tpot_ms: float | None
    ttft_ms: float | None
    confidence: str
    notes: str

    @property
    def measured(self) -> dict[str, float]:
        """The metrics this row states, by name (see :data:`METRICS`)."""
        return {m: getattr(self, m) for m in METRICS if getattr(self, m) is not None}


#: Column order of the format (the dataclass field order).
COLUMNS = tuple(f.name for f in fields(MeasuredRow))
MTP_ON = -1


def read_measured(path: str | Path) -> list[MeasuredRow]:
    """Every row of a measured-results CSV, checked field by field (InputError on the first bad field)."""
    from ..schema.loader import read_text  # the project's one safe file reader (size, type, UTF-8)

    label = f"--file {path}"
    text = read_text(path, label=label, what="measured-results CSV")
    return parse_measured(text, label)


def parse_measured(text: str, label: str = "<csv>") -> list[MeasuredRow]:
    """Rows of the CSV ``text`` (``label`` names it in errors)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{label}: empty file (expected the header row of the measured-results format)") from None
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown:
        what = "; ".join(s for s in (f"missing columns: {', '.join(missing)}" if missing else "",
                                     f"unknown columns: {', '.join(unknown)}" if unknown else "") if s)
        raise InputError(f"{label}: header does not match the measured-results format ({what}); see docs/VALIDATION.md")
    rows: list[MeasuredRow] = []
    seen: set[str] = set()
    for line_no, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise InputError(f"{label}:{line_no}: {len(cells)} fields, the header has {len(header)} (quote fields that contain commas)")
        raw = {h: c.strip() for h, c in zip(header, cells)}
        row = _parse_row(raw, f"{label}:{line_no}")
        if row.id in seen:
            raise InputError(f"{label}:{line_no}: id {row.id!r} appears twice (ids must be unique)")
        seen.add(row.id)
        rows.append(row)
    return rows


def _parse_row(raw: dict[str, str], where: str) -> MeasuredRow:
    def enum(name: str, allowed: tuple[str, ...], required: bool = True, extra_prefix: str | None = None) -> str | None:
        value = raw[name]
        if not value:
            if required:
                raise InputError(f"{where}: column {name} is blank; allowed: {', '.join(allowed)}")
            return None
        if value in allowed or (extra_prefix and value.startswith(extra_prefix) and len(value) > len(extra_prefix)):
            return value
        more = f", or {extra_prefix}<name>" if extra_prefix else ""
        raise InputError(f"{where}: column {name} = {value!r}; allowed: {', '.join(allowed)}{more}")

    def integer(name: str) -> int | None:
        value = raw[name]
        if not value:
            return None
        try:
            n = int(value)
        except ValueError:
            raise InputError(f"{where}: column {name} = {value!r} must be a whole number >= 1") from None
        if n < 1:
            raise InputError(f"{where}: column {name} = {n} must be >= 1")
        return n

    def positive(name: str) -> float | None:
        value = raw[name]
        if not value:
            return None
        try:
            x = float(value)
        except ValueError:
            raise InputError(f"{where}: column {name} = {value!r} must be a number > 0") from None
        if not x > 0 or x == float("inf"):
            raise InputError(f"{where}: column {name} = {value} must be a finite number > 0")
        return x

    if not raw["id"]:
        raise InputError(f"{where}: column id is blank (every row needs a unique id)")
    mtp_raw = raw["mtp"]
    if not mtp_raw:
        mtp = None
    elif mtp_raw == "on":
        mtp = MTP_ON
    else:
        try:
            mtp = int(mtp_raw)
        except ValueError:
            mtp = -2
        if mtp < 0:
            raise InputError(f"{where}: column mtp = {mtp_raw!r}; allowed: a whole number >= 0, 'on', or blank")
    values = dict(
        id=raw["id"], source=raw["source"], source_ref=raw["source_ref"],
        model=enum("model", MODELS), hw=enum("hw", HARDWARE),
        framework=enum("framework", FRAMEWORKS, extra_prefix="other:"),
        weight_dtype=enum("weight_dtype", WEIGHT_DTYPES), act_dtype=enum("act_dtype", ACT_DTYPES, required=False),
        kv_dtype=enum("kv_dtype", ACT_DTYPES, required=False), mode=enum("mode", MODES), phase=enum("phase", PHASES),
        mtp=mtp, confidence=enum("confidence", CONFIDENCE), notes=raw["notes"],
        **{n: integer(n) for n in _INT_FIELDS}, **{m: positive(m) for m in METRICS},
    )
    return MeasuredRow(**values)


__all__ = ["COLUMNS", "METRICS", "MTP_ON", "MeasuredRow", "parse_measured", "read_measured"]

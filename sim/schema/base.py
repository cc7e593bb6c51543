"""The base class of every schema for a file a user writes, and the one-line error it turns into.

A schema is a :class:`StrictModel` subclass: pydantic v2 with ``extra="forbid"`` (unknown keys refused),
``strict=True`` (no ``"8"`` -> 8, no ``2.5`` -> 2, no ``"no"`` -> True; an ``int`` is accepted where a
``float`` is meant), ``allow_inf_nan=False`` (NaN and infinities refused) and ``frozen=True``. Ranges go on the
field (``Field(ge=1, le=1024)``); a range pydantic cannot express goes in a ``field_validator`` or
``model_validator`` that raises ``ValueError("... must be ...")``.

:func:`validate` runs a schema on parsed data and turns the first :class:`pydantic.ValidationError` into
an :class:`~latentmoe_sim.errors.InputError` of one line::

    m.yaml: field moe.top_k = 2.5: must be an integer, allowed integer in [1, 1024]

naming the file, the field path, the value (truncated by :func:`~latentmoe_sim.schema.loader.short`,
never ``repr()``-ed whole) and the allowed range, read from the field's constraints, or from
``Field(json_schema_extra={"allowed": "..."})`` when a field states its own (e.g. a range in GiB for a
value checked in bytes).
"""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from ..errors import InputError
from .loader import short

__all__ = ["StrictModel", "validate", "error_line", "allowed_text"]

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every user-file schema: unknown keys, wrong types, NaN and infinities refused.

    Sequences: annotate them as ``list[...]`` (strict mode refuses a YAML/JSON list for a ``tuple``).
    Counts: annotate them as ``int`` with bounds (``Annotated[int, Field(ge=1, le=N)]``); floats that mean a
    size or a rate get ``gt=0`` and an upper bound that keeps a run within memory and minutes.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True,
                              hide_input_in_errors=False, validate_default=False)


def validate(schema: type[M], data: Any, label: str) -> M:
    """``schema.model_validate(data)``, with any failure raised as a one-line :class:`InputError`
    starting with ``label`` (the file name as the user gave it)."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InputError(error_line(exc, label, schema)) from None


def error_line(exc: ValidationError, label: str, schema: type[BaseModel] | None = None) -> str:
    """One line for the first error of ``exc``: file, field path, value, what is wrong, allowed range."""
    errors = exc.errors(include_url=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return f"{label}: invalid"
    err = errors[0]
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    loc = _clean_loc(err.get("loc", ()), schema)
    path = _format_loc(loc)
    kind = err.get("type", "")
    value = err.get("input")
    allowed = allowed_text(schema, loc) if schema is not None else ""
    tail = f", allowed {allowed}" if allowed else ""
    if not loc and kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{label}: top level must be a mapping of fields, not {short(value)}{more}"
    if kind == "missing":
        return f"{label}: missing field {path}{tail}{more}"
    if kind == "extra_forbidden":
        known = _field_names(schema, loc[:-1]) if schema is not None else []
        hint = f" (allowed here: {', '.join(known)})" if known else ""
        return f"{label}: unknown field {path}{hint}{more}"
    message = _message(err)
    if kind == "value_error":  # a validator's own message says what is allowed
        if not loc:
            return f"{label}: {message}{more}"
        tail = ""
    elif kind == "literal_error" or (allowed and allowed in message):
        tail = ""
    return f"{label}: field {path} = {short(value)}: {message}{tail}{more}"


# ---------------------------------------------------------------------------------------------- internals

_TYPE_WORDS = {
    "int_type": "must be an integer", "int_from_float": "must be an integer",
    "int_parsing": "must be an integer", "float_type": "must be a number", "float_parsing": "must be a number",
    "string_type": "must be a string", "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "list_type": "must be a list", "dict_type": "must be a mapping", "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping", "finite_number": "must be a finite number",
    "none_required": "must be null", "string_too_short": "must not be empty",
    "string_pattern_mismatch": "does not have the allowed form", "string_too_long": "is too long",
}


def _message(err: dict) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind]
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "out of range"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}"
    if kind in ("too_short", "too_long"):
        return " ".join(str(err.get("msg", "wrong length")).replace("List should", "must").split())
    if kind == "value_error":
        msg = str(err.get("msg", ""))
        return " ".join(msg.removeprefix("Value error, ").split())[:300]
    msg = " ".join(str(err.get("msg", kind)).split())
    return msg.replace("Input should", "must")[:300]


_UNION_TAGS = {"int", "float", "str", "bool", "list", "dict", "none", "tuple", "literal"}


def _clean_loc(loc: tuple, schema: type[BaseModel] | None) -> tuple:
    """Drop the union-member tags pydantic inserts (``'int'``, ``'function-after[...]'``) from a loc."""
    return tuple(p for p in loc if isinstance(p, int) or not (p in _UNION_TAGS or "[" in p or p.startswith("lax-")))


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _unwrap(annotation: Any) -> tuple[Any, list]:
    """(innermost type, metadata) of an annotation: strips Annotated and Optional."""
    metadata: list = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            args = typing.get_args(annotation)
            annotation = args[0]
            for item in args[1:]:  # Field(ge=1) inside Annotated carries its constraints in .metadata
                metadata.extend(getattr(item, "metadata", None) or [item])
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation, metadata


_ELEMENT = FieldInfo()  # stands for "an element of a list/dict field": no constraints of its own


def _field_info(schema: type[BaseModel] | None, loc: tuple):
    """The pydantic FieldInfo (and its unwrapped type) that ``loc`` ends at, or (None, None)."""
    current: Any = schema
    info = None
    for part in loc:
        current, _ = _unwrap(current)
        if isinstance(part, int) or (info is not None and typing.get_origin(current) is dict):
            args = typing.get_args(current)
            if not args:
                return None, None
            current = args[-1]  # list[X] -> X, dict[K, V] -> V
            info = _ELEMENT
            continue
        if isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            info = current.model_fields[part]
            current = info.annotation
        else:
            return None, None
    return info, current


def _field_names(schema: type[BaseModel] | None, loc: tuple) -> list[str]:
    if not loc:
        return list(schema.model_fields) if schema is not None else []
    _, annotation = _field_info(schema, loc)
    inner, _ = _unwrap(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return list(inner.model_fields)
    return []


def allowed_text(schema: type[BaseModel] | None, loc: tuple) -> str:
    """What the field at ``loc`` accepts, e.g. ``integer in [1, 1024]``, ``(0, 1]``, ``one of 'acc', 'eff'``;
    a field's own ``json_schema_extra={"allowed": ...}`` wins. Empty when nothing can be said."""
    info, annotation = _field_info(schema, loc)
    if info is None:
        return ""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "allowed" in extra:
        return str(extra["allowed"])
    inner, metadata = _unwrap(annotation)
    metadata = list(info.metadata) + metadata
    lo = hi = None
    lo_open = hi_open = False
    for m in metadata:
        for attr, is_lo, is_open in (("gt", True, True), ("ge", True, False), ("lt", False, True), ("le", False, False)):
            v = getattr(m, attr, None)
            if v is not None:
                if is_lo:
                    lo, lo_open = v, is_open
                else:
                    hi, hi_open = v, is_open
    if typing.get_origin(inner) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(inner))
    if lo is None and hi is None:
        words = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}
        return words.get(inner, "")
    left = ("(" if lo_open else "[") + (_num(lo) if lo is not None else "-inf")
    right = (_num(hi) if hi is not None else "inf") + ("]" if hi is not None and not hi_open else ")")
    interval = f"{left}, {right}"
    if inner is int:
        if hi is None and not lo_open:
            return f"integer >= {_num(lo)}"
        return f"integer in {interval}"
    unit = extra.get("unit")
    return f"{interval} {unit}" if unit else interval


def _num(x: float) -> str:
    """Bounds as a user would write them: integers in full (1048576), other numbers in %g."""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e15):
        return str(int(x))
    return f"{x:g}"

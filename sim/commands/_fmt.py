"""Small printing helpers shared by the command modules."""

from __future__ import annotations

import json
import math

from .. import __version__


def human(value: float, unit: str = "") -> str:
    """1.0264e12 -> '1.026 T', with an SI prefix and three decimals."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}".strip()
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u")):
        if abs(value) >= scale:
            return f"{value / scale:.3f} {prefix}{unit}".strip()
    return f"{value:.3g} {unit}".strip()


def strict_json_value(obj):
    """``obj`` with every non-finite float replaced by ``None`` (JSON has no NaN or Infinity; ``null`` means
    "not measured") and numpy scalars/arrays turned into Python numbers and lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): strict_json_value(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json_value(v) for v in obj]
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    item = getattr(obj, "tolist", None)  # numpy scalar or array
    if item is not None:
        return strict_json_value(item())
    return str(obj)


def dumps(obj) -> str:
    """Strict JSON text of ``obj`` (see :func:`strict_json_value`); a dict gains ``lmsim_version`` first."""
    if isinstance(obj, dict) and "lmsim_version" not in obj:
        obj = {"lmsim_version": __version__, **obj}
    return json.dumps(strict_json_value(obj), indent=2, allow_nan=False)


def print_json(obj) -> None:
    """Print ``obj`` as strict JSON carrying ``lmsim_version`` (the ``--json`` output of every command)."""
    print(dumps(obj))


def table(rows: list[tuple], header: tuple[str, ...], align: str = "") -> str:
    """Rows as aligned text columns; ``align`` has one letter per column, ``l`` or ``r`` (default: first left,
    the rest right)."""
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    n = len(header)
    align = align or "l" + "r" * (n - 1)
    widths = [max(len(r[i]) for r in cells) for i in range(n)]
    lines = []
    for k, r in enumerate(cells):
        parts = [r[i].ljust(widths[i]) if align[i] == "l" else r[i].rjust(widths[i]) for i in range(n)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)

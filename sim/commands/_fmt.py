"""Small printing helpers shared by the command modules."""

from __future__ import annotations

import json
import math


def human(value: float, unit: str = "") -> str:
    """1.0264e12 -> '1.026 T', with an SI prefix and three decimals."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}".strip()
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u")):
        if abs(value) >= scale:
            return f"{value / scale:.3f} {prefix}{unit}".strip()
    return f"{value:.3g} {unit}".strip()


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=float))

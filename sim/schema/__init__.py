"""One schema layer for every file a user writes: safe loading, typed strict models, one-line errors.

How a schema for a user file is built (hardware profiles in :mod:`latentmoe_sim.hwprofile_io`, model
entries and HF ``config.json`` imports in :mod:`latentmoe_sim.models`, experiment specs in
:mod:`latentmoe_sim.schema.experiment`):

1. **Load** with :func:`load_file` (``.json`` -> JSON, else YAML). It refuses special files, files over
   :data:`MAX_FILE_BYTES`, non-UTF-8, duplicate keys, nesting deeper than :data:`MAX_DEPTH` and alias
   bombs, each as one line naming the file. Never open a user file with ``open()``/``yaml.safe_load``
   directly.
2. **Validate** with ``validate(MySchema, data, label)`` where ``MySchema`` subclasses
   :class:`StrictModel` (unknown keys, wrong types, NaN/inf refused). Put every range on the field
   (``Annotated[int, Field(ge=1, le=4096)]``) with an upper bound that keeps a run within memory and
   minutes; use ``list[...]`` for sequences. A rule across fields goes in a ``model_validator`` raising
   ``ValueError("<field> = <value> must be ...")``: it arrives as the same one-line error.
3. **Convert** to the SI dataclass the simulator uses *after* validation, and check any range that is
   stated in SI after the unit conversion (e.g. ``hbm_capacity_GiB: 1e300`` is refused because the bytes
   exceed the upper bound, not accepted as ``inf``).

Bounds on command-line numbers live in :mod:`latentmoe_sim.schema.bounds` (argparse types that print
the allowed range in ``--help`` and refuse NaN, inf, zero sizes and non-integer counts).

Errors are :class:`~latentmoe_sim.errors.InputError`: the CLI prints one line and exits with 2.
"""

from .loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, load_file, parse_json, parse_yaml, read_text, short

_LAZY = {"StrictModel", "allowed_text", "error_line", "validate"}  # from .base; pydantic loads on first use


def __getattr__(name: str):
    if name in _LAZY:  # keeps `import latentmoe_sim.schema.bounds` (every --help) free of pydantic's import time
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "StrictModel", "allowed_text", "error_line", "load_file",
    "parse_json", "parse_yaml", "read_text", "short", "validate",
]

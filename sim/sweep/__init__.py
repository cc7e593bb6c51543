"""Sweeps: experiment spec -> operating points (grid) -> executors (serial | process | Ray) -> parquet shards (store)."""

from .executor import EXECUTORS, run_sweep
from .grid import expand, model_refs, take
from .store import Store, read_rows, read_spec

__all__ = ["EXECUTORS", "Store", "expand", "model_refs", "read_rows", "read_spec", "run_sweep", "take"]

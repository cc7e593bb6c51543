"""Workloads: request length distributions, arrival processes, traces, presets.

The serving engine consumes :class:`RequestSpecs` from :meth:`Workload.generate`; the CLI builds the
workload with :func:`make_workload`. See ``README.md`` in this folder.
"""

from pathlib import Path

from .arrivals import ArrivalProcess, ClosedLoop, Gamma, OpenLoop, Poisson, parse_arrivals
from .lengths import Empirical, Fixed, LengthDist, LogNormal, Uniform, as_length, parse_length
from .presets import PRESETS, Preset, get_preset, list_presets, make_workload
from .traces import COLUMN_ALIASES, Trace, read_trace
from .workload import RequestSpecs, Workload

__all__ = [
    "ArrivalProcess", "ClosedLoop", "Gamma", "OpenLoop", "Poisson", "parse_arrivals",
    "Empirical", "Fixed", "LengthDist", "LogNormal", "Uniform", "as_length", "parse_length",
    "PRESETS", "Preset", "get_preset", "list_presets", "make_workload",
    "COLUMN_ALIASES", "Trace", "read_trace",
    "RequestSpecs", "Workload",
    "sample_trace_path",
]


def sample_trace_path() -> Path:
    """The bundled 50-request synthetic trace in Azure LLM inference trace format (``data/azure_sample.csv``)."""
    return Path(__file__).parent / "data" / "azure_sample.csv"

"""Named workload presets and :func:`make_workload`, the one call the CLI makes.

The LatentMoE paper does not state the input/output sequence lengths (ISL/OSL) behind its serving
numbers. The presets below are this project's choice, picked to stress each phase: ``decode-heavy``
(ISL 1024, OSL 8192: long generations, e.g. reasoning) and ``prefill-heavy`` (ISL 8192, OSL 1024: long
prompts, e.g. RAG or summarization). Both use fixed lengths and 1000 requests by default; every value
can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from latentmoe_sim.errors import InputError

from ._util import check_int
from .arrivals import parse_arrivals
from .lengths import Fixed, LengthDist, as_length
from .traces import Trace, read_trace
from .workload import Workload

__all__ = ["Preset", "PRESETS", "list_presets", "get_preset", "make_workload"]


@dataclass(frozen=True)
class Preset:
    """Default lengths and request count; the arrival source is always the caller's."""

    name: str
    description: str
    input_len: LengthDist
    output_len: LengthDist
    num_requests: int


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "decode-heavy",
            "ISL 1024, OSL 8192 (fixed): long generations; project choice, not from the paper",
            Fixed(1024),
            Fixed(8192),
            1000,
        ),
        Preset(
            "prefill-heavy",
            "ISL 8192, OSL 1024 (fixed): long prompts; project choice, not from the paper",
            Fixed(8192),
            Fixed(1024),
            1000,
        ),
    )
}


def list_presets() -> tuple[Preset, ...]:
    """All presets, in a stable order."""
    return tuple(PRESETS.values())


def get_preset(name: str) -> Preset:
    """The preset called ``name``; InputError listing the known names otherwise."""
    if isinstance(name, str) and name in PRESETS:
        return PRESETS[name]
    from latentmoe_sim.errors import unknown_name

    raise unknown_name("workload preset", str(name), PRESETS, "--trace FILE replays a trace instead")


def make_workload(
    preset: str,
    *,
    input_len: int | str | LengthDist | None = None,
    output_len: int | str | LengthDist | None = None,
    concurrency: int | None = None,
    rate: float | None = None,
    burstiness: float | None = None,
    trace: str | Path | Trace | None = None,
    num_requests: int | None = None,
    seed: int = 0,
    think_time_s: float = 0.0,
) -> Workload:
    """Build a :class:`Workload` from a preset plus overrides (the CLI flags of the same names).

    Exactly one arrival source: ``concurrency`` (closed loop), ``rate`` (requests/s; with ``burstiness``,
    the inter-arrival CV, gamma gaps instead of Poisson) or ``trace`` (a path or a :class:`Trace`).
    Lengths are an int (fixed), a spec string (see :func:`~latentmoe_sim.workloads.lengths.parse_length`)
    or a :class:`LengthDist`. With a trace, lengths and arrival times come from the trace unless
    ``input_len`` / ``output_len`` are given, and ``num_requests`` (default: all) keeps the first ones.
    """
    base = get_preset(preset)
    given = [flag for flag, value in (("--concurrency", concurrency), ("--rate", rate), ("--trace", trace))
             if value is not None]
    if len(given) != 1:
        which = f"got {' and '.join(given)}" if given else "got none"
        raise InputError(f"give exactly one arrival source: --concurrency, --rate or --trace ({which})")
    isl = None if input_len is None else as_length(input_len, "--input-len")
    osl = None if output_len is None else as_length(output_len, "--output-len")
    if num_requests is not None:
        num_requests = check_int(num_requests, "--num-requests")
    if trace is not None:
        if burstiness is not None or think_time_s:
            raise InputError("--burstiness and --think-time-s do not apply to --trace (its times are replayed)")
        replay = trace if isinstance(trace, Trace) else read_trace(trace)
        name = f"trace:{Path(replay.source).stem}"
        return Workload(name, isl, osl, replay, num_requests, seed)
    arrivals = parse_arrivals(concurrency, rate, burstiness, think_time_s)
    return Workload(
        base.name,
        isl if isl is not None else base.input_len,
        osl if osl is not None else base.output_len,
        arrivals,
        num_requests if num_requests is not None else base.num_requests,
        seed,
    )

"""A workload (lengths x arrivals x count x seed) and the per-request arrays it generates for the engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentmoe_sim.errors import InputError

from ._util import check_int
from .arrivals import ClosedLoop, Gamma, Poisson
from .lengths import LengthDist
from .traces import Trace

__all__ = ["Workload", "RequestSpecs"]


@dataclass(frozen=True, eq=False)
class RequestSpecs:
    """What the engine serves: one entry per request, in arrival order, as read-only numpy arrays.

    ``arrival_s`` is float64 seconds from 0 (sorted) for open-loop and trace workloads, and all NaN for a
    closed loop, where ``closed_loop`` is set and the engine decides when each request is sent (request ``i``
    is the ``i``-th one it injects). ``input_tokens`` and ``output_tokens`` are int64, each >= 1.
    """

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    closed_loop: ClosedLoop | None = None

    def __post_init__(self) -> None:
        n = self.arrival_s.shape
        if self.input_tokens.shape != n or self.output_tokens.shape != n or len(n) != 1:
            raise ValueError("RequestSpecs arrays must be one-dimensional and of equal length")
        for array in (self.arrival_s, self.input_tokens, self.output_tokens):
            array.setflags(write=False)

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def num_requests(self) -> int:
        return len(self)


@dataclass(frozen=True)
class Workload:
    """Requests to serve: length distributions, an arrival process (or a trace), a count and a seed.

    * ``input_len`` / ``output_len``: token-count distributions. With a :class:`Trace` as ``arrivals`` they
      may be ``None`` to take the lengths from the trace, or set to override the trace's lengths.
    * ``arrivals``: :class:`ClosedLoop`, :class:`Poisson`, :class:`Gamma` or a :class:`Trace`.
    * ``num_requests``: how many requests (>= 1); for a trace ``None`` means all of it, and a number takes
      the first ``num_requests`` in arrival order.
    * ``seed``: :meth:`generate` is a pure function of the fields. Input lengths, output lengths and arrival
      gaps come from independent child streams of ``np.random.default_rng(seed)``, so changing e.g. the
      rate leaves the lengths unchanged.
    """

    name: str
    input_len: LengthDist | None
    output_len: LengthDist | None
    arrivals: ClosedLoop | Poisson | Gamma | Trace
    num_requests: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        is_trace = isinstance(self.arrivals, Trace)
        if not isinstance(self.arrivals, (ClosedLoop, Poisson, Gamma, Trace)):
            raise InputError(f"workload {self.name!r}: arrivals must be ClosedLoop, Poisson, Gamma or a Trace")
        for label, dist in (("input_len", self.input_len), ("output_len", self.output_len)):
            if dist is None and not is_trace:
                raise InputError(f"workload {self.name!r}: {label} is required unless the arrivals are a trace")
            if dist is not None and not isinstance(dist, LengthDist):
                raise InputError(f"workload {self.name!r}: {label} must be a length distribution, got {dist!r}")
        if self.num_requests is None:
            if not is_trace:
                raise InputError(f"workload {self.name!r}: num_requests is required unless replaying a trace")
        else:
            object.__setattr__(self, "num_requests", check_int(self.num_requests, "--num-requests"))
            if is_trace and self.num_requests > len(self.arrivals):
                raise InputError(
                    f"--num-requests {self.num_requests} exceeds the {len(self.arrivals)} requests "
                    f"in trace {self.arrivals.source}"
                )
        object.__setattr__(self, "seed", check_int(self.seed, "--seed", minimum=0))

    @property
    def count(self) -> int:
        """The number of requests :meth:`generate` returns."""
        return self.num_requests if self.num_requests is not None else len(self.arrivals)

    def generate(self) -> RequestSpecs:
        """The per-request arrays; the same fields always give the same arrays."""
        n = self.count
        input_rng, output_rng, arrival_rng = np.random.default_rng(self.seed).spawn(3)
        if isinstance(self.arrivals, Trace):
            trace = self.arrivals
            arrival_s = trace.arrival_s[:n].copy()
            input_tokens = trace.input_tokens[:n].copy() if self.input_len is None else None
            output_tokens = trace.output_tokens[:n].copy() if self.output_len is None else None
        elif isinstance(self.arrivals, ClosedLoop):
            arrival_s = np.full(n, np.nan, dtype=np.float64)
            input_tokens = output_tokens = None
        else:
            arrival_s = self.arrivals.arrival_times(arrival_rng, n)
            input_tokens = output_tokens = None
        if input_tokens is None:
            input_tokens = self.input_len.sample(input_rng, n)
        if output_tokens is None:
            output_tokens = self.output_len.sample(output_rng, n)
        return RequestSpecs(
            arrival_s=arrival_s,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            closed_loop=self.arrivals if isinstance(self.arrivals, ClosedLoop) else None,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        isl = "from trace" if self.input_len is None else str(self.input_len)
        osl = "from trace" if self.output_len is None else str(self.output_len)
        return f"{self.name}: {self.count} requests, ISL {isl}, OSL {osl}, {self.arrivals}, seed {self.seed}"

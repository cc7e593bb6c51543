"""How requests arrive: a closed loop of clients, or an open-loop process of arrival times.

* :class:`ClosedLoop` -- ``concurrency`` clients, each sending its next request ``think_time_s`` after its
  previous one finishes. There are no precomputed times: the engine injects a request when one finishes.
* :class:`Poisson` -- open loop, exponential inter-arrival gaps at ``rate_per_s`` requests per second.
* :class:`Gamma` -- open loop, gamma-distributed gaps with the same mean rate and coefficient of variation
  ``cv`` (standard deviation / mean of the gaps): ``cv > 1`` is bursty, ``cv < 1`` smoother than Poisson,
  ``cv = 1`` is Poisson.

Open-loop processes give ``arrival_times(rng, n)``: ``n`` sorted float64 seconds, the first request at
``t = 0`` and each later one a random gap after the one before (so ``n - 1`` gaps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentmoe_sim.errors import InputError

from ._util import check_float, check_int

__all__ = ["ClosedLoop", "Poisson", "Gamma", "ArrivalProcess", "OpenLoop", "parse_arrivals"]


def _times_from_gaps(gaps_s: np.ndarray) -> np.ndarray:
    """Arrival times from ``n - 1`` gaps: ``[0, g0, g0 + g1, ...]``."""
    times = np.zeros(gaps_s.size + 1, dtype=np.float64)
    np.cumsum(gaps_s, out=times[1:])
    return times


@dataclass(frozen=True)
class ClosedLoop:
    """``concurrency`` clients; each sends a new request ``think_time_s`` seconds after its last one finishes.

    ``ramp_s`` staggers the clients' first requests: client ``k`` (of ``C``) sends at ``k * ramp_s / C``.
    With ``ramp_s = 0`` all start together, and with fixed lengths they then stay in lock-step forever
    (every request of a wave prefills on the same step and finishes on the same step). A real closed loop
    is not synchronised; spreading the first sends over about one request lifetime gives the clients the
    uniformly spread phases they would settle into if lengths varied at all
    (:func:`latentmoe_sim.point.run_point` estimates that lifetime from the step cost).
    """

    concurrency: int
    think_time_s: float = 0.0
    ramp_s: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "concurrency", check_int(self.concurrency, "closed-loop concurrency"))
        object.__setattr__(
            self, "think_time_s", check_float(self.think_time_s, "closed-loop think_time_s", inclusive=True)
        )
        object.__setattr__(self, "ramp_s", check_float(self.ramp_s, "closed-loop ramp_s", inclusive=True))

    def __str__(self) -> str:
        think = f", think {self.think_time_s:g} s" if self.think_time_s else ""
        ramp = f", starts spread over {self.ramp_s:g} s" if self.ramp_s else ""
        return f"closed loop, concurrency {self.concurrency}{think}{ramp}"


@dataclass(frozen=True)
class Poisson:
    """Open loop: exponential inter-arrival gaps with mean ``1 / rate_per_s`` seconds."""

    rate_per_s: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate_per_s", check_float(self.rate_per_s, "Poisson rate_per_s"))

    @property
    def cv(self) -> float:
        """Coefficient of variation of the gaps (1 for Poisson)."""
        return 1.0

    def arrival_times(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` sorted arrival times in seconds, the first at 0."""
        n = check_int(n, "number of arrivals n", minimum=0)
        return _times_from_gaps(rng.exponential(1.0 / self.rate_per_s, size=max(n - 1, 0)))[:n]

    def __str__(self) -> str:
        return f"Poisson, {self.rate_per_s:g} req/s"


@dataclass(frozen=True)
class Gamma:
    """Open loop: gamma inter-arrival gaps, mean ``1 / rate_per_s`` s, coefficient of variation ``cv``.

    Shape ``k = 1 / cv**2`` and scale ``1 / (rate_per_s * k)``; ``cv`` is the burstiness knob.
    """

    rate_per_s: float
    cv: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate_per_s", check_float(self.rate_per_s, "Gamma rate_per_s"))
        object.__setattr__(self, "cv", check_float(self.cv, "Gamma cv (burstiness)"))

    def arrival_times(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` sorted arrival times in seconds, the first at 0."""
        n = check_int(n, "number of arrivals n", minimum=0)
        shape = 1.0 / self.cv**2
        gaps_s = rng.gamma(shape, 1.0 / (self.rate_per_s * shape), size=max(n - 1, 0))
        return _times_from_gaps(gaps_s)[:n]

    def __str__(self) -> str:
        return f"gamma, {self.rate_per_s:g} req/s, cv {self.cv:g}"


#: Open-loop processes (they have ``arrival_times``).
OpenLoop = Poisson | Gamma
#: Any arrival process a :class:`~latentmoe_sim.workloads.workload.Workload` takes (besides a trace).
ArrivalProcess = ClosedLoop | Poisson | Gamma


def parse_arrivals(
    concurrency: int | None = None,
    rate: float | None = None,
    burstiness: float | None = None,
    think_time_s: float = 0.0,
) -> ArrivalProcess:
    """Build the arrival process from CLI values (errors name ``--concurrency``, ``--rate``, ``--burstiness``).

    Exactly one of ``concurrency`` (closed loop) and ``rate`` (requests/s, open loop) must be given.
    ``burstiness`` is the gap coefficient of variation, open loop only; ``None`` or 1 means Poisson.
    ``think_time_s`` applies to the closed loop only.
    """
    if (concurrency is None) == (rate is None):
        raise InputError("give exactly one of --concurrency (closed loop) or --rate (requests/s, open loop)")
    if concurrency is not None:
        if burstiness is not None:
            raise InputError("--burstiness applies to open-loop arrivals (--rate), not to --concurrency")
        return ClosedLoop(
            check_int(concurrency, "--concurrency"), check_float(think_time_s, "--think-time-s", inclusive=True)
        )
    rate = check_float(rate, "--rate (requests/s)")
    if think_time_s:
        raise InputError("--think-time-s applies to closed-loop arrivals (--concurrency), not to --rate")
    if burstiness is None:
        return Poisson(rate)
    burstiness = check_float(burstiness, "--burstiness (inter-arrival CV)")
    return Poisson(rate) if burstiness == 1.0 else Gamma(rate, burstiness)

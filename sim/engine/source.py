"""Where requests come from: the arrival times of an open loop, or the clients of a closed loop.

* **Open loop** (Poisson, gamma, trace): request ``i`` arrives at ``arrival_s[i]``; requests with the same
  arrival time are routed in id order.
* **Closed loop** with concurrency ``C`` and think time ``z``: ``min(C, N)`` requests arrive at 0 (or, with a
  ramp ``r``, client ``k`` sends its first at ``k * r / C``, which breaks lock-step); each time a
  request finishes, a new one arrives ``z`` seconds later, until ``N`` have arrived. So ``C`` requests are in
  the system (or thinking) at all times until the last arrival. Request ``i`` is the ``i``-th one sent and
  has the lengths ``input_tokens[i]``, ``output_tokens[i]``; when several are sent at one instant they are
  taken in the order of the ids of the requests whose completions triggered them.

All routing happens in the :data:`~.clock.ROUTE` phase of its instant.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .clock import ROUTE, Clock, Deferred
from .request import Request

#: key kinds for Deferred actions (the sort order at one instant)
INJECT = 0
TRANSFER = 1


class Source:
    """Creates the requests of a :class:`~latentmoe_sim.workloads.RequestSpecs` and hands each to ``route``."""

    def __init__(self, clock: Clock, deferred: Deferred, specs, route: Callable[[Request], None]):
        self.clock = clock
        self.deferred = deferred
        self.route = route
        self._inputs = np.asarray(specs.input_tokens).tolist()
        self._outputs = np.asarray(specs.output_tokens).tolist()
        self.total = len(self._inputs)
        #: every request created so far, in id order
        self.requests: list[Request] = []
        #: requests not yet finished (including those not yet sent)
        self.remaining = self.total
        loop = getattr(specs, "closed_loop", None)
        self.closed_loop = loop is not None
        if self.closed_loop:
            self._think_s = float(loop.think_time_s)
            self._sent = 0  # injections scheduled (sent or thinking)
            self._clients = min(int(loop.concurrency), self.total)
            self._ramp_s = float(getattr(loop, "ramp_s", 0.0))
            self._started = 0  # clients that have sent their first request
            clock.at(0.0, ROUTE, self._start_clients)
        else:
            self._arrivals = np.asarray(specs.arrival_s, dtype=np.float64).tolist()
            self._next_arrival = 0
            clock.at(max(self._arrivals[0], 0.0) if self._arrivals else 0.0, ROUTE, self._arrive)

    def _new(self, now: float) -> Request:
        i = len(self.requests)
        req = Request(i, now, self._inputs[i], self._outputs[i])
        self.requests.append(req)
        return req

    def _arrive(self, _timer: int) -> None:
        """Route the requests arriving now (same arrival time: in id order), then set a timer for the next
        arrival time."""
        clock, route, arrivals, i = self.clock, self.route, self._arrivals, self._next_arrival
        n = len(arrivals)
        while i < n:
            t = arrivals[i]
            if t > clock.now and i > self._next_arrival:
                clock.at(t - clock.now, ROUTE, self._arrive)
                break
            while i < n and arrivals[i] == t:
                req = Request(i, t, self._inputs[i], self._outputs[i])
                self.requests.append(req)
                route(req)
                i += 1
        self._next_arrival = i

    def _start_clients(self, _timer: int) -> None:
        """The closed loop's clients send their first requests: all at 0, or with a ramp, client ``k`` at
        ``k * ramp_s / C`` (one timer per client)."""
        concurrency, ramp_s, now = self._clients, self._ramp_s, self.clock.now
        if self._started == 0:
            self._sent = concurrency
            if ramp_s <= 0.0:
                self._started = concurrency
                for _ in range(concurrency):
                    self.route(self._new(now))
                return
        k = self._started
        self._started = k + 1
        self.route(self._new(now))
        if k + 1 < concurrency:
            self.clock.at((k + 1) * ramp_s / concurrency - self.clock.now, ROUTE, self._start_clients)

    def _inject(self, _arg) -> None:
        self.route(self._new(self.clock.now))

    def finished(self, req: Request) -> None:
        """``req`` emitted its last token now; in a closed loop, its client sends the next request."""
        self.remaining -= 1
        if self.closed_loop and self._sent < self.total:
            self._sent += 1
            key = (INJECT, req.id)
            if self._think_s == 0.0:
                self.deferred.defer(key, self._inject, None)
            else:
                self.clock.at(self._think_s, ROUTE, lambda _timer, key=key: self.deferred.defer(key, self._inject, None))

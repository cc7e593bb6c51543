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
import simpy

from .clock import ROUTE, At, Deferred
from .request import Request

#: key kinds for Deferred actions (the sort order at one instant)
INJECT = 0
TRANSFER = 1


class Source:
    """Creates the requests of a :class:`~latentmoe_sim.workloads.RequestSpecs` and hands each to ``route``."""

    def __init__(self, env: simpy.Environment, deferred: Deferred, specs, route: Callable[[Request], None]):
        self.env = env
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
            env.process(self._start_closed_loop(min(int(loop.concurrency), self.total), float(getattr(loop, "ramp_s", 0.0))))
        else:
            self._arrivals = np.asarray(specs.arrival_s, dtype=np.float64).tolist()
            self._next_arrival = 0
            At(env, max(self._arrivals[0], 0.0) if self._arrivals else 0.0, ROUTE, self._arrive)

    def _new(self, now: float) -> Request:
        i = len(self.requests)
        req = Request(i, now, self._inputs[i], self._outputs[i])
        self.requests.append(req)
        return req

    def _arrive(self, _event) -> None:
        """Route the requests arriving now (same arrival time: in id order), then set a timer for the next
        arrival time (a chain of timer callbacks rather than a SimPy process: no generator to resume)."""
        env, route, arrivals, i = self.env, self.route, self._arrivals, self._next_arrival
        n = len(arrivals)
        while i < n:
            t = arrivals[i]
            if t > env.now and i > self._next_arrival:
                At(env, t - env.now, ROUTE, self._arrive)
                break
            while i < n and arrivals[i] == t:
                req = Request(i, t, self._inputs[i], self._outputs[i])
                self.requests.append(req)
                route(req)
                i += 1
        self._next_arrival = i

    def _start_closed_loop(self, concurrency: int, ramp_s: float):
        yield At(self.env, 0.0, ROUTE)
        self._sent = concurrency
        if ramp_s <= 0.0:
            for _ in range(concurrency):
                self.route(self._new(self.env.now))
            return
        for k in range(concurrency):  # client k sends its first request at k * ramp_s / C
            if k:
                yield At(self.env, k * ramp_s / concurrency - self.env.now, ROUTE)
            self.route(self._new(self.env.now))

    def _inject(self, _arg) -> None:
        self.route(self._new(self.env.now))

    def finished(self, req: Request) -> None:
        """``req`` emitted its last token now; in a closed loop, its client sends the next request."""
        self.remaining -= 1
        if self.closed_loop and self._sent < self.total:
            self._sent += 1
            key = (INJECT, req.id)
            if self._think_s == 0.0:
                self.deferred.defer(key, self._inject, None)
            else:
                At(self.env, self._think_s, ROUTE).callbacks.append(
                    lambda _event, key=key: self.deferred.defer(key, self._inject, None)
                )

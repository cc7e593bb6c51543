"""Simulated time: the clock and its timer queue, the three phases of an instant, and the run loop.

The engine is a discrete-event simulation driven by timers: a timer calls ``callback(timer id)`` at a
simulated time, in one of three phases. Timers that fall at the same time run in the order of their phase,
then of their creation (the queue is a heap keyed by ``(time, phase, creation number)``, the order SimPy
uses for its events). Creation order is an accident of the code, so the engine never relies on it for
anything that changes a result. Instead every instant ``t`` is processed in three phases:

1. :data:`COMPLETE` -- things that end at ``t``: engine steps and stretches (tokens emitted, requests
   finished) and KV transfers (bytes drained, KV landed at a decode instance).
2. :data:`ROUTE` -- things that begin at ``t``: open-loop arrivals, closed-loop injections and the start
   of KV transfers. Those caused by completions at ``t`` are gathered with :class:`Deferred` and run in
   the order of a key that means something (the request id), after *every* completion at ``t``.
3. :data:`SCHEDULE` -- instances decide their next step, seeing every request that arrived at or
   before ``t`` and every completion at ``t``.

So a request that arrives exactly when a step ends joins the next step, and a least-loaded router sees
the loads after all completions at the same instant. Within a phase, timers of different instances or
links touch disjoint state, so their relative order does not change the result.

Two clocks run this same protocol (``now``, ``at``, ``peek``) and give the same records, timer for timer:

* :class:`SimPyClock` (``clock="simpy"``) schedules every timer as an event of a SimPy ``Environment``
  (https://simpy.readthedocs.io), with the phase as SimPy's event priority; SimPy's queue is keyed by
  ``(time, priority, event id)``, so its order is the one above. It is the reference the engine was built
  on, and the one to use when you extend the engine with SimPy processes or resources of your own.
* :class:`Clock` (``clock="heap"``, the default) is the part of SimPy's ``Environment`` the engine needs,
  without an event object and a callback list per timer: 1.1x faster on the engine benchmark when it
  replaced SimPy (``benchmarks/bench_points.py``), 1.2x on two DP16 lognormal points timed with both clocks
  (Poisson 4/s: 76 vs 92 ms of CPU; closed loop 512: 42 vs 51 ms; docs/ENGINE.md), because the engine's processes are all timer callbacks.

``tests/test_clock.py`` runs both on the same workloads (open and closed loop, preemption, disaggregated
transfers) and compares the records column by column.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import Any, Callable

#: phases of an instant (lower runs first)
COMPLETE = 0
ROUTE = 1
SCHEDULE = 2


class Clock:
    """Simulated time (``now``, seconds) and the queue of pending timers."""

    __slots__ = ("now", "_queue", "_created")

    def __init__(self):
        self.now = 0.0
        self._queue: list[tuple[float, int, int, Callable[[int], None]]] = []
        self._created = 0

    def at(self, delay: float, phase: int, callback: Callable[[int], None]) -> int:
        """Call ``callback(timer id)`` ``delay`` seconds from now, in ``phase``; return the timer's id (unique,
        increasing), by which a callback can tell a superseded timer from the live one."""
        self._created = timer = self._created + 1
        heappush(self._queue, (self.now + delay, phase, timer, callback))
        return timer

    def peek(self) -> float:
        """Time of the next pending timer (``inf`` if none)."""
        queue = self._queue
        return queue[0][0] if queue else math.inf


class SimPyClock:
    """The :class:`Clock` protocol on a SimPy ``Environment``: each timer is a SimPy event, its phase the
    event's priority (SimPy orders its queue by ``(time, priority, event id)``, as :class:`Clock` does)."""

    __slots__ = ("env", "_created", "_event")

    def __init__(self):
        import simpy  # lazily: only runs that ask for this clock pay for the import

        self.env = simpy.Environment()
        self._event = simpy.Event
        self._created = 0

    @property
    def now(self) -> float:
        return self.env.now

    def at(self, delay: float, phase: int, callback: Callable[[int], None]) -> int:
        """As :meth:`Clock.at`: a triggered SimPy event scheduled ``delay`` seconds ahead with priority ``phase``."""
        self._created = timer = self._created + 1
        event = self._event(self.env)
        event._ok, event._value = True, None  # triggered (what ``succeed`` does) without scheduling it twice
        event.callbacks.append(lambda _event: callback(timer))
        self.env.schedule(event, phase, delay)
        return timer

    def peek(self) -> float:
        return self.env.peek()


#: the clocks by name (``clock=`` of the simulate functions and ``OperatingPoint.clock``)
CLOCKS = {"heap": Clock, "simpy": SimPyClock}


def make_clock(name: str) -> Clock | SimPyClock:
    """A new clock of kind ``name`` (one of :data:`CLOCKS`)."""
    try:
        return CLOCKS[name]()
    except KeyError:
        raise ValueError(f"clock: must be one of {sorted(CLOCKS)}, got {name!r}") from None


class Deferred:
    """Actions caused by completions, run in the :data:`ROUTE` phase of the same instant, sorted by key.

    ``defer(key, action, arg)`` queues ``action(arg)``; the first call at an instant sets one flush
    timer. Keys are unique, comparable tuples such as ``(kind, request_id)``.
    """

    __slots__ = ("clock", "_items", "_armed")

    def __init__(self, clock: Clock):
        self.clock = clock
        self._items: list[tuple[Any, Callable[[Any], None], Any]] = []
        self._armed = False

    def defer(self, key: Any, action: Callable[[Any], None], arg: Any) -> None:
        self._items.append((key, action, arg))
        if not self._armed:
            self._armed = True
            self.clock.at(0.0, ROUTE, self._flush)

    def _flush(self, _timer: int) -> None:
        items, self._items, self._armed = self._items, [], False
        if len(items) > 1:
            items.sort(key=lambda item: item[0])
        for _key, action, arg in items:
            action(arg)


def run_until_done(clock: Clock, source) -> int:
    """Run timers until ``source.remaining`` (requests not finished) is 0; return the number of timers run.

    Stops at the timer that finishes the last request, so ``clock.now`` is then the last finish time even
    if timers that no longer matter (cut stretches) are still queued.
    """
    if isinstance(clock, SimPyClock):
        return _run_simpy(clock, source)
    queue = clock._queue
    timers = 0
    while source.remaining:
        if not queue:
            raise RuntimeError(
                f"engine stalled at t={clock.now:.6g} s with {source.remaining} request(s) unfinished and no timer left"
            )
        clock.now, _, timer, callback = heappop(queue)
        callback(timer)
        timers += 1
    return timers


def _run_simpy(clock: SimPyClock, source) -> int:
    """:func:`run_until_done` on SimPy's own event loop (``Environment.step``)."""
    env = clock.env
    timers = 0
    while source.remaining:
        if env.peek() == math.inf:
            raise RuntimeError(
                f"engine stalled at t={env.now:.6g} s with {source.remaining} request(s) unfinished and no timer left"
            )
        env.step()
        timers += 1
    return timers

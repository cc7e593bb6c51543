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

The engine used SimPy (https://simpy.readthedocs.io) for this until its processes had all become timer
callbacks; the clock below is the part of SimPy's ``Environment`` that was left (``now``, ``schedule``,
``peek``, ``step``), without an event object per timer.
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

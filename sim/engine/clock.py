"""Simulated time: the three phases of an instant, and the loop that runs the SimPy environment.

SimPy orders events that fall at the same time by a priority and then by creation order. Creation order
is an accident of the code, so the engine never relies on it for anything that changes a result. Instead
every instant ``t`` is processed in three phases, given as SimPy priorities:

1. :data:`COMPLETE` -- things that end at ``t``: engine steps and stretches (tokens emitted, requests
   finished) and KV transfers (bytes drained, KV landed at a decode instance).
2. :data:`ROUTE` -- things that begin at ``t``: open-loop arrivals, closed-loop injections and the start
   of KV transfers. Those caused by completions at ``t`` are gathered with :class:`Deferred` and run in
   the order of a key that means something (the request id), after *every* completion at ``t``.
3. :data:`SCHEDULE` -- instances decide their next step, seeing every request that arrived at or
   before ``t`` and every completion at ``t``.

So a request that arrives exactly when a step ends joins the next step, and a least-loaded router sees
the loads after all completions at the same instant. Within a phase, events of different instances or
links touch disjoint state, so their relative order does not change the result.
"""

from __future__ import annotations

from typing import Any, Callable

import simpy
from simpy.core import EmptySchedule
from simpy.events import Event

#: SimPy priorities of the three phases of an instant (lower runs first; SimPy's URGENT is 0, NORMAL 1)
COMPLETE = 0
ROUTE = 1
SCHEDULE = 2


class At(Event):
    """A timeout that fires ``delay`` seconds from now in the given phase (``simpy.Timeout`` is always NORMAL),
    calling ``callback(event)`` if one is given."""

    def __init__(self, env: simpy.Environment, delay: float, priority: int, callback: Callable[[Event], None] | None = None):
        # inlined Event.__init__, as simpy.Timeout does
        self.env = env
        self.callbacks = [] if callback is None else [callback]
        self._value = None
        self._ok = True
        env.schedule(self, priority, delay)


def fire(event: Event, priority: int) -> None:
    """Trigger a pending ``event`` now, in the given phase (``Event.succeed`` always uses NORMAL)."""
    event._ok = True
    event._value = None
    event.env.schedule(event, priority)


class Deferred:
    """Actions caused by completions, run in the :data:`ROUTE` phase of the same instant, sorted by key.

    ``defer(key, action, arg)`` queues ``action(arg)``; the first call at an instant schedules one flush
    event. Keys are unique, comparable tuples such as ``(kind, request_id)``.
    """

    __slots__ = ("env", "_items", "_armed")

    def __init__(self, env: simpy.Environment):
        self.env = env
        self._items: list[tuple[Any, Callable[[Any], None], Any]] = []
        self._armed = False

    def defer(self, key: Any, action: Callable[[Any], None], arg: Any) -> None:
        self._items.append((key, action, arg))
        if not self._armed:
            self._armed = True
            At(self.env, 0.0, ROUTE, self._flush)

    def _flush(self, _event: Event) -> None:
        items, self._items, self._armed = self._items, [], False
        if len(items) > 1:
            items.sort(key=lambda item: item[0])
        for _key, action, arg in items:
            action(arg)


def run_until_done(env: simpy.Environment, pending: Callable[[], int]) -> int:
    """Process events until ``pending()`` is 0; return the number of events processed.

    Stops at the event that finishes the last request, so ``env.now`` is then the last finish time even if
    timers that no longer matter (cut stretches) are still queued.
    """
    step = env.step
    events = 0
    try:
        while pending():
            step()
            events += 1
    except EmptySchedule:
        raise RuntimeError(
            f"engine stalled at t={env.now:.6g} s with {pending()} request(s) unfinished and no event left"
        ) from None
    return events

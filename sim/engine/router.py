"""Request routing policies: which instance of a pool gets the next request.

* ``least-loaded`` (default): the instance with the fewest requests routed to it and not yet gone
  (waiting, prefilling or decoding there, or, for a decode instance, with KV on the way); ties go to the
  lowest instance index.
* ``round-robin``: instances in turn, 0, 1, ..., N-1, 0, ...

Within an instance, requests go to the attention-DP rank with the fewest requests (ties: lowest rank).
Routing at one instant happens after every completion at that instant and in request-id order
(see :mod:`.clock`), so least-loaded decisions are deterministic.
"""

from __future__ import annotations

from operator import attrgetter

from latentmoe_sim.errors import InputError

POLICIES = ("least-loaded", "round-robin")

_by_load = attrgetter("load")


class Router:
    """Picks an instance for each request (``pick``); the caller adds the request to its load."""

    __slots__ = ("instances", "_round_robin", "_next")

    def __init__(self, instances: list, policy: str = "least-loaded", what: str = "router"):
        if policy not in POLICIES:
            raise InputError(f"{what}: unknown routing policy {policy!r}; choose one of {', '.join(POLICIES)}")
        self.instances = instances
        self._round_robin = policy == "round-robin"
        self._next = 0

    def pick(self):
        instances = self.instances
        if len(instances) == 1:
            return instances[0]
        if self._round_robin:
            i = self._next
            self._next = (i + 1) % len(instances)
            return instances[i]
        return min(instances, key=_by_load)  # min keeps the first of equals: lowest index

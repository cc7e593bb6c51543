"""Exact sums of step times over a decode stretch.

During a *decode stretch* no request joins, leaves or changes phase: rank ``r`` runs ``d_r`` decodes and
its attended KV grows by ``d_r`` tokens per step. Each op's time is the max of its compute and memory
times, both affine in the KV length, so a rank's step time is a convex piecewise-linear function of the
step index ``j`` and the instance's step time (slowest rank, plus terms that do not depend on ``j``) is
the upper envelope of a few lines. Summing an envelope over integers is closed form, so a stretch of any
length costs O(lines) instead of O(steps). :class:`DecodeStretch` holds that envelope.
"""

from __future__ import annotations

import math
from typing import Sequence


def upper_envelope(lines: Sequence[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """The pieces ``(start x, a, b)`` of ``max_i(a_i + b_i * x)`` over ``x >= 0``, in order of ``x``.

    The first piece starts at 0 with the line that is highest there (of equals, the steepest); each later
    line is on the envelope from where it overtakes the one before. The slopes ``b_i`` must be ``>= 0``.
    A line no higher at 0 and no steeper than the first can never be on top for ``x >= 0``; the rest are
    taken in order of slope, and a line is dropped when its successor overtakes its predecessor no later
    than it does itself (the classic convex-hull walk, O(n log n)).
    """
    a0, b0 = max(lines)  # (a, b) pairs compare by a, then b
    steeper: dict[float, float] = {}  # of lines of equal slope only the highest can be on the envelope
    for a, b in lines:
        if b > b0 and a > steeper.get(b, -math.inf):
            steeper[b] = a
    hull: list[tuple[float, float, float]] = [(0.0, a0, b0)]
    for b in sorted(steeper):
        a = steeper[b]
        while True:
            _, pa, pb = hull[-1]
            x = (pa - a) / (b - pb)  # where (a, b) overtakes the last piece's line (> 0: a < pa, b > pb)
            if len(hull) > 1 and x <= hull[-1][0]:
                hull.pop()  # overtaken before it got on top: never on the envelope
                continue
            hull.append((x, a, b))
            break
    return hull


class DecodeStretch:
    """Step times ``t(j) = const + max_i(a_i + b_i * j)`` for ``j = 0, 1, 2, ...``.

    ``elapsed(n)`` is the exact sum of the first ``n`` step times (seconds); ``steps_within(dt, n)`` is the
    largest ``k <= n`` with ``elapsed(k) <= dt``. Lines are given as ``(a, b)`` pairs with ``b >= 0``.
    """

    __slots__ = ("_segs", "_one")

    def __init__(self, const: float, lines: Sequence[tuple[float, float]]):
        if len(lines) == 1:  # the envelope of one line is that line (upper_envelope's answer, without the walk)
            a, b = lines[0]
            segs = self._segs = [(0.0, const + a, b)]
        else:
            segs = self._segs = [(start, const + a, b) for start, a, b in upper_envelope(lines)]
        #: ``(a, b)`` when the envelope is one line (the usual case): closed forms without the segment walk
        self._one = segs[0][1:] if len(segs) == 1 else None

    @property
    def lines(self) -> list[tuple[float, float]]:
        """The envelope's pieces as ``(a, b)`` lines with the constant folded in: ``t(j) = max(a + b * j)``.
        Sums and positive multiples of stretches are built from these (:mod:`.spec_decode`, :mod:`.overlap`)."""
        return [(a, b) for _, a, b in self._segs]

    def step_time(self, j: int) -> float:
        """Duration of step ``j`` (seconds)."""
        for start, a, b in reversed(self._segs):
            if j >= start:
                return a + b * j
        return self._segs[0][1] + self._segs[0][2] * j

    def elapsed(self, n: int) -> float:
        """Exact sum of the first ``n`` step durations, seconds."""
        one = self._one
        if one is not None:  # the segment walk below, for one segment (same float operations)
            if n <= 0:
                return 0.0
            a, b = one
            return a * n + b * (n - 1) * n / 2.0
        total = 0.0
        segs = self._segs
        for i, (start, a, b) in enumerate(segs):
            lo = math.ceil(start) if i else 0
            hi = n if i + 1 == len(segs) else min(n, math.ceil(segs[i + 1][0]))
            if hi <= lo:
                if lo >= n:
                    break
                continue
            cnt = hi - lo
            total += a * cnt + b * (lo + hi - 1) * cnt / 2.0
        return total

    def steps_within(self, dt: float, n: int) -> int:
        """Largest ``k <= n`` with ``elapsed(k) <= dt`` (seconds; ``dt >= 0``), for a stretch of ``n`` steps.

        Step times only grow along a stretch, so from a bracket ``elapsed(lo) <= dt < elapsed(hi)`` the answer
        lies between ``lo + r / t(hi - 1)`` and ``lo + r / t(lo)`` with ``r = dt - elapsed(lo)``: both are tried,
        which pins it in one round when step times barely change (the usual case); bisection finishes the rest.
        Every move is decided by an exact ``elapsed`` comparison, so rounding in the guesses cannot mislead it.
        """
        if n <= 0:
            return 0
        one = self._one
        if one is not None and one[0] > 0.0:
            # one line: elapsed(k) = a k + b k (k - 1) / 2 is a quadratic in k; its root gives a guess that
            # exact elapsed comparisons then correct (by a step at most, unless rounding is extreme)
            a, b = one
            half = a - b / 2.0
            disc = half * half + 2.0 * b * dt
            k = int(2.0 * dt / (half + math.sqrt(disc))) if half > 0.0 else int(dt / a)
            k = min(max(k, 0), n)
            for _ in range(3):
                if k > 0 and self.elapsed(k) > dt:
                    k -= 1
                elif k < n and self.elapsed(k + 1) <= dt:
                    k += 1
                else:
                    return k
        if self.elapsed(n - 1) <= dt:  # the common no-op: the last step has already started
            return n if self.elapsed(n) <= dt else n - 1
        lo, hi, e_lo = 0, n - 1, 0.0  # elapsed(lo) <= dt < elapsed(hi)
        for _ in range(3):
            if hi - lo <= 1:
                return lo
            r = dt - e_lo
            slow, fast = self.step_time(hi - 1), self.step_time(lo)
            for k in (lo + int(r / slow) if slow > 0 else lo, lo + int(r / fast) + 1 if fast > 0 else hi):
                if lo < k < hi:
                    e = self.elapsed(k)
                    if e <= dt:
                        lo, e_lo = k, e
                    else:
                        hi = k
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if self.elapsed(mid) <= dt:
                lo = mid
            else:
                hi = mid
        return lo

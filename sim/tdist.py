"""Student's t quantiles for integer degrees of freedom, in closed form (no SciPy import).

Confidence intervals over ``n`` batch means need the ``t`` quantile with ``n - 1`` degrees of freedom.
Importing ``scipy.stats`` for it costs about half a second per process, more than simulating a typical
operating point, so the quantile is computed here. For integer ``nu`` the t distribution's CDF is a finite
trigonometric series (Abramowitz & Stegun, Handbook of Mathematical Functions, 26.7.3 and 26.7.4): with
``theta = atan(t / sqrt(nu))`` and ``A(t) = P(|T| <= t)``,

* ``nu = 1``: ``A = 2 theta / pi``;
* ``nu`` odd > 1: ``A = (2 / pi) (theta + sin(theta) [cos(theta) + (2/3) cos^3(theta) + ... +
  (2 * 4 ... (nu - 3)) / (1 * 3 ... (nu - 2)) cos^(nu - 2)(theta)])``;
* ``nu`` even: ``A = sin(theta) [1 + (1/2) cos^2(theta) + (1 * 3)/(2 * 4) cos^4(theta) + ... +
  (1 * 3 ... (nu - 3)) / (2 * 4 ... (nu - 2)) cos^(nu - 2)(theta)]``.

The quantile inverts the CDF by bisection on ``theta`` in ``(0, pi / 2)``, to machine precision.
"""

from __future__ import annotations

import math


def _abs_cdf(theta: float, nu: int) -> float:
    """``P(|T| <= t)`` for ``t = sqrt(nu) tan(theta)`` (A&S 26.7.3, 26.7.4)."""
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if nu % 2:
        if nu == 1:
            return 2.0 * theta / math.pi
        term, total = c, c
        for k in range(3, nu - 1, 2):  # terms cos^k, coefficient (2 * 4 ... (k - 1)) / (1 * 3 ... k)
            term *= c2 * (k - 1) / k
            total += term
        return 2.0 / math.pi * (theta + s * total)
    term, total = 1.0, 1.0
    for k in range(2, nu - 1, 2):  # terms cos^k, coefficient (1 * 3 ... (k - 1)) / (2 * 4 ... k)
        term *= c2 * (k - 1) / k
        total += term
    return s * total


def t_quantile(p: float, nu: int) -> float:
    """The ``p`` quantile of Student's t with ``nu`` (integer >= 1) degrees of freedom, ``0 < p < 1``."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p!r}")
    if int(nu) != nu or nu < 1:
        raise ValueError(f"t_quantile: degrees of freedom must be an integer >= 1, got {nu!r}")
    nu = int(nu)
    if p == 0.5:
        return 0.0
    target = abs(2.0 * p - 1.0)  # P(|T| <= t) at the quantile
    lo, hi = 0.0, math.pi / 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _abs_cdf(mid, nu) < target:
            lo = mid
        else:
            hi = mid
    t = math.sqrt(nu) * math.tan(0.5 * (lo + hi))
    return t if p > 0.5 else -t

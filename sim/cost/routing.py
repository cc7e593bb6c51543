"""Routing statistics: experts touched, the busiest EP rank, copies per token.

Every token picks ``K`` distinct experts of ``E``, by default uniformly at random; the ``E`` experts are split
into ``ep`` contiguous slots (EP ranks) of ``n = E / ep`` experts. Three quantities drive the MoE cost:

* **distinct experts touched** by ``T`` tokens (each touched expert's weights are read once per step):
  the mean over all experts is ``E (1 - (1 - K/E)^T)``;
* the **busiest rank's** distinct experts: the step waits for the slowest rank, so the expert weight
  traffic is set by ``E[max over ranks]``, not by the mean (:func:`expected_max_experts_touched`);
* the **busiest rank's (token, expert) pairs**: even with every expert equally likely, one step's tokens
  do not spread evenly; the grouped GEMM of the busiest rank and the all-to-all's busiest receiver pace
  the step (:func:`busiest_pairs_ratio`);
* **remote copies per token** of the all-to-all: one per (token, expert) pair, one per destination rank
  that holds any of the token's experts, or one per destination node (:func:`expected_ranks_hit`).

Closed forms are tested against Monte Carlo in ``tests/test_cost_routing.py``.

**Expert popularity** (``skew`` > 0, :func:`inclusion_probabilities`): a trained router does not pick experts
uniformly. Expert ``e`` takes a share ``s_e`` of all (token, expert) picks, lognormal over the experts of a
layer with log-standard deviation ``skew`` (``s_e`` proportional to ``exp(skew z_e)``, ``z_e`` the ``E``
normal quantiles ``Phi^-1((e + 1/2) / E)``: one deterministic layer, no sampling). A token includes expert
``e`` with probability ``q_e = K s_e`` (its expected picks of ``e``, at most one), so ``T`` independent tokens
touch ``sum_e 1 - (1 - q_e)^T`` distinct experts, fewer than uniform routing's ``E (1 - (1 - K/E)^T)`` at small
and medium ``T`` (Jensen: ``1 - (1 - q)^T`` is concave in ``q``), the same once every expert is touched.
The value of ``skew`` for real routers and its source: ``docs/MODELING.md`` §4a.3c
(``sim/validation/configure.REAL_ROUTING_SKEW``); 0 (the default everywhere but validation) is uniform.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import numpy as np

#: ranks holding more experts than this use the moment-matched normal approximation instead of the exact
#: chain (the chain costs O(n^2) per token; at n > 256 the count is close to normal, see
#: :func:`_busiest_normal`)
EXACT_CHAIN_MAX_EXPERTS_PER_RANK = 256
#: the busiest-rank curve is followed until every rank has touched all its experts with probability
#: 1 - this (then the maximum equals the mean equals n to within n * this)
SATURATION_TOLERANCE = 1e-9


#: largest accepted popularity skew (log-standard deviation of the experts' shares): at 3 the busiest of 128
#: experts takes about half of the picks, far beyond any measured trained router (docs/MODELING.md §4a.3c)
MAX_ROUTING_SKEW = 3.0


@lru_cache(maxsize=256)
def _inclusion(num_experts: int, top_k: int, skew: float) -> tuple[float, ...]:
    z = np.array([NormalDist().inv_cdf((e + 0.5) / num_experts) for e in range(num_experts)])
    w = np.exp(skew * z)
    q = top_k * w / w.sum()
    # an expert cannot be in one token's top-k more than once: cap at 1, give the excess to the others
    # in proportion to their shares (each pass caps at least one more expert, so at most K passes)
    capped = np.zeros(num_experts, bool)
    while (q > 1.0 + 1e-12).any():
        capped |= q >= 1.0
        free = ~capped
        q[capped] = 1.0
        q[free] = w[free] / w[free].sum() * (top_k - capped.sum())
    return tuple(float(x) for x in q)


def inclusion_probabilities(num_experts: int, top_k: int, skew: float = 0.0) -> np.ndarray:
    """Per expert, the probability that one token's ``top_k`` picks include it, under the lognormal
    popularity of log-standard deviation ``skew`` (module docstring; ``K/E`` each for ``skew = 0``). Sums to
    ``top_k``. Ordered from the least to the most popular expert."""
    if not 0.0 <= skew <= MAX_ROUTING_SKEW:
        raise ValueError(f"skew = {skew} outside [0, {MAX_ROUTING_SKEW}]")
    if skew == 0.0 or top_k >= num_experts:
        return np.full(num_experts, min(top_k / num_experts, 1.0))
    return np.array(_inclusion(num_experts, top_k, float(skew)))


def expected_experts_touched(num_experts: int, top_k: int, tokens: float, skew: float = 0.0) -> float:
    """Expected distinct experts hit when ``tokens`` independent tokens each pick ``top_k`` of ``num_experts``:
    uniformly (``skew = 0``), ``E * (1 - (1 - k/E)^t)`` (a given expert is missed by one token with
    probability 1 - k/E); under popularity skew ``sum_e 1 - (1 - q_e)^t`` with ``q_e`` from
    :func:`inclusion_probabilities` (exact for any top-k rule with those inclusion probabilities)."""
    if tokens <= 0:
        return 0.0
    if top_k >= num_experts:
        return float(num_experts)
    if skew == 0.0:
        return num_experts * -math.expm1(tokens * math.log1p(-top_k / num_experts))
    return _skewed_touched_memo(num_experts, top_k, float(tokens), float(skew))


@lru_cache(maxsize=65536)
def _skewed_touched_memo(num_experts: int, top_k: int, tokens: float, skew: float) -> float:
    q = inclusion_probabilities(num_experts, top_k, skew)
    missed = np.where(q < 1.0, np.exp(tokens * np.log1p(-np.minimum(q, 1.0 - 1e-300))), 0.0)
    return float(np.sum(1.0 - missed))


def miss_probability(num_experts: int, top_k: int, held: int) -> float:
    """Probability that one token's ``top_k`` distinct experts avoid a given set of ``held`` experts:
    the hypergeometric ``C(E - held, K) / C(E, K) = prod_{i<K} (E - held - i) / (E - i)``."""
    if held <= 0:
        return 1.0
    p = 1.0
    for i in range(top_k):
        p *= max(num_experts - held - i, 0) / (num_experts - i)
    return p


def expected_ranks_hit(num_experts: int, top_k: int, ranks: int, experts_per_rank: int) -> float:
    """Expected number of ``ranks`` destination groups of ``experts_per_rank`` experts each that hold at
    least one of a token's ``top_k`` experts: ``ranks * (1 - C(E - n, K) / C(E, K))`` (linearity of
    expectation over destinations; the hypergeometric closed form)."""
    return ranks * (1.0 - miss_probability(num_experts, top_k, experts_per_rank))


def _log_comb(n: np.ndarray | int, k: np.ndarray | int, lf: np.ndarray) -> np.ndarray:
    """log C(n, k) from a log-factorial table, -inf where k < 0 or k > n."""
    n, k = np.asarray(n), np.asarray(k)
    ok = (k >= 0) & (k <= n)
    nn, kk = np.where(ok, n, 0), np.where(ok, k, 0)
    return np.where(ok, lf[nn] - lf[kk] - lf[nn - kk], -np.inf)


def _transition(num_experts: int, top_k: int, n: int) -> np.ndarray:
    """Markov chain of one rank's touched-expert count over one token: ``M[c, c + new]``.

    The token puts ``j`` of its experts on this rank with probability ``C(n, j) C(E - n, K - j) / C(E, K)``;
    given ``j``, the number among them not yet touched (``n - c`` untouched) is hypergeometric,
    ``C(n - c, new) C(c, j - new) / C(n, j)``.
    """
    lf = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, num_experts + 1)))))
    M = np.zeros((n + 1, n + 1))
    c = np.arange(n + 1)
    for j in range(0, min(top_k, n) + 1):
        pj = math.exp(_log_comb(n, j, lf) + _log_comb(num_experts - n, top_k - j, lf) - _log_comb(num_experts, top_k, lf))
        if pj == 0.0:
            continue
        for new in range(0, j + 1):
            p = np.exp(_log_comb(n - c, new, lf) + _log_comb(c, j - new, lf) - _log_comb(n, j, lf))
            valid = c + new <= n
            M[c[valid], c[valid] + new] += pj * p[valid]
    return M


@lru_cache(maxsize=64)
def _busiest_curve(num_experts: int, top_k: int, ep: int) -> np.ndarray:
    """``curve[t]`` = E[max over ``ep`` ranks of the rank's distinct experts touched] after ``t`` tokens, for
    ``t = 0 .. t_sat`` (beyond ``t_sat`` every rank is saturated: the value is ``n``).

    One rank's count follows the exact chain of :func:`_transition`; the ranks are treated as independent
    (their counts are slightly negatively correlated through each token's fixed ``K``; Monte Carlo puts the
    resulting error within 2 %, tests/test_cost_routing.py).
    """
    n = num_experts // ep
    log_miss = math.log1p(-top_k / num_experts)
    # P(some expert of some rank untouched) <= E * (1 - K/E)^t < tolerance
    t_sat = max(1, math.ceil(math.log(SATURATION_TOLERANCE / num_experts) / log_miss))
    M = _transition(num_experts, top_k, n)
    v = np.zeros(n + 1)
    v[0] = 1.0
    curve = np.empty(t_sat + 1)
    curve[0] = 0.0
    for t in range(1, t_sat + 1):
        v = v @ M
        F = np.cumsum(v)[:-1]
        curve[t] = float(np.sum(1.0 - np.clip(F, 0.0, 1.0) ** ep))
    return curve


def _busiest_normal(num_experts: int, top_k: int, ep: int, tokens: float) -> float:
    """E[max over ``ep`` independent ranks] with each rank's count approximated by a normal of its exact
    mean ``n p1`` and variance ``n p1 + n (n-1) p2 - (n p1)^2`` (``p1`` one expert touched, ``p2`` two given
    experts both touched: ``1 - 2 q1^T + q2^T``), discretised on 0..n."""
    n = num_experts // ep
    l1 = math.log1p(-top_k / num_experts)
    q1 = math.exp(tokens * l1)
    q2 = math.exp(tokens * (l1 + math.log1p(-top_k / (num_experts - 1))))
    p1, p2 = 1.0 - q1, 1.0 - 2.0 * q1 + q2
    mu = n * p1
    sd = math.sqrt(max(n * p1 + n * (n - 1) * p2 - mu * mu, 0.0))
    if sd == 0.0:
        return mu
    c = np.arange(n)
    F = 0.5 * (1.0 + np.vectorize(math.erf)((c + 0.5 - mu) / (sd * math.sqrt(2.0))))
    return float(np.sum(1.0 - F**ep))


def expected_max_experts_touched(num_experts: int, top_k: int, ep: int, tokens: float, skew: float = 0.0) -> float:
    """Expected distinct experts touched on the busiest of ``ep`` ranks by ``tokens`` tokens (of the
    whole EP group). ``ep = 1``: the mean. Memoised on (experts, top-k, EP) as a curve over tokens;
    fractional token counts interpolate linearly between integers.

    Under popularity ``skew`` > 0 the uniform busiest rank is scaled by the skewed over the uniform mean,
    ``expected_experts_touched(skew) / expected_experts_touched(0)``: the ranks' statistical spread is kept
    and their level lowered as a whole. This stands for a placement that mixes popular and unpopular
    experts on every rank (EPLB's; an EP>1 row without EPLB is not expressible in validation): with
    contiguous placement of unequal experts, the rank holding the popular ones would touch more."""
    if tokens <= 0:
        return 0.0
    if ep <= 1:
        return expected_experts_touched(num_experts, top_k, tokens, skew)
    if skew > 0.0:
        scale = expected_experts_touched(num_experts, top_k, tokens, skew) / expected_experts_touched(num_experts, top_k, tokens)
        return scale * expected_max_experts_touched(num_experts, top_k, ep, tokens)
    if num_experts // ep > EXACT_CHAIN_MAX_EXPERTS_PER_RANK:
        return _busiest_normal_memo(num_experts, top_k, ep, float(tokens))
    curve = _busiest_curve(num_experts, top_k, ep)
    if tokens >= len(curve) - 1:
        return float(num_experts // ep)
    lo = int(tokens)
    frac = tokens - lo
    return float(curve[lo] if frac == 0.0 else curve[lo] * (1.0 - frac) + curve[lo + 1] * frac)


_busiest_normal_memo = lru_cache(maxsize=65536)(_busiest_normal)


@lru_cache(maxsize=1024)
def expected_max_std_normal(n: int) -> float:
    """E[max of ``n`` independent standard normals], ``integral x n phi(x) Phi(x)^(n-1) dx`` by the
    trapezoid rule on [-10, 10] (0 for n = 1; 1/sqrt(pi) for n = 2, 3/(2 sqrt(pi)) for n = 3)."""
    if n <= 1:
        return 0.0
    x = np.linspace(-10.0, 10.0, 20001)
    phi = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    Phi = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    return float(np.trapezoid(x * n * phi * Phi ** (n - 1), x))


@lru_cache(maxsize=256)
def _pairs_moments(num_experts: int, top_k: int, ep: int) -> tuple[float, float, float, float]:
    """(mean, variance) of one token's pairs on one rank of ``n = E / ep`` experts (hypergeometric:
    ``K n/E`` and ``K (n/E)(1 - n/E)(E - K)/(E - 1)``), E[max of ep standard normals], and the largest
    possible ratio ``min(K, n) / mean`` (a token puts at most min(K, n) pairs on one rank)."""
    n = num_experts // ep
    p = n / num_experts
    mean = top_k * p
    var = top_k * p * (1.0 - p) * (num_experts - top_k) / (num_experts - 1) if num_experts > 1 else 0.0
    return mean, var, expected_max_std_normal(ep), min(top_k, n) / mean


def busiest_pairs_ratio(num_experts: int, top_k: int, ep: int, tokens: float) -> float:
    """E[max over ``ep`` ranks of the (token, expert) pairs on the rank] / the mean, for ``tokens`` tokens
    of the whole EP group routed uniformly (each picks ``top_k`` distinct of ``num_experts`` slots; a rank
    holds ``num_experts / ep``). A rank's pairs are a sum of ``tokens`` independent hypergeometric counts,
    taken as normal with the exact mean and variance, the ranks as independent (their counts are slightly
    negatively correlated: the sum is fixed), so ``1 + sqrt(var / tokens) / mean * E[max of ep normals]``,
    capped at ``min(K, n) / mean``. Tends to 1 as ``1/sqrt(tokens)``; 1 for ``ep = 1``. Monte Carlo within
    a few percent, tests/test_cost_routing.py. Systematic imbalance (popular experts) comes on top
    (``--expert-imbalance``)."""
    if ep <= 1 or tokens <= 0:
        return 1.0
    mean, var, emax, cap = _pairs_moments(num_experts, top_k, ep)
    return min(1.0 + math.sqrt(var / tokens) / mean * emax, cap)

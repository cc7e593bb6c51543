"""Routing statistics: closed forms against hand values and against seeded Monte Carlo (fast: < 1 s each)."""

import math

import numpy as np
import pytest

from latentmoe_sim.cost.routing import (
    busiest_pairs_ratio,
    expected_experts_touched,
    expected_max_std_normal,
    expected_max_experts_touched,
    expected_ranks_hit,
    miss_probability,
)

KIMI = (384, 8)  # routed experts, top-k
LATENT = (1536, 32)  # Kimi-K2 with LatentMoE alpha = 4


def route(rng, tokens: int, experts: int, k: int) -> np.ndarray:
    """``tokens x k`` distinct uniform experts per token."""
    return np.argsort(rng.random((tokens, experts)), axis=1)[:, :k]


def test_miss_probability_hand_values():
    # C(336, 8) / C(384, 8): one token avoids one of 8 ranks of 48 experts
    assert miss_probability(384, 8, 48) == pytest.approx(math.comb(336, 8) / math.comb(384, 8), rel=1e-12)
    assert miss_probability(384, 8, 0) == 1.0
    assert miss_probability(10, 3, 8) == 0.0  # 3 picks cannot all avoid 8 of 10


@pytest.mark.parametrize("ep,model,per_rank", [(8, KIMI, 4.62), (8, LATENT, 6.91), (16, KIMI, 6.09), (16, LATENT, 13.14)])
def test_remote_copies_per_rank_issue_table(ep, model, per_rank):
    """Issue 10's table: remote copies per token counted per destination rank (the own rank excluded)."""
    E, K = model
    assert expected_ranks_hit(E, K, ep - 1, E // ep) == pytest.approx(per_rank, abs=0.005)


@pytest.mark.parametrize("ep,model", [(8, KIMI), (8, LATENT), (16, LATENT), (64, KIMI)])
def test_ranks_hit_closed_form_matches_monte_carlo(ep, model):
    """The hypergeometric closed form against 4,000 routed tokens: within 4 standard errors."""
    E, K = model
    rng = np.random.default_rng(11)
    picks = route(rng, 4000, E, K) // (E // ep)  # rank of each pick
    hit = np.zeros((len(picks), ep), bool)
    np.put_along_axis(hit, picks, True, axis=1)
    counts = hit.sum(axis=1)
    closed = expected_ranks_hit(E, K, ep, E // ep)
    assert abs(counts.mean() - closed) < 4 * counts.std() / math.sqrt(len(counts))


@pytest.mark.parametrize("ep,tokens,model,ratio", [
    (8, 8, KIMI, 1.49), (8, 8, LATENT, 1.25), (8, 64, KIMI, 1.12), (8, 64, LATENT, 1.06),
    (64, 64, KIMI, 1.35), (64, 64, LATENT, 1.26),
])
def test_busiest_rank_over_mean_issue_table(ep, tokens, model, ratio):
    """Issue 10's Monte Carlo table of busiest rank / mean rank distinct experts; ours assumes the ranks
    independent, which Monte Carlo puts within 2 % (below)."""
    E, K = model
    mean = expected_experts_touched(E, K, tokens) / ep
    assert expected_max_experts_touched(E, K, ep, tokens) / mean == pytest.approx(ratio, rel=0.025)


@pytest.mark.parametrize("ep,tokens,model", [(8, 8, KIMI), (8, 64, LATENT), (64, 64, LATENT), (16, 16, KIMI)])
def test_busiest_rank_matches_monte_carlo(ep, tokens, model):
    """E[max over ranks of distinct experts touched] against 300 seeded trials: within 2.5 %."""
    E, K = model
    rng = np.random.default_rng(5)
    maxima = []
    for _ in range(300):
        hit = np.zeros(E, bool)
        hit[route(rng, tokens, E, K).ravel()] = True
        maxima.append(hit.reshape(ep, E // ep).sum(axis=1).max())
    assert expected_max_experts_touched(E, K, ep, tokens) == pytest.approx(np.mean(maxima), rel=0.025)


def test_busiest_rank_limits():
    E, K = KIMI
    assert expected_max_experts_touched(E, K, 8, 0) == 0.0
    # one token puts at most K experts on one rank, and at least K/ep on average
    one = expected_max_experts_touched(E, K, 8, 1)
    assert K / 8 < one <= K
    # saturated: every rank touches all its 48 experts
    assert expected_max_experts_touched(E, K, 8, 100_000) == 48
    # EP1: the busiest rank is the only rank
    assert expected_max_experts_touched(E, K, 1, 50) == pytest.approx(expected_experts_touched(E, K, 50))
    # never below the mean, never above the rank's experts; grows with tokens
    prev = 0.0
    for t in (1, 2, 5, 20, 100, 400):
        v = expected_max_experts_touched(E, K, 8, t)
        assert expected_experts_touched(E, K, t) / 8 <= v + 1e-9 <= 48 + 1e-9 and v >= prev
        prev = v


def test_busiest_rank_normal_branch_for_wide_ranks():
    """EP2 with 1,536 experts (768 per rank) uses the moment-matched normal: between the mean and the
    rank size, and within 1 % of a 200-trial Monte Carlo at 8 tokens."""
    E, K = LATENT
    rng = np.random.default_rng(2)
    maxima = []
    for _ in range(200):
        hit = np.zeros(E, bool)
        hit[route(rng, 8, E, K).ravel()] = True
        maxima.append(hit.reshape(2, E // 2).sum(axis=1).max())
    assert expected_max_experts_touched(E, K, 2, 8) == pytest.approx(np.mean(maxima), rel=0.01)


def test_expected_max_std_normal_closed_forms():
    # E[max of 2] = 1/sqrt(pi), E[max of 3] = 3/(2 sqrt(pi)) (order statistics of the normal)
    assert expected_max_std_normal(1) == 0.0
    assert expected_max_std_normal(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-9)
    assert expected_max_std_normal(3) == pytest.approx(1.5 / math.sqrt(math.pi), rel=1e-9)


def test_busiest_pairs_ratio_hand_value_and_limits():
    # E=256, K=8, EP8 (n=32), 64 tokens: one token's pairs on a rank have mean 8*32/256 = 1 and variance
    # 8 * (1/8)(7/8)(248/255) = 0.85098; 1 + sqrt(0.85098/64) / 1 * E[max of 8 normals] (1.42360)
    assert busiest_pairs_ratio(256, 8, 8, 64) == pytest.approx(1 + math.sqrt(8 * 0.125 * 0.875 * 248 / 255 / 64) * 1.42360, rel=1e-4)
    assert busiest_pairs_ratio(256, 8, 1, 64) == 1.0 and busiest_pairs_ratio(256, 8, 8, 0) == 1.0
    # falls as 1/sqrt(tokens): the excess at 4x the tokens is half
    e1, e4 = busiest_pairs_ratio(384, 8, 16, 100) - 1, busiest_pairs_ratio(384, 8, 16, 400) - 1
    assert e4 == pytest.approx(e1 / 2, rel=1e-9)
    # one token puts at most min(K, n) pairs on a rank: 32 experts top-16 over EP16 (n = 2, mean 1 per rank),
    # where the normal's 1 + 0.696 * 1.766 = 2.23 would exceed the possible 2
    assert busiest_pairs_ratio(32, 16, 16, 1) == pytest.approx(2.0)


@pytest.mark.parametrize("experts,k,ep,tokens,trials,tol", [
    (256, 8, 8, 8, 1500, 0.05),      # few tokens: the normal underestimates the skewed maximum (~4%)
    (256, 8, 8, 64, 600, 0.02),
    (288, 8, 72, 2048, 60, 0.02),    # DeepSeek-V3 + 32 redundant slots at EP72 (SGLang decode)
    (1536, 32, 16, 64, 200, 0.02),   # LatentMoE Kimi variant
])
def test_busiest_pairs_ratio_matches_monte_carlo(experts, k, ep, tokens, trials, tol):
    """E[max over ranks of pairs] / mean against seeded uniform routing."""
    rng = np.random.default_rng(7)
    n = experts // ep
    ratios = []
    for _ in range(trials):
        picks = np.argpartition(rng.random((tokens, experts)), k, axis=1)[:, :k]
        ratios.append(np.bincount((picks // n).ravel(), minlength=ep).max() / (tokens * k / ep))
    assert busiest_pairs_ratio(experts, k, ep, tokens) == pytest.approx(float(np.mean(ratios)), rel=tol)

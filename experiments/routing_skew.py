"""Expert popularity skew: where ``REAL_ROUTING_SKEW`` comes from and what it implies (docs/MODELING.md §4a.3c).

Prints, for the lognormal popularity model of ``sim/cost/routing.py``:

1. the skew each published statistic of the source implies (Qwen3-30B-A3B, 128 experts, per-expert selection
   counts, mcp-tool-shop-org/gpu-container handbook "Routing De-risk": normalised-entropy concentration
   0.111 diverse / 0.154 single-domain Python, 65 / 58 of 128 experts for 90 % of the picks, top expert
   4.3 % / 6.3 %); the validation value is the diverse workload's entropy statistic;
2. the consistency check against SGLang's EPLB ablation (LMSYS large-scale EP blog, 2025-05-05: EPLB gives
   1.49x prefill throughput at EP32 and 2.54x decode at EP72 for DeepSeek-V3): the busiest EP rank's share of
   the picks without EPLB (random contiguous placement, large batches, seeded Monte Carlo over placements)
   over ``REAL_ROUTING_IMBALANCE`` (EPLB's residual), the most EPLB can gain in a step that is all MoE;
   the measured gains must not exceed it;
3. distinct experts per step, uniform against skewed, at the validation rows' decode batches (Table 5's
   Hybrid-73BT-8BA at TP2, Kimi-K2.5 at TP8).

Usage: ``python experiments/routing_skew.py`` (a few seconds).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from latentmoe_sim.cost.routing import expected_experts_touched, inclusion_probabilities
from latentmoe_sim.validation.configure import REAL_ROUTING_IMBALANCE, REAL_ROUTING_SKEW

E_SOURCE = 128


def concentration(skew: float, experts: int = E_SOURCE) -> float:
    p = inclusion_probabilities(experts, 1, skew)
    return 1.0 + float(np.sum(p * np.log(p))) / math.log(experts)


def experts_for_90(skew: float, experts: int = E_SOURCE) -> int:
    p = np.sort(inclusion_probabilities(experts, 1, skew))[::-1]
    return int(np.searchsorted(np.cumsum(p), 0.9) + 1)


def top_share(skew: float, experts: int = E_SOURCE) -> float:
    return float(inclusion_probabilities(experts, 1, skew).max())


def skew_for(stat, target: float) -> float:
    """The skew at which ``stat`` equals ``target`` (integer statistics: the smallest skew reaching it)."""
    if stat is experts_for_90:
        lo, hi = 0.0, 3.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if stat(mid) > target else (lo, mid)
        return hi
    sign = 1.0 if stat(1.0) > stat(0.5) else -1.0
    return brentq(lambda s: sign * (stat(s) - target), 1e-3, 3.0)


def busiest_rank_no_eplb(skew: float, experts: int, ep: int, trials: int = 4000, seed: int = 0) -> float:
    """E[max over ranks / mean] of the ranks' shares of the picks for a random contiguous placement."""
    p = inclusion_probabilities(experts, 1, skew)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        loads = p[rng.permutation(experts)].reshape(ep, -1).sum(axis=1)
        out.append(loads.max() / loads.mean())
    return float(np.mean(out))


def main() -> None:
    print("1. skew implied by each published statistic (Qwen3-30B-A3B, 128 experts)")
    for name, stat, diverse, narrow in (("entropy concentration", concentration, 0.111, 0.154),
                                        ("experts for 90 % of picks", experts_for_90, 65, 58),
                                        ("top expert's share", top_share, 0.043, 0.063)):
        print(f"   {name:26s} diverse {diverse:>6} -> {skew_for(stat, diverse):.2f}   "
              f"single-domain {narrow:>6} -> {skew_for(stat, narrow):.2f}")
    print(f"   validation value REAL_ROUTING_SKEW = {REAL_ROUTING_SKEW} (diverse, entropy): concentration "
          f"{concentration(REAL_ROUTING_SKEW):.3f}, {experts_for_90(REAL_ROUTING_SKEW)} experts for 90 %, top "
          f"{100 * top_share(REAL_ROUTING_SKEW):.1f} %")

    print("\n2. DeepSeek-V3 (256 experts) without EPLB: busiest rank / mean, and over EPLB's residual "
          f"{REAL_ROUTING_IMBALANCE}")
    print("   (SGLang measured EPLB gains 1.49x prefill at EP32, 2.54x decode at EP72; EP64 stands in for 72,"
          " which 256 experts do not divide)")
    for skew in (0.74, REAL_ROUTING_SKEW, 1.28):
        cells = []
        for ep in (32, 64):
            r = busiest_rank_no_eplb(skew, 256, ep)
            cells.append(f"EP{ep} {r:.2f} (/{REAL_ROUTING_IMBALANCE} = {r / REAL_ROUTING_IMBALANCE:.2f}x)")
        print(f"   skew {skew:.2f}: " + ", ".join(cells))
    for ep, gain in ((32, 1.49), (64, 2.54)):
        need = gain * REAL_ROUTING_IMBALANCE
        s = brentq(lambda x: busiest_rank_no_eplb(x, 256, ep, 1000) - need, 0.05, 2.0, xtol=1e-3)
        print(f"   a {gain}x gain at EP{ep} needs at least {need:.2f} without EPLB: skew >= {s:.2f}")

    print("\n3. distinct experts per step (per MoE layer), uniform -> skewed")
    for label, E, K, batches in (("Hybrid-73BT-8BA (128, top-6), Table 5", 128, 6, (1, 4, 16, 64, 128)),
                                 ("Kimi-K2.5 (384, top-8), InferenceX TP8", 384, 8, (4, 8, 16, 32, 64))):
        cells = [f"{t}: {expected_experts_touched(E, K, t):.1f} -> {expected_experts_touched(E, K, t, REAL_ROUTING_SKEW):.1f}"
                 for t in batches]
        print(f"   {label}: " + "; ".join(cells))


if __name__ == "__main__":
    main()

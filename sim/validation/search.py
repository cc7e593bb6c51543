"""The small plan search for rows that publish no parallel plan.

Published "best point" rows (InferenceX's max-throughput summaries) state the metrics but not the plan. The
plan that maximises throughput can be 2x off the measured point, because the publication's point was chosen
at some interactivity, not at the throughput maximum. So the search picks, among the aggregated plans on the
GPU budget (one NVLink domain when the row states no GPU count) that fit in memory, the one whose simulated
tokens/s/user is nearest (in log ratio) the measured tokens/s/user. That metric, and TPOT with it, is then
matched by construction: the report marks them ``searched`` and leaves them out of the error summaries; the
other metrics of the row are genuine comparisons.

Candidates: ``tp`` x ``dp`` over powers of two with ``tp * dp`` = the budget (``pp`` = 1), EP either 1
(MoE tensor parallel) or ``tp * dp`` (full expert parallel, with the fewest redundant expert slots that let
it divide the experts); a candidate whose point is infeasible (does not fit) is skipped.
"""

from __future__ import annotations

import math

from ..parallel import ParallelPlan


def candidate_plans(gpus: int, domain: int, num_experts: int | None) -> list[ParallelPlan]:
    """Aggregated plans on exactly ``gpus`` GPUs (``tp`` within the NVLink ``domain``)."""
    out = []
    tp = 1
    while tp <= min(gpus, domain):
        if gpus % tp == 0:
            dp = gpus // tp
            for ep in sorted({1, tp * dp}):
                if num_experts is None and ep != 1:
                    continue
                red = (-num_experts) % ep if num_experts else 0
                out.append(ParallelPlan(tp=tp, dp=dp, ep=ep, pp=1, redundant_experts=red))
        tp *= 2
    return out


def pick(candidates: list[tuple[ParallelPlan, dict | None]], measured_tps_per_user: float, budget: str):
    """(plan, metrics, note) of the candidate nearest the measured tokens/s/user; metrics None = infeasible."""
    fits = [(abs(math.log(m["tps_per_user"] / measured_tps_per_user)), i, p, m)
            for i, (p, m) in enumerate(candidates) if m is not None and m.get("tps_per_user")]
    if not fits:
        return None, None, f"no plan on {budget} fits in memory"
    _, _, plan, metrics = min(fits)
    note = (f"plan searched over {len(fits)} fitting plans on {budget}: {plan.describe()} has the tokens/s/user "
            f"nearest the measured {measured_tps_per_user:g}")
    return plan, metrics, note


__all__ = ["candidate_plans", "pick"]

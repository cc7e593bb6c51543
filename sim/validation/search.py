"""The small plan search for rows that publish no parallel plan.

Published "best point" rows (InferenceX's max-throughput summaries) state the metrics but not the plan. The
plan that maximises throughput can be 2x off the measured point, because the publication's point was chosen
at some interactivity, not at the throughput maximum. So the search picks, among the aggregated plans that
fit in memory on the GPU budget (one NVLink domain when the row states no GPU count), the one whose
simulated tokens/s/user is nearest (in log ratio) the measured tokens/s/user. That metric is then matched by
construction: the report marks it ``searched`` and leaves it out of the error summaries; the other metrics
of the row are genuine comparisons.

Candidates: ``tp`` x ``dp`` over powers of two with ``tp * dp`` = the budget (``pp`` = 1), EP either 1
(MoE tensor parallel) or ``tp * dp`` (full expert parallel); a plan is skipped when its model does not fit.
"""

from __future__ import annotations

import math

from ..errors import InputError
from ..parallel import ParallelPlan
from .configure import Case


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
                if num_experts is not None and num_experts % ep:
                    continue
                out.append(ParallelPlan(tp=tp, dp=dp, ep=ep, pp=1))
        tp *= 2
    return out


def search_plan(case: Case, measured_tps_per_user: float, simulate, domain: int, num_experts: int | None):
    """(plan, simulated metrics, note) of the candidate nearest the measured tokens/s/user.

    ``simulate(plan) -> metrics`` runs one candidate (raises InputError when the plan does not fit).
    """
    gpus = case.search_gpus or domain
    tried = []
    for plan in candidate_plans(gpus, domain, num_experts):
        try:
            metrics = simulate(plan)
        except InputError:
            continue
        tried.append((abs(math.log(metrics["tps_per_user"] / measured_tps_per_user)), plan, metrics))
    if not tried:
        return None, None, f"no plan on {gpus} GPUs fits in memory"
    tried.sort(key=lambda t: t[0])
    _, plan, metrics = tried[0]
    budget = f"{gpus} GPUs" if case.search_gpus else f"{gpus} GPUs (one NVLink domain; num_gpus not stated)"
    note = (f"plan searched over {len(tried)} fitting plans on {budget}: {plan.describe()} has the tokens/s/user "
            f"nearest the measured {measured_tps_per_user:g}")
    return plan, metrics, note


__all__ = ["candidate_plans", "search_plan"]

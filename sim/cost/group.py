"""GroupCost: the EP group's seconds of one step from precomputed constants, without building op objects.

The EP-group ops of a step (all-to-all dispatch and combine, routed experts, the expert-TP all-reduce) depend
on the step's token totals only: ``total`` tokens over all attention-DP ranks, ``busiest`` on the busiest
rank, and whether some rank runs a prefill chunk (the dispatch mode). The readable reference is
:func:`~latentmoe_sim.cost.ops.moe_group_ops` (what each op moves and computes) priced by
:meth:`CostModel.group_breakdown <latentmoe_sim.cost.model.CostModel.group_breakdown>` (roofline or measured
time per op), which builds a ``GroupOp`` and an ``OpCost`` per op, ~40 us per evaluation. The engine
memoises it per ``(total, busiest, prefill)``, but a sweep meets new plans and new totals all the time, so
the first evaluation of each key is what a cold operating point pays (about a third of it; docs/ENGINE.md).

Everything in those formulas that does not depend on the three arguments (routing moments, copies per
token per dispatch mode, bytes per copy, expert weight bytes, rates of the roofline, which ops exist and
which stream keeps them) is computed here once per cost model. :meth:`GroupCost.time` then performs the
*same float operations in the same order* as the reference (every product and quotient of the reference's
expressions, left to right, with the constant factors that come first in them folded in; nothing is
reassociated), so it returns the identical float: ``tests/test_group_cost.py`` compares the two with ``==``
on random totals over many plans (roofline and measured costs, LatentMoE, TP and EP, two-batch overlap's
streams, MTP's draft model, precisions, imbalance, redundant experts).

Keep it in step with ``moe_group_ops`` and ``group_breakdown``: a change there that is not mirrored here
fails that test.
"""

from __future__ import annotations

import math

from ..models.spec import dtype_bytes, ffn_matrices
from .conventions import activation_bytes
from .measured import Query
from .ops import ACT_BYTES, expert_activation_bytes_per_pair, remote_copies_per_token
from .roofline import W4A16
from .routing import EXACT_CHAIN_MAX_EXPERTS_PER_RANK, _busiest_curve, _pairs_moments, expected_max_experts_touched


class GroupCost:
    """``time(total, busiest, prefill)``: seconds of the EP-group ops of one step, equal to
    ``sum(o.time_s for o in cost.group_breakdown(total, busiest, prefill))`` float for float."""

    def __init__(self, cost):
        model, plan, hw, conv, roof = cost.model, cost.plan, cost.hw, cost.conventions, cost.roof
        self.nE = n = model.block_count("E")
        if not n:
            return
        m, prec = model.moe, model.precision
        w = m.expert_in_dim(model.hidden_size)
        ep, moe_tp, K = plan.ep, plan.moe_tp, m.top_k
        slots = plan.expert_slots(m.num_experts)
        self.ep, self.K, self.slots, self.tp, self.moe_tp = ep, K, slots, plan.tp, moe_tp
        self.imbalance = cost.expert_imbalance
        self.skew = conv.routing_skew  # expert popularity: fewer distinct experts touched (routing.py)
        # busiest_pairs_ratio's constants (routing.py): min(1 + sqrt(var / T) / mean * emax, cap)
        self.moments = _pairs_moments(slots, K, ep) if ep > 1 else None
        keep_comm, keep_compute = cost.only != "compute", cost.only != "comm"
        mt = cost.measured
        self.measured = mt
        # all-to-all: per dispatch mode (prefill or not) the copies per token; bytes per copy for dispatch, combine
        ranks_per_node = max(1, hw.nvlink_domain_size // moe_tp)
        self.copies = {prefill: remote_copies_per_token(slots, K, ep, ranks_per_node, conv.dispatch(prefill))
                       for prefill in (False, True)}
        self.a2a_bytes = tuple(w * activation_bytes(dtype_bytes(dt), dt) for dt in (prec.dispatch, prec.combine)) \
            if keep_comm else ()
        self.inv_a2a = roof.inv_scaleup(plan.gpus_per_stage)
        self.inv_so, self.nvl_lat, self.so_lat = roof.inv_so, hw.nvlink_latency_s, hw.scaleout_latency_s
        self.a2a_measured = mt is not None
        self.link_bw = hw.nvlink_bandwidth_bytes_per_s  # measured.Sol.link: the speed of light of a collective
        # routed experts: FLOPs 2 * pairs * n * w * ffn / moe_tp; bytes touched * params * wb / moe_tp + pairs * act
        self.experts = keep_compute
        self.n_mat, self.w, self.ffn = ffn_matrices(m.activation), w, m.expert_ffn
        self.params, self.wbytes = m.expert_params(model.hidden_size), dtype_bytes(prec.class_weights("experts"))
        self.act_pair = expert_activation_bytes_per_pair(model, moe_tp, conv.expert_fusion)
        dt = W4A16 if prec.class_weights("experts") == "int4" and prec.class_compute("experts") == "bf16" \
            else prec.class_compute("experts")
        self.dtype = dt
        self.w4a16 = dt == W4A16
        if self.w4a16:  # roofline.compute_time's W4A16 branch: flops / (bf16 peak * ce), bytes / (HBM * me)
            self.flops_rate = hw.flops("bf16") * (hw.w4a16_compute_efficiency or hw.compute_efficiency)
            self.mem_rate = hw.hbm_bandwidth_bytes_per_s * (hw.w4a16_memory_efficiency or hw.memory_efficiency)
        else:
            self.inv_flops, self.inv_mem = roof.inv_flops(dt), roof.inv_mem
        self.op_lat = roof.op_latency
        self.moe_table = mt is not None and moe_tp == 1 and not self.w4a16
        if self.moe_table:
            self.moe_shape = {"dtype": dt, "distribution": "balanced", "activation": m.activation, "hidden": w,
                              "ffn": m.expert_ffn, "topk": K, "num_experts": m.num_experts, "ep": ep}
            self.peak, self.hbm = mt.sol.peak(dt), hw.hbm_bandwidth_bytes_per_s
        # expert-TP all-reduce of the slot's partial sums: 2 (moe_tp - 1) / moe_tp * rows * w * 2 bytes
        self.allreduce = moe_tp > 1 and keep_comm
        # expected_max_experts_touched's exact-chain curve as a list, read inline; filled on the first call (it
        # costs tens of ms per (experts, top-k, EP) and is shared process-wide); False: call the function
        # (uniform routing only: under popularity skew the function scales it)
        self._curve = None if ep > 1 and slots // ep <= EXACT_CHAIN_MAX_EXPERTS_PER_RANK and not self.skew else False
        self.ar_factor = 2.0 * (moe_tp - 1) / moe_tp
        self.inv_ar = roof.inv_scaleup(moe_tp)

    def time(self, total, busiest, prefill: bool = False) -> float:
        """Seconds of the EP-group ops (``count`` = MoE layers included) for ``total`` tokens over all ranks
        (> 0), ``busiest`` on the busiest rank; ``prefill``: some rank runs a prefill chunk."""
        n = self.nE
        if not n or total <= 0:
            return 0
        ep = self.ep
        imbalance = self.imbalance
        if ep > 1:
            mean, var, emax, cap = self.moments
            imbalance = imbalance * min(1.0 + math.sqrt(var / total) / mean * emax, cap)
        else:
            imbalance = 1.0
        pairs = total * self.K / ep * imbalance
        t = 0
        if self.a2a_bytes:
            c_nvl, c_so = self.copies[prefill]
            send = busiest / self.tp * self.moe_tp
            recv = total / ep * imbalance
            x = max(send, recv)
            for b in self.a2a_bytes:
                nvl, so = x * c_nvl * b, x * c_so * b
                if not (nvl or so):
                    continue
                s = None
                if self.a2a_measured and not so:
                    # the table's bytes are what each GPU holds, (ep-1)/ep of which it sends
                    eff = self.measured.efficiency(Query("alltoall", {"domain": "nvlink", "ranks": ep,
                                                                      "bytes": (nvl + so) * ep / (ep - 1)}))
                    if eff is not None:
                        s = nvl / self.link_bw / eff * n
                if s is None:
                    tn, ts = nvl * self.inv_a2a, so * self.inv_so
                    s = ((tn if tn >= ts else ts) + self.so_lat if ts > 0.0 else tn + self.nvl_lat) * n
                t += s
        if self.experts:
            curve = self._curve
            if curve is None:
                curve = self._curve = _busiest_curve(self.slots, self.K, ep).tolist()
            if curve:  # routing.expected_max_experts_touched's exact-chain branch, inline (the same float ops)
                if total >= len(curve) - 1:
                    touched = float(self.slots // ep)
                else:
                    lo = int(total)
                    frac = total - lo
                    touched = curve[lo] if frac == 0.0 else curve[lo] * (1.0 - frac) + curve[lo + 1] * frac
            else:
                touched = expected_max_experts_touched(self.slots, self.K, ep, total, self.skew)
            flops = 2.0 * pairs * self.n_mat * self.w * self.ffn / self.moe_tp
            mem = touched * self.params * self.wbytes / self.moe_tp + pairs * self.act_pair
            if flops or mem:
                s = None
                if self.moe_table:
                    eff = self.measured.efficiency(Query("moe", {**self.moe_shape, "tokens": total * imbalance}))
                    if eff is not None:
                        tc, tm = flops / self.peak, mem / self.hbm
                        s = (tc if tc >= tm else tm) / eff * n
                if s is None:
                    if self.w4a16:
                        tc, tm = flops / self.flops_rate, mem / self.mem_rate
                    else:
                        tc, tm = flops * self.inv_flops, mem * self.inv_mem
                    s = ((tc if tc >= tm else tm) + self.op_lat) * n
                t += s
        if self.allreduce:
            nvl = self.ar_factor * (pairs if ep > 1 else total) * self.w * ACT_BYTES
            if nvl:
                t += (nvl * self.inv_ar + self.nvl_lat) * n
        return t


__all__ = ["GroupCost"]

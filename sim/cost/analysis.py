"""The LatentMoE paper's Section 2 analysis, computed from the catalog and the hardware profiles.

* the ridge point ``F / BW_HBM`` (FLOPs per byte at which a kernel turns compute-bound);
* the tokens per expert at which a routed expert's GEMM turns compute-bound, with the paper's arithmetic
  intensity ``I = 2 t d m / (d m + t (d + m))`` (FLOPs per element; elements of ``bytes_per_element``);
* the all-to-all to expert-compute time ratio under EP, from this project's own dispatch/combine and
  expert ops at peak rates (no efficiencies, no latencies), so it checks the cost model against the
  paper's closed form ``t_comm / t_comp = 5 F / (4 m BW_NVL)``.
"""

from __future__ import annotations

from dataclasses import replace

from ..hw import HwProfile
from ..models.spec import ModelSpec, ffn_matrices
from ..parallel import ParallelPlan
from .ops import moe_group_ops
from .roofline import Roofline


def ridge_point(hw: HwProfile, dtype: str) -> float:
    """FLOPs per byte of the roofline's ridge, from dense peak and HBM bandwidth."""
    return Roofline(hw).ridge_point(dtype)


def expert_compute_bound_tokens(model: ModelSpec, hw: HwProfile, dtype: str, bytes_per_element: float = 1.0) -> float:
    """Tokens per expert ``t`` at which one expert GEMM (d x m) reaches the ridge point: solves
    ``2 t d m / ((d m + t (d + m)) * bytes_per_element) = ridge`` for ``t`` (inf if never)."""
    d, m = model.moe.expert_in_dim(model.hidden_size), model.moe.expert_ffn
    r = ridge_point(hw, dtype) * bytes_per_element
    denom = 2 * d * m - r * (d + m)
    return r * d * m / denom if denom > 0 else float("inf")


def peak_only(hw: HwProfile) -> HwProfile:
    """The profile with every efficiency 1 and every latency 0 (the paper's idealised roofline)."""
    return replace(hw, compute_efficiency=1.0, memory_efficiency=1.0, comm_efficiency=1.0, nvlink_latency_s=0.0,
                   scaleout_latency_s=0.0, mem_op_latency_s=0.0, step_overhead_s=0.0)


def alltoall_to_compute_ratio(model: ModelSpec, hw: HwProfile, ep: int, dtype: str, tokens_per_rank: int = 4096,
                              per_matrix: bool = False) -> float:
    """(dispatch + combine time) / (routed-expert compute time) under pure EP with attention-DP over ``ep``
    GPUs, at peak rates. ``per_matrix=True`` divides the expert FLOPs by the number of expert matrices,
    the convention of the paper's §2, which counts one ``d x m`` GEMM per (token, expert) pair."""
    ideal = peak_only(hw)
    plan = ParallelPlan(tp=1, dp=ep, ep=ep)
    roof = Roofline(ideal)
    ops = {g.name: g for g in moe_group_ops(model, plan, ideal, tokens_per_rank * ep, tokens_per_rank)}
    comm = sum(roof.comm_time(ops[n].nvlink_bytes, ops[n].scaleout_bytes)[0] for n in ("moe.dispatch", "moe.combine"))
    compute = ops["moe.routed_experts"].flops * roof.inv_flops(dtype)
    if per_matrix:
        compute /= ffn_matrices(model.moe.activation)
    return comm / compute

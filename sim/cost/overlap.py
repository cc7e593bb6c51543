"""Two-batch overlap (TBO): a step's batch runs as two micro-batches whose communication hides behind each
other's compute.

SGLang splits every rank's batch into two micro-batches and interleaves them so that one's EP dispatch and
combine run while the other computes (``--enable-two-batch-overlap``; LMSYS large-scale EP blog,
2025-05-05, where it lifts H100 prefill throughput by up to 35 % and makes the DeepSeek profile's decode
reachable); DeepSeek's own inference system does the same for prefill and decode ("dual micro-batch
overlap", open-infra-index day 6 overview); vLLM calls it dual-batch overlap (DBO, vLLM blog "Large Scale
Serving: DeepSeek @ 2.2k tok/s/H200 with Wide-EP", 2025-12-17). DeepEP itself offers a hook-based
communication-computation overlap that occupies no SMs (DeepEP README). TensorRT-LLM's parallelism docs
(Wide-EP, ``enable_attention_dp``) name no two-batch switch; its DeepSeek deployments overlap communication
on separate streams. It is an option here (``--tbo``), off by default as in SGLang.

Critical path
-------------
Let ``C`` be one micro-batch's compute time (every non-communication op, on the slowest rank, at half the
batch) and ``M`` its communication time (EP all-to-all, TP and expert-TP all-reduces, pipeline sends),
over ``L`` layers. Two resources (the SMs and the links) each serve both micro-batches in turn, layer by
layer; in steady state a layer takes ``max(2c, 2m)`` and the pipeline's fill and drain add one layer's
``min(c, m)`` (``c = C / L``, ``m = M / L``). So

    t_TBO = overhead + max(2C, 2M) + min(C, M) / L = overhead + max(2C + M / L, 2M + C / L)

against ``overhead + C_full + M_full`` without overlap. Splitting is not free: each micro-batch re-reads the
weights and pays every kernel's fixed latency (``2C >= C_full``), which is why TBO loses at small decode
batches (SGLang PR sgl-project/sglang#9660 sees gains only from batch 64-128 on H20). Micro-batches get
half of every load feature (an even split by sequences; a single long prefill chunk split in two is
charged as two equal halves).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .base import RankLoad
from .stretch import DecodeStretch


def _half(load: RankLoad) -> RankLoad:
    return RankLoad(load[0] / 2, load[1] / 2, load[2] / 2, load[3] / 2, load[4] / 2)


class TwoBatchOverlapStepCost:
    """A step cost with two-batch overlap from a compute-only and a communication-only compiled cost (both
    without per-step overhead), ``overhead_s`` paid once per step and ``layers`` the overlapped layers."""

    def __init__(self, compute, comm, overhead_s: float, layers: int):
        self.compute, self.comm = compute, comm
        self.dp = compute.dp
        self.overhead_s = overhead_s
        self.inv_layers = 1.0 / max(1, layers)

    def parts(self, loads: Sequence[RankLoad]) -> tuple[float, float]:
        """(C, M): one micro-batch's compute and communication seconds."""
        half = [_half(l) for l in loads]
        return self.compute.step_time(half), self.comm.step_time(half)

    def step_time(self, loads: Sequence[RankLoad]) -> float:
        c, m = self.parts(loads)
        if c == 0.0 and m == 0.0:
            return self.overhead_s if any(l[0] or l[3] for l in loads) else 0.0
        il = self.inv_layers
        return self.overhead_s + max(2 * c + m * il, 2 * m + c * il)

    def decode_stretch(self, decode_seqs: Sequence[int], decode_kv_tokens: Sequence[int]) -> DecodeStretch:
        half_d = [d / 2 for d in decode_seqs]
        # communication of a pure-decode step does not depend on the KV length: constant along the stretch
        m = self.comm.step_time([RankLoad(0, 0.0, 0, d, kv / 2) for d, kv in zip(half_d, decode_kv_tokens)])
        c_lines = self.compute.decode_stretch(half_d, [kv / 2 for kv in decode_kv_tokens]).lines
        il = self.inv_layers
        lines = [(2 * a + m * il, 2 * b) for a, b in c_lines] + [(2 * m + a * il, b * il) for a, b in c_lines]
        return DecodeStretch(self.overhead_s, lines)


def build_tbo_cost(model, hw, plan, *, expert_imbalance: float = 1.0, decode_query_tokens: int = 1,
                   measured=None, conventions=None) -> TwoBatchOverlapStepCost:
    """Compile the two streams of ``(model, hw, plan)`` for two-batch overlap (``measured``: tables, or None)."""
    from .model import CostModel
    from .step import CompiledStepCost

    bare = replace(hw, step_overhead_s=0.0)
    streams = [CompiledStepCost(CostModel(model, bare, plan, expert_imbalance=expert_imbalance,
                                          decode_query_tokens=decode_query_tokens, only=kind, measured=measured,
                                          **({} if conventions is None else {"conventions": conventions})))
               for kind in ("compute", "comm")]
    return TwoBatchOverlapStepCost(*streams, overhead_s=hw.step_overhead_s, layers=model.num_layers)


__all__ = ["TwoBatchOverlapStepCost", "build_tbo_cost"]

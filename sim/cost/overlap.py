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

Overlap efficiency
------------------
The closed form above is the *ideal* overlap. Measured overlap hides less: communication kernels run
slower while compute runs beside them than in isolation (LMSYS large-scale EP blog, 2025-05-05, "Profile
Results": "Both DeepSeek and SGLang have a communication time slower than unit test results, while the
latter is achievable when disabling TBO"; the normal-mode kernels of prefill occupy SMs, 24 in DeepEP's
example, while the low-latency decode kernels busy-wait, profile-data README and the blog's decode
breakdown), and the two micro-batches' stages do not line up exactly (DeepEP legacy.md: "the 4 parts of
attention/dispatch/MoE/combine may not have the exact same execution time"). With ``t_split = overhead +
2C + 2M`` (the two micro-batches back to back, nothing overlapped) and ``t_ideal`` the closed form above,

    t_TBO = t_split - eta * (t_split - t_ideal),

i.e. a fraction ``eta`` of the overlappable time is hidden; the cost of splitting (``2C - C_full``) is
always paid. ``eta`` is one number per all-to-all mode (a step with a prefill chunk runs DeepEP's normal
kernels, a pure-decode step the low-latency ones; sim/cost/conventions.py), *derived* from the published
TBO ablations on H100 (the same blog, "Ablation Study: Two-batch Overlap"), by solving the formula above
for ``eta`` with this cost model's ``C`` and ``M`` at the ablation's configuration (DeepSeek-V3 FP8, attention
DP, LM head and dense layers replicated, SGLang's ``act-kernel`` experts, and SGLang's real EPLB routing:
the systematic expert imbalance 1.21 that the same blog's perfect-EPLB ablation implies,
``sim/validation/configure.REAL_ROUTING_IMBALANCE``; the two derivations are solved together, a fixed point
reached in two iterations; ``tests/test_overlap.py`` re-derives both and fails if the cost model drifts):

* prefill, EP32 over 4 nodes, 8,192 tokens per GPU: "27% to 35% throughput increase compared to the vanilla
  setup, even when processing the same token count per device": ``eta`` 0.53-0.71 over ISL 1K-4K and that
  range; :data:`TBO_EFFICIENCY_PREFILL` = 0.62 is the value at the blog's 2K inputs and the midpoint gain 31%;
* decode, EP72 (+32 redundant experts) over 9 nodes, 256 sequences per GPU at a 2,000-token context:
  "The speedup reaches 25.5% at 256 tokens": :data:`TBO_EFFICIENCY_DECODE` = 0.76.

The rows of those configurations (``sglang_h100_prefill_*``, ``sglang_h100_decode_2k`` in the validation file)
are therefore not an independent check of ``eta``; the DeepSeek-profile and Kimi-K2 rows are.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .base import RankLoad
from .stretch import DecodeStretch


#: fraction of the overlappable time two-batch overlap hides in a step with a prefill chunk (DeepEP normal
#: kernels); derived from SGLang's published prefill TBO gain, see the module docstring
TBO_EFFICIENCY_PREFILL = 0.62
#: the same for a pure-decode step (DeepEP low-latency kernels), from SGLang's published decode TBO gain
TBO_EFFICIENCY_DECODE = 0.76


def _half(load: RankLoad) -> RankLoad:
    return RankLoad(load[0] / 2, load[1] / 2, load[2] / 2, load[3] / 2, load[4] / 2)


class TwoBatchOverlapStepCost:
    """A step cost with two-batch overlap from a compute-only and a communication-only compiled cost (both
    without per-step overhead), ``overhead_s`` paid once per step and ``layers`` the overlapped layers;
    ``efficiency``: (prefill-step, decode-step) fractions of the overlappable time hidden, in [0, 1]
    (module docstring; (1, 1) is the ideal overlap)."""

    def __init__(self, compute, comm, overhead_s: float, layers: int,
                 efficiency: tuple[float, float] = (TBO_EFFICIENCY_PREFILL, TBO_EFFICIENCY_DECODE)):
        if not all(0.0 <= e <= 1.0 for e in efficiency):
            raise ValueError(f"TBO efficiency must be in [0, 1], not {efficiency}")
        self.compute, self.comm = compute, comm
        self.dp = compute.dp
        self.overhead_s = overhead_s
        self.inv_layers = 1.0 / max(1, layers)
        self.eta_prefill, self.eta_decode = efficiency

    def parts(self, loads: Sequence[RankLoad]) -> tuple[float, float]:
        """(C, M): one micro-batch's compute and communication seconds."""
        half = [_half(l) for l in loads]
        return self.compute.step_time(half), self.comm.step_time(half)

    def step_time(self, loads: Sequence[RankLoad]) -> float:
        c, m = self.parts(loads)
        if c == 0.0 and m == 0.0:
            return self.overhead_s if any(l[0] or l[3] for l in loads) else 0.0
        il = self.inv_layers
        eta = self.eta_prefill if any(l[0] for l in loads) else self.eta_decode
        split = 2 * c + 2 * m
        return self.overhead_s + split - eta * (split - max(2 * c + m * il, 2 * m + c * il))

    def decode_stretch(self, decode_seqs: Sequence[int], decode_kv_tokens: Sequence[int]) -> DecodeStretch:
        half_d = [d / 2 for d in decode_seqs]
        # communication of a pure-decode step does not depend on the KV length: constant along the stretch
        m = self.comm.step_time([RankLoad(0, 0.0, 0, d, kv / 2) for d, kv in zip(half_d, decode_kv_tokens)])
        c_lines = self.compute.decode_stretch(half_d, [kv / 2 for kv in decode_kv_tokens]).lines
        il, eta = self.inv_layers, self.eta_decode
        # t = g(c) = (1 - eta)(2c + 2m) + eta max(2c + m/L, 2m + c/L) increases with c, and the compute
        # stretch is c(j) = max_k (a_k + b_k j), so t(j) = max_k g(a_k + b_k j): two lines per compute line
        lines = []
        for a, b in c_lines:
            sa, sb = (1 - eta) * (2 * a + 2 * m), (1 - eta) * 2 * b
            lines += [(sa + eta * (2 * a + m * il), sb + eta * 2 * b), (sa + eta * (2 * m + a * il), sb + eta * b * il)]
        return DecodeStretch(self.overhead_s, lines)


def build_tbo_cost(model, hw, plan, *, expert_imbalance: float = 1.0, decode_query_tokens: int = 1,
                   measured=None, conventions=None,
                   efficiency: tuple[float, float] = (TBO_EFFICIENCY_PREFILL, TBO_EFFICIENCY_DECODE)) -> TwoBatchOverlapStepCost:
    """Compile the two streams of ``(model, hw, plan)`` for two-batch overlap (``measured``: tables, or None;
    ``efficiency``: (prefill, decode) overlap efficiencies, the module docstring's derived values by default)."""
    from .model import CostModel
    from .step import CompiledStepCost

    bare = replace(hw, step_overhead_s=0.0)
    streams = [CompiledStepCost(CostModel(model, bare, plan, expert_imbalance=expert_imbalance,
                                          decode_query_tokens=decode_query_tokens, only=kind, measured=measured,
                                          **({} if conventions is None else {"conventions": conventions})))
               for kind in ("compute", "comm")]
    return TwoBatchOverlapStepCost(*streams, overhead_s=hw.step_overhead_s, layers=model.num_layers, efficiency=efficiency)


__all__ = ["TBO_EFFICIENCY_DECODE", "TBO_EFFICIENCY_PREFILL", "TwoBatchOverlapStepCost", "build_tbo_cost"]

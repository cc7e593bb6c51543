"""The interface between the cost model and the serving engine.

The engine never sees a model or a GPU. Per engine step it hands the cost model one :data:`RankLoad`
per attention-data-parallel rank of an instance and gets back the step's duration in seconds; for a run of
pure-decode steps it asks for a :class:`~latentmoe_sim.cost.stretch.DecodeStretch` and advances many steps
at once. Any object with ``dp``, ``step_time`` and ``decode_stretch`` is a step cost; the real one is
:class:`~latentmoe_sim.cost.step.CompiledStepCost`; :class:`ConstantStepCost` and :class:`LinearStepCost`
are closed forms for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol, Sequence

from .stretch import DecodeStretch


class RankLoad(NamedTuple):
    """What one attention-DP rank computes in one step.

    prefill_tokens:      sum of the prefill chunk lengths (tokens)
    prefill_pairs:       causal (query, key) pairs of the chunks: sum of chunk * (offset + (chunk + 1) / 2)
    prefill_ctx_tokens:  tokens whose KV the chunks read: sum of (offset + chunk)
    decode_seqs:         sequences decoding one token each
    decode_kv_tokens:    sum over decodes of the context each attends (prompt + tokens generated so far)
    """

    prefill_tokens: int = 0
    prefill_pairs: float = 0.0
    prefill_ctx_tokens: int = 0
    decode_seqs: int = 0
    decode_kv_tokens: int = 0


def chunk_load(chunk: int, offset: int) -> tuple[int, float, int]:
    """(tokens, causal pairs, context tokens) of one prefill chunk of ``chunk`` tokens after ``offset``."""
    return chunk, chunk * (offset + (chunk + 1) / 2.0), offset + chunk


class StepCost(Protocol):
    dp: int

    def step_time(self, loads: Sequence[RankLoad]) -> float: ...

    def decode_stretch(self, decode_seqs: Sequence[int], decode_kv_tokens: Sequence[int]) -> DecodeStretch: ...


class ConstantStepCost:
    """Every step takes ``step_s`` seconds, whatever the batch (for closed-form engine tests)."""

    def __init__(self, step_s: float, dp: int = 1):
        self.step_s, self.dp = float(step_s), dp

    def step_time(self, loads: Sequence[RankLoad]) -> float:
        return self.step_s

    def decode_stretch(self, decode_seqs, decode_kv_tokens) -> DecodeStretch:
        return DecodeStretch(0.0, [(self.step_s, 0.0)])


class LinearStepCost:
    """``fixed_s + max over ranks of (per_token_s * tokens + per_pair_s * (prefill_pairs + decode_kv_tokens))``.

    A small closed form whose decode-stretch step time grows with the KV length, so the exactness of
    stretch advancement can be tested without the full cost model.
    """

    def __init__(self, fixed_s: float, per_token_s: float, per_pair_s: float, dp: int = 1):
        self.fixed_s, self.per_token_s, self.per_pair_s, self.dp = fixed_s, per_token_s, per_pair_s, dp

    def step_time(self, loads: Sequence[RankLoad]) -> float:
        return self.fixed_s + max(
            self.per_token_s * (l[0] + l[3]) + self.per_pair_s * (l[1] + l[4]) for l in loads
        )

    def decode_stretch(self, decode_seqs, decode_kv_tokens) -> DecodeStretch:
        lines = [
            (self.per_token_s * d + self.per_pair_s * k, self.per_pair_s * d)
            for d, k in zip(decode_seqs, decode_kv_tokens)
        ]
        return DecodeStretch(self.fixed_s, lines)



@dataclass(frozen=True)
class InstanceCost:
    """Everything the engine needs to know about one serving instance, as plain numbers.

    Built by :func:`latentmoe_sim.cost.build_instance_cost` from (model, hardware, plan); tests build it
    by hand around a closed-form step cost.
    """

    step_cost: StepCost
    #: attention-data-parallel ranks (each has its own batch and KV pool)
    dp: int
    #: GPUs of the instance (tp * dp * pp)
    num_gpus: int
    #: KV-cache capacity of ONE attention-DP rank, tokens
    kv_capacity_tokens: int
    #: bytes of KV cache one token of context occupies for the whole model (what a disaggregated
    #: prefill-to-decode transfer moves per token), plus the fixed recurrent state per sequence
    kv_bytes_per_token: float = 0.0
    state_bytes_per_seq: float = 0.0
    #: per-GPU link bandwidths (bytes/s, per direction) and latencies (s) for KV transfers
    nvlink_bandwidth_bytes_per_s: float = 0.0
    scaleout_bandwidth_bytes_per_s: float = 0.0
    nvlink_latency_s: float = 0.0
    scaleout_latency_s: float = 0.0
    nvlink_domain_size: int = 8
    #: GPUs of one attention-DP rank that each hold a distinct shard of a request's KV (and can move it in
    #: parallel over their own links): MLA's latent is replicated over TP (1 per stage), GQA's KV heads are
    #: split over min(tp, kv_heads); times pp stages
    kv_shards_per_rank: int = 1
    #: sequences one rank may hold at once when its memory is bound by per-sequence state (Mamba)
    max_seqs_by_memory: int | None = None

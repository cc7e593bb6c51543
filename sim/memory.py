"""Memory per GPU under a parallel plan: weights, KV cache, activations, reserve -> KV capacity.

The busiest pipeline stage (ceil(layers / pp) layers plus the embedding or LM head) sets the weights per
GPU. Weights of linear layers are stored at their class's dtype (``Precision.class_weights``: routed experts,
attention, dense FFN / shared experts / latent and Mamba projections, embedding and LM head); norms and the
router stay BF16. Attention projections, dense FFNs, shared experts and Mamba mixers are split over ``tp``; MLA's
q_a/kv_a down-projections and its latent KV cache are replicated across TP (every TP rank attends over the
whole 576-wide latent, which is why MLA models are served with attention data parallelism); GQA K/V heads
are split over ``min(tp, kv_heads)``; routed experts are split over ``ep`` slots of ``moe_tp`` GPUs.
Each attention-DP rank owns a KV pool on its ``tp * pp`` GPUs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .errors import DoesNotFit, InputError
from .hw import HwProfile
from .models.spec import ModelSpec, dtype_bytes, ffn_matrices
from .parallel import ParallelPlan

#: Activation workspace per token in flight, in hidden-size units: the residual stream, the normed input,
#: attention/FFN inputs and outputs held at once in BF16 (estimate; vLLM measures the peak with a dummy
#: forward at max_num_batched_tokens, and AIConfigurator uses per-family coefficients).
ACTIVATION_HIDDEN_MULTIPLE = 8
#: Logits are kept in FP32 for the sampled tokens (vLLM's sampler upcasts logits to float32).
LOGIT_BYTES = 4.0


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per GPU and the resulting KV capacity of one attention-DP rank."""

    hbm_bytes: float
    weight_bytes: float
    activation_bytes: float
    reserve_bytes: float
    state_bytes: float  # recurrent (Mamba) state reserved for max_seqs sequences
    kv_bytes: float  # what is left for the KV cache
    kv_bytes_per_token: float  # per GPU, per token of one sequence
    kv_capacity_tokens: int  # per attention-DP rank
    weights_by_class: dict

    @property
    def fits(self) -> bool:
        return self.kv_bytes > 0 and (self.kv_capacity_tokens > 0 or self.kv_bytes_per_token == 0)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["fits"] = self.fits
        return d


def weight_bytes_per_gpu(model: ModelSpec, plan: ParallelPlan) -> dict[str, float]:
    """Weight bytes per GPU of the busiest pipeline stage, by tensor class."""
    h, tp = model.hidden_size, plan.tp
    prec, bf16 = model.precision, 2.0
    wb = dtype_bytes(prec.class_weights("attention"))
    frac = math.ceil(model.num_layers / plan.pp) / model.num_layers  # share of layers on the busiest stage
    out: dict[str, float] = {}

    def add(key, elems, b):
        out[key] = out.get(key, 0.0) + elems * b

    nA, nD, nE, nM = (model.block_count(b) * frac for b in "ADEM")
    if nA:
        a = model.attention
        if a.kind == "mla":
            lat = a.kv_lora_rank + a.qk_rope_head_dim
            q = a.q_lora_rank or 0
            replicated = h * (q + lat) + q + a.kv_lora_rank
            qk = a.qk_nope_head_dim + a.qk_rope_head_dim
            split = (q or h) * a.num_heads * qk + a.kv_lora_rank * a.num_heads * (a.qk_nope_head_dim + a.v_head_dim) \
                + a.num_heads * a.v_head_dim * h
            add("attention", nA * (replicated + split / tp), wb)
        else:
            kv_split = min(tp, a.num_kv_heads)
            d = a.head_dim
            add("attention", nA * ((2 * h * a.num_heads * d) / tp + 2 * h * a.num_kv_heads * d / kv_split), wb)
        add("norms", nA * h, bf16)
    wb = dtype_bytes(prec.class_weights("dense"))  # dense FFN, shared experts, latent and Mamba projections
    if nD:
        add("dense_ffn", nD * ffn_matrices(model.dense_activation) * h * model.dense_ffn / plan.shard("dense_ffn"), wb)
        add("norms", nD * h, bf16)
    if nE:
        m = model.moe
        # every expert slot, redundant copies included (sim/parallel.py), holds a full expert
        add("routed_experts", nE * (plan.expert_slots(m.num_experts) / plan.ep) * m.expert_params(h) / plan.moe_tp,
            dtype_bytes(prec.class_weights("experts")))
        add("shared_experts", nE * m.shared_params(h) / plan.shard("shared_experts"), wb)
        add("router", nE * m.router_params(h), bf16)
        add("latent_proj", nE * m.latent_proj_params(h), wb)
        add("norms", nE * h, bf16)
    if nM:
        mb = model.mamba
        proj = h * mb.in_proj_out() + mb.d_inner * h
        add("mamba", nM * proj / tp, wb)
        add("mamba", nM * (mb.params(h) - proj) / tp, bf16)
        add("norms", nM * h, bf16)
    # first stage holds the embedding, last the LM head; with pp = 1 one GPU holds both (the busiest
    # stage is charged the larger of the two); tied embeddings are one tensor, split the wider way
    vocab = model.vocab_size * h
    emb, head = vocab / plan.shard("embedding"), vocab / plan.shard("lm_head")
    both = max(emb, head) if plan.pp > 1 or model.tie_embeddings else emb + head
    add("embedding_lm_head", both, dtype_bytes(prec.class_weights("embedding")))
    return out


def kv_bytes_per_token_per_gpu(model: ModelSpec, plan: ParallelPlan) -> float:
    """KV bytes one token of a sequence occupies on each GPU of its rank (busiest stage)."""
    if model.attention is None:
        return 0.0
    a = model.attention
    layers = math.ceil(model.block_count("A") / plan.pp)
    shard = 1 if a.kind == "mla" else min(plan.tp, a.num_kv_heads)
    return layers * a.kv_elements_per_token() / shard * dtype_bytes(model.precision.kv_cache)


def activation_bytes_per_gpu(model: ModelSpec, plan: ParallelPlan, max_batch_tokens: int, max_seqs: int) -> float:
    """Peak activation workspace per GPU for a step of ``max_batch_tokens`` tokens (estimate, see module doc)."""
    h = model.hidden_size
    widest = max(model.dense_ffn * ffn_matrices(model.dense_activation),
                 (model.moe.num_shared * model.moe.shared_ffn * ffn_matrices(model.moe.activation)) if model.moe else 0,
                 model.mamba.in_proj_out() if model.mamba else 0) / plan.tp
    act = max_batch_tokens * (ACTIVATION_HIDDEN_MULTIPLE * h + widest) * 2.0
    if model.moe:
        m = model.moe
        w = m.expert_in_dim(h)
        # dispatch + combine buffers (send and receive) and the experts' intermediate
        disp = dtype_bytes(model.precision.dispatch) + dtype_bytes(model.precision.combine)
        act += max_batch_tokens / plan.tp * m.top_k * (2 * w * disp + m.expert_ffn * ffn_matrices(m.activation) * 2.0 / plan.moe_tp)
    act += max_seqs * model.vocab_size / plan.tp * LOGIT_BYTES
    return act


def plan_memory(model: ModelSpec, hw: HwProfile, plan: ParallelPlan, *, max_batch_tokens: int = 2048,
                max_seqs: int = 128) -> MemoryPlan:
    """Memory per GPU and the KV capacity (tokens) of one attention-DP rank."""
    weights = weight_bytes_per_gpu(model, plan)
    w = sum(weights.values())
    act = activation_bytes_per_gpu(model, plan, max_batch_tokens, max_seqs)
    state = max_seqs * model.state_bytes_per_seq / plan.tp / plan.pp
    reserve = hw.runtime_reserve_bytes
    free = hw.hbm_capacity_bytes - w - act - reserve - state
    per_tok = kv_bytes_per_token_per_gpu(model, plan)
    cap = int(free // per_tok) if per_tok > 0 and free > 0 else 0
    return MemoryPlan(hw.hbm_capacity_bytes, w, act, reserve, state, free, per_tok, cap, weights)


def seats_by_state(model: ModelSpec, hw: HwProfile, plan: ParallelPlan, *, max_batch_tokens: int, max_seqs: int,
                   min_tokens: int) -> int | None:
    """Sequences one rank can seat when the recurrent (Mamba) state of ``max_seqs`` sequences does not fit.

    The state is reserved per seat (:func:`plan_memory`). When ``max_seqs`` seats leave fewer than
    ``min_tokens`` of KV, a serving engine runs fewer sequences at once (vLLM V1 takes each running request's
    Mamba state out of its KV-cache pool and admits what the pool holds; ``max_num_seqs`` is only an upper
    bound). The memory left after weights, activations and reserve is then split so that every seat has its
    state and the KV of one full-length sequence (``model.max_context`` tokens):
    ``seats = floor(spare / (state per seat + max_context * KV bytes per token))``, where ``spare`` = HBM -
    weights - activations(max_seqs) - reserve (the activations of ``max_seqs`` seats bound the fewer seats').
    Returns None when ``max_seqs`` seats fit, the model has no recurrent state, or not even one seat fits
    (:func:`require_fit` then says so)."""
    per_seat = model.state_bytes_per_seq / plan.tp / plan.pp
    mem = plan_memory(model, hw, plan, max_batch_tokens=max_batch_tokens, max_seqs=max_seqs)
    if per_seat <= 0 or mem.kv_capacity_tokens >= min_tokens:
        return None
    spare = mem.kv_bytes + mem.state_bytes
    seats = int(spare // (per_seat + model.max_context * mem.kv_bytes_per_token))
    return seats if 1 <= seats < max_seqs else None


def require_fit(mem: MemoryPlan, model: ModelSpec, hw: HwProfile, plan: ParallelPlan, min_tokens: int = 1) -> MemoryPlan:
    """Raise :class:`DoesNotFit` (an InputError; exit status 3), with the numbers, unless at least
    ``min_tokens`` of KV fit per rank."""
    gib = 2.0**30
    if mem.kv_bytes <= 0 or (mem.kv_bytes_per_token and mem.kv_capacity_tokens < min_tokens):
        raise DoesNotFit(
            f"{model.name} on {hw.name} with {plan.describe()} does not fit: weights {mem.weight_bytes / gib:.1f} GiB"
            f" + activations {mem.activation_bytes / gib:.1f} GiB + state {mem.state_bytes / gib:.1f} GiB"
            f" + reserve {mem.reserve_bytes / gib:.1f} GiB of {mem.hbm_bytes / gib:.1f} GiB HBM per GPU leaves"
            f" {mem.kv_capacity_tokens} KV tokens per rank (need >= {min_tokens}); use more GPUs (ep/tp/pp) or lower precision"
        )
    return mem

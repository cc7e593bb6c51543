"""Operator descriptions: what each op of each layer computes, moves and communicates.

No timing here (that is :mod:`roofline`): an :class:`Op` is a set of *linear* formulas in the features of
one attention-DP rank's batch (:data:`FEATURES`), so a whole step is a matrix product and a decode
stretch is a set of lines (:mod:`stretch`). The MoE expert and all-to-all ops depend on the tokens of the
whole EP group, which is not linear (expected distinct experts touched), so they are evaluated per step by
:func:`moe_group_ops`.

Conventions (docs/MODELING.md gives each formula with its source):

* per GPU: attention heads are split over ``tp``; MoE-side per-token work (router, LatentMoE projections)
  runs on the GPU's slice ``u = T / tp`` of the rank's tokens; routed experts are split over ``ep`` slots
  of ``moe_tp`` GPUs;
* a GEMM of ``M x K`` by ``K x N`` costs ``2 M K N`` FLOPs and moves its weights once plus its inputs and
  outputs once;
* activations travel between kernels in BF16 (:data:`ACT_BYTES`), whatever the GEMM input dtype;
* MLA decode uses the absorbed form (attention over the 576-wide latent cache, DeepSeek-V3 §2.1.1 /
  FlashMLA); MLA prefill up-projects the cached latent of every context token (the piggybacking
  overhead noted by "Beyond the Buzz", arXiv 2506.05508).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..hw import HwProfile
from ..models.spec import ModelSpec, dtype_bytes, ffn_matrices
from ..parallel import ParallelPlan
from .conventions import DEFAULT_CONVENTIONS, Conventions, activation_bytes
from .routing import busiest_pairs_ratio, expected_experts_touched, expected_max_experts_touched, miss_probability  # noqa: F401 (re-export)

#: Features of one rank's batch; an op's FLOPs and bytes are linear in these.
FEATURES = ("one", "tokens", "prefill_tokens", "prefill_pairs", "prefill_ctx", "decode_seqs", "decode_kv")
F_ONE, F_T, F_P, F_PAIRS, F_CTX, F_D, F_DK = range(len(FEATURES))

#: Bytes per activation element moved between kernels (BF16).
ACT_BYTES = 2.0
#: Bytes per element of tensors that stay BF16 in quantised checkpoints (router, embeddings, LM head).
BF16 = 2.0
#: FLOPs per element of an RMSNorm with residual add (square, sum, scale, multiply, add).
NORM_FLOPS_PER_ELEMENT = 5.0
#: FLOPs per (token, d_inner, state) of a Mamba-2 SSD scan: state update, output and the chunked form's
#: intra-chunk term, ~3 multiply-adds (estimate from the SSD algorithm, Dao & Gu 2024, §6).
SSD_FLOPS_PER_STATE = 6.0


@dataclass
class Op:
    """One op of one block kind, repeated ``count`` times per step on the critical path of a rank.

    ``flops``, ``mem_bytes`` and ``comm_bytes`` map feature index -> coefficient per GPU. ``gate`` is the
    feature that must be non-zero for the kernel to run at all (a decode-only op costs nothing, not even
    its launch latency, in a step without decodes).
    """

    name: str
    block: str
    count: int
    dtype: str = "bf16"  # tensor-core dtype of the math
    flops: dict[int, float] = field(default_factory=dict)
    mem_bytes: dict[int, float] = field(default_factory=dict)
    comm_bytes: dict[int, float] = field(default_factory=dict)
    #: seconds per unit of each feature, spent whatever the rates (a runtime cost, not a kernel): the op's time
    #: is ``seconds . x`` (no latency); FLOPs and bytes stay empty
    seconds: dict[int, float] = field(default_factory=dict)
    link: str = ""  # "nvlink" | "scaleout" for communication ops
    gate: int = F_T
    peers: int = 0  # GPUs in the collective's group (a full-mesh fabric's bandwidth depends on it); 0 = n/a
    #: shape for a measured-table lookup (sim/cost/measured.py), or None: ``{"kind": <table kind>, column:
    #: value}`` where a value is a constant, a feature-coefficient dict (linear in the features) or a pair
    #: of such dicts (their ratio, e.g. mean context = decode_kv / decode_seqs)
    table: dict | None = None

    def vector(self, coefs: dict[int, float]) -> list[float]:
        v = [0.0] * len(FEATURES)
        for k, c in coefs.items():
            v[k] += c
        return v


def _gemm(name, block, count, M: dict, K: float, N: float, w_bytes: float, dtype: str, gate=F_T, weight_elems=None) -> Op:
    """A GEMM whose M (token count) is linear in the features: ``M = sum coef * feature``."""
    weights = (K * N if weight_elems is None else weight_elems) * w_bytes
    flops = {f: 2.0 * c * K * N for f, c in M.items()}
    mem = {f: c * (K + N) * ACT_BYTES for f, c in M.items()}
    mem[F_ONE] = mem.get(F_ONE, 0.0) + weights
    return Op(name, block, count, dtype, flops, mem, gate=gate, table={"kind": "gemm", "dtype": dtype, "m": dict(M), "n": N, "k": K})


def rank_ops(model: ModelSpec, plan: ParallelPlan, hw: HwProfile, decode_query_tokens: int = 1,
             conventions: Conventions = DEFAULT_CONVENTIONS) -> list[Op]:
    """The rank-local ops of one full forward step (all layers), per GPU of the rank.

    ``decode_query_tokens`` q > 1 is a speculative-decoding verify step (:mod:`.spec_decode`): the decode
    features then count query tokens (q per sequence) and (query, key) pairs, while a sequence's KV cache
    (and Mamba state) is still read once per step, so those bytes are divided by q.
    """
    q = float(decode_query_tokens)
    h, tp = model.hidden_size, plan.tp
    prec = model.precision
    wb, kvb = dtype_bytes(prec.weights), dtype_bytes(prec.kv_cache)
    gemm_dt, attn_dt = prec.gemm_compute_dtype, "bf16" if prec.attention in ("bf16", "fp16") else prec.attention
    ops: list[Op] = []
    nA, nD, nE, nM = (model.block_count(b) for b in "ADEM")
    per_tp = 1.0 / tp
    tokens = {F_T: 1.0}
    link_tp = "nvlink"

    # bytes per GPU per direction of an all-reduce of T x h BF16: ring 2(tp-1)/tp, NVLS (1 + 1/tp)
    ar_factor = 2.0 * (tp - 1) / tp if conventions.tp_allreduce == "ring" else 1.0 + 1.0 / tp

    def allreduce(block, count):
        if tp > 1 and count:
            ops.append(Op(f"{block}.tp_allreduce", block, count, comm_bytes={F_T: ar_factor * h * ACT_BYTES}, link=link_tp, peers=tp,
                          table={"kind": "allreduce", "dtype": "bf16", "domain": link_tp, "ranks": tp, "bytes": {F_T: h * ACT_BYTES}}))

    # layers sharded over the whole tp*dp group under attention DP (plan.dp_sharded): each GPU computes its
    # 1/G slice of the width for the tokens of all dp ranks (balanced ranks: dp x this rank's tokens)
    G, dpn, D = plan.gpus_per_stage, plan.dp, hw.nvlink_domain_size

    def group_comm(name, block, count, elems_per_token, feature=F_T, gate=F_T, collectives=2.0):
        """Ring all-gather of the group's tokens before and reduce-scatter after a group-sharded layer
        (``collectives`` of them), per GPU: ``(G-1)/G`` of the group's message over NVLink; when the group
        spans ``N`` NVLink domains, each domain also receives ``(N-1)/N`` of it over its ``D`` NICs, i.e.
        ``(N-1)/(N D)`` per GPU over scale-out (charged after the NVLink part, not overlapped)."""
        if G <= 1 or not count:
            return
        group_bytes = collectives * dpn * elems_per_token * ACT_BYTES  # per token of this rank
        if G <= D:
            ops.append(Op(name, block, count, comm_bytes={feature: (G - 1) / G * group_bytes}, link="nvlink", gate=gate, peers=G))
            return
        N = G / D
        ops.append(Op(name, block, count, comm_bytes={feature: (D - 1) / D * group_bytes}, link="nvlink", gate=gate, peers=D))
        ops.append(Op(name + ".scaleout", block, count, comm_bytes={feature: (N - 1) / (N * D) * group_bytes}, link="scaleout",
                      gate=gate, peers=G))

    def norm(block, count):
        if count:
            ops.append(Op(f"{block}.norm", block, count, "bf16", {F_T: NORM_FLOPS_PER_ELEMENT * h}, {F_T: 3.0 * h * ACT_BYTES}))

    # each weight class at its own dtype (Precision.class_weights / class_compute)
    wb, gemm_dt = dtype_bytes(prec.class_weights("attention")), prec.class_compute("attention")
    if nA:
        a = model.attention
        norm("attn", nA)
        if a.kind == "mla":
            Hp = a.num_heads / tp
            qk = a.qk_nope_head_dim + a.qk_rope_head_dim
            lat = a.kv_lora_rank + a.qk_rope_head_dim  # cached latent width (576)
            if a.q_lora_rank:
                # fused q_a / kv_a down-projections (replicated across TP) + writing the latent KV
                op = _gemm("attn.mla_qkv_a", "A", nA, tokens, h, a.q_lora_rank + lat, wb, gemm_dt)
                op.mem_bytes[F_T] += lat * kvb
                ops.append(op)
                ops.append(_gemm("attn.mla_q_b", "A", nA, tokens, a.q_lora_rank, Hp * qk, wb, gemm_dt))
            else:
                ops.append(_gemm("attn.mla_q", "A", nA, tokens, h, Hp * qk, wb, gemm_dt))
                op = _gemm("attn.mla_kv_a", "A", nA, tokens, h, lat, wb, gemm_dt)
                op.mem_bytes[F_T] += lat * kvb
                ops.append(op)
            # decode, absorbed: q_nope -> latent query (W_UK), attention over the latent cache, latent -> v (W_UV)
            op = _gemm("attn.mla_absorb_q", "A", nA, {F_D: Hp}, a.qk_nope_head_dim, a.kv_lora_rank, wb, gemm_dt, gate=F_D,
                       weight_elems=Hp * a.qk_nope_head_dim * a.kv_lora_rank)
            op.table = {"kind": "mla_bmm", "dtype": gemm_dt, "phase": "pre", "heads": Hp, "tokens": {F_D: 1.0}}
            ops.append(op)
            ops.append(Op("attn.mla_decode_core", "A", nA, attn_dt,
                          {F_DK: 2.0 * Hp * (lat + a.kv_lora_rank)},
                          {F_DK: lat * kvb / q, F_D: Hp * (lat + a.kv_lora_rank) * ACT_BYTES}, gate=F_D,
                          table={"kind": "mla_decode", "kv_dtype": prec.kv_cache, "heads": Hp, "batch": {F_D: 1.0},
                                 "context": ({F_DK: 1.0}, {F_D: 1.0})}))
            op = _gemm("attn.mla_absorb_o", "A", nA, {F_D: Hp}, a.kv_lora_rank, a.v_head_dim, wb, gemm_dt, gate=F_D,
                       weight_elems=Hp * a.kv_lora_rank * a.v_head_dim)
            op.table = {"kind": "mla_bmm", "dtype": gemm_dt, "phase": "post", "heads": Hp, "tokens": {F_D: 1.0}}
            ops.append(op)
            # prefill: up-project the cached latent of every context token to per-head K_nope and V
            up = Hp * (a.qk_nope_head_dim + a.v_head_dim)
            op = _gemm("attn.mla_prefill_kv_up", "A", nA, {F_CTX: 1.0}, a.kv_lora_rank, up, wb, gemm_dt, gate=F_P)
            op.mem_bytes[F_CTX] += lat * kvb - a.kv_lora_rank * ACT_BYTES  # reads the cache, not an activation
            ops.append(op)
            ops.append(Op("attn.mla_prefill_core", "A", nA, attn_dt,
                          {F_PAIRS: 2.0 * Hp * (qk + a.v_head_dim)},
                          {F_CTX: Hp * (qk + a.v_head_dim) * ACT_BYTES, F_P: Hp * (qk + a.v_head_dim) * ACT_BYTES}, gate=F_P,
                          table={"kind": "mla_prefill", "dtype": "bf16", "heads": Hp, "batch": 1, "isl": {F_CTX: 1.0}}))
            ops.append(_gemm("attn.o_proj", "A", nA, tokens, Hp * a.v_head_dim, h, wb, gemm_dt))
            if conventions.mla_decode_overhead_us > 0:  # the decode module's kernels the op list does not name
                ops.append(Op("attn.mla_decode_overhead", "A", nA, seconds={F_ONE: conventions.mla_decode_overhead_us * 1e-6},
                              gate=F_D))
        else:
            Hp = a.num_heads / tp
            KVp = max(1.0, a.num_kv_heads / tp)
            d = a.head_dim
            op = _gemm("attn.qkv_proj", "A", nA, tokens, h, (Hp + 2 * KVp) * d, wb, gemm_dt)
            op.mem_bytes[F_T] += 2 * KVp * d * kvb
            ops.append(op)
            ops.append(Op("attn.gqa_decode_core", "A", nA, attn_dt, {F_DK: 4.0 * Hp * d},
                          {F_DK: 2 * KVp * d * kvb / q, F_D: 2 * Hp * d * ACT_BYTES}, gate=F_D))
            ops.append(Op("attn.gqa_prefill_core", "A", nA, attn_dt, {F_PAIRS: 4.0 * Hp * d},
                          {F_CTX: 2 * KVp * d * kvb, F_P: 2 * Hp * d * ACT_BYTES}, gate=F_P))
            ops.append(_gemm("attn.o_proj", "A", nA, tokens, Hp * d, h, wb, gemm_dt))
        allreduce("attn", nA)

    wb, gemm_dt = dtype_bytes(prec.class_weights("dense")), prec.class_compute("dense")  # dense, shared, latent, Mamba
    if nD:
        norm("dense", nD)
        n = ffn_matrices(model.dense_activation)
        if "dense_ffn" in plan.dp_sharded and dpn > 1:
            I = model.dense_ffn / G
            ops.append(_gemm("dense.ffn", "D", nD, {F_T: float(dpn)}, h, I * n, wb, gemm_dt, weight_elems=n * h * I))
            group_comm("dense.dp_gather_scatter", "D", nD, h)
        else:
            I = model.dense_ffn / tp
            ops.append(_gemm("dense.ffn", "D", nD, tokens, h, I * n, wb, gemm_dt, weight_elems=n * h * I))
            allreduce("dense", nD)

    if nE:
        m = model.moe
        norm("moe", nE)
        u = {F_T: per_tp}
        op = _gemm("moe.router", "E", nE, u, h, m.num_experts, BF16, "bf16")
        ops.append(op)
        if m.latent_dim:
            ops.append(_gemm("moe.latent_down", "E", nE, u, h, m.latent_dim, wb, gemm_dt))
            ops.append(_gemm("moe.latent_up", "E", nE, u, m.latent_dim, h, wb, gemm_dt))
        if m.num_shared:
            n = ffn_matrices(m.activation)
            if "shared_experts" in plan.dp_sharded and dpn > 1:
                S = m.num_shared * m.shared_ffn / G
                ops.append(_gemm("moe.shared_experts", "E", nE, {F_T: float(dpn)}, h, S * n, wb, gemm_dt, weight_elems=n * h * S))
                group_comm("moe.shared_dp_gather_scatter", "E", nE, h)
            else:
                S = m.num_shared * m.shared_ffn / tp
                ops.append(_gemm("moe.shared_experts", "E", nE, tokens, h, S * n, wb, gemm_dt, weight_elems=n * h * S))
                # under pure MoE tensor parallelism (EP 1, no attention DP) the routed experts' partial sums are
                # all-reduced over the same TP group, token by token, at the same width: the frameworks add the
                # shared experts' partial output first and all-reduce once (vLLM DeepseekV2MoE: shared + routed,
                # then one tensor_model_parallel_all_reduce); moe.expert_tp_allreduce carries it. LatentMoE's
                # routed output is reduced at the latent width, so its shared experts keep their own.
                if not (plan.ep == 1 and dpn == 1 and plan.moe_tp > 1 and not m.latent_dim):
                    allreduce("moe", nE)

    if nM:
        mb = model.mamba
        norm("mamba", nM)
        ops.append(_gemm("mamba.in_proj", "M", nM, tokens, h, mb.in_proj_out() / tp, wb, gemm_dt))
        di, conv = mb.d_inner / tp, mb.conv_dim / tp
        scan_flops = 2.0 * conv * mb.conv_kernel + SSD_FLOPS_PER_STATE * di * mb.state_size
        state = mb.state_elements_per_seq() / tp * dtype_bytes(prec.ssm_state)
        ops.append(Op("mamba.ssd_prefill", "M", nM, "bf16", {F_P: scan_flops}, {F_P: (conv + di) * 2 * ACT_BYTES}, gate=F_P))
        ops.append(Op("mamba.ssd_decode", "M", nM, "bf16", {F_D: scan_flops},
                      {F_D: 2.0 * state / q + (conv + di) * 2 * ACT_BYTES}, gate=F_D))
        ops.append(_gemm("mamba.out_proj", "M", nM, tokens, mb.d_inner / tp, h, wb, gemm_dt))
        allreduce("mamba", nM)

    # embedding gather (first stage) and LM head on the tokens that sample (decodes), vocab split over TP
    ops.append(Op("embed", "head", 1, "bf16", {}, {F_T: 2.0 * h * BF16}))
    norm("head", 1)
    if "embedding" in plan.dp_sharded and dpn > 1:  # vocab-parallel lookup, then an all-reduce over the group
        group_comm("embed.dp_allreduce", "head", 1, h)
    head_w, head_dt = dtype_bytes(prec.class_weights("embedding")), prec.class_compute("embedding")
    if "lm_head" in plan.dp_sharded and dpn > 1:
        # SGLang without --enable-dp-lm-head: gather the group's sampling tokens, each GPU computes its V/G
        # slice of the logits, then the logits are all-gathered (LogitsProcessor, DP-attention path)
        ops.append(_gemm("lm_head", "head", 1, {F_D: float(dpn)}, h, model.vocab_size / G, head_w, head_dt, gate=F_D))
        group_comm("lm_head.dp_gather", "head", 1, h + model.vocab_size, feature=F_D, gate=F_D, collectives=1.0)
    else:
        ops.append(_gemm("lm_head", "head", 1, {F_D: 1.0}, h, model.vocab_size / tp, head_w, head_dt, gate=F_D))
    # the engine's per-sequence CPU work in series with the GPU (HwProfile.seq_overhead_s), per decoding
    # sequence of the rank: the decode features count query tokens (q per sequence), hence / q
    if hw.seq_overhead_s > 0:
        ops.append(Op("runtime.seq_overhead", "runtime", 1, seconds={F_D: hw.seq_overhead_s / q}, gate=F_D))
    if plan.pp > 1:
        link = "nvlink" if plan.num_gpus <= hw.nvlink_domain_size else "scaleout"
        ops.append(Op("pp.p2p", "pp", plan.pp - 1, comm_bytes={F_T: h * ACT_BYTES / tp}, link=link, peers=2))
    return ops


@dataclass
class GroupOp:
    """A MoE-group op evaluated for one step: totals per GPU (FLOPs, bytes, bytes over each link)."""

    name: str
    count: int
    dtype: str
    flops: float = 0.0
    mem_bytes: float = 0.0
    nvlink_bytes: float = 0.0
    scaleout_bytes: float = 0.0
    #: shape for a measured-table lookup (constants only), or None; see :attr:`Op.table`
    table: dict | None = None
    peers: int = 0  # GPUs in the collective's group (full-mesh fabric); 0 = n/a


def remote_copies_per_token(num_experts: int, top_k: int, ep: int, ranks_per_node: int, mode: str) -> tuple[float, float]:
    """Expected copies of one token the all-to-all sends off its GPU, as ``(nvlink, scale-out)`` copies per
    EP rank of ``moe_tp`` GPUs (multiply by ``moe_tp`` for GPUs), for a group of ``ep`` ranks packed into
    nodes (NVLink domains) of ``ranks_per_node`` ranks. Uniform routing; docs/MODELING.md §4a.

    * ``per-pair``: ``K (ep-1)/ep`` copies, a fraction ``(ep - R)/(ep - 1)`` of the peers across nodes;
    * ``per-rank``: ``(ep-1) (1 - C(E-n, K)/C(E, K))`` copies (ranks holding any of the token's experts),
      split the same way;
    * ``per-node``: within the own node ``(R-1) p_rank``; one copy per other node hit,
      ``(N-1) (1 - C(E-Rn, K)/C(E, K))``, over scale-out, then forwarded over NVLink to the other ``R-1``
      ranks of that node that are hit, ``(N-1) (R-1) p_rank`` (each GPU forwards as much as it receives,
      so it is charged to the sender by symmetry).
    """
    if ep <= 1:
        return 0.0, 0.0
    n = num_experts // ep
    R = min(ranks_per_node, ep)
    remote = (ep - R) / (ep - 1)
    if mode == "per-pair":
        c = top_k * (ep - 1) / ep
        return c * (1 - remote), c * remote
    p_rank = 1.0 - miss_probability(num_experts, top_k, n)
    if mode == "per-rank" or R >= ep:
        c = (ep - 1) * p_rank
        return c * (1 - remote), c * remote
    nodes = ep // R
    p_node = 1.0 - miss_probability(num_experts, top_k, R * n)
    return nodes * (R - 1) * p_rank, (nodes - 1) * p_node


def expert_activation_bytes_per_pair(model: ModelSpec, moe_tp: int, fusion: str) -> float:
    """Activation bytes one (token, expert) pair moves through HBM in the routed experts, per GPU of the
    slot (the intermediate is split over ``moe_tp``); ``fusion`` a :data:`~.conventions.EXPERT_FUSIONS`
    name. ``d`` = expert input width, ``m`` = FFN width / moe_tp, ``g`` = up-projection matrices (2 gated):

    * fused:      ``d b_disp + 2 m b_act + d * 2`` (input at the dispatch dtype, intermediate written and
      read once at the activation dtype, output BF16);
    * act-kernel: ``d b_disp + 2 g m * 2 + 2 m b_act + d * 2`` (BF16 gate/up written and read by the
      activation kernel, which writes the quantised intermediate);
    * unfused:    ``(2 d + (f + 1) m) * 2`` (BF16 throughout, f = matrices per expert).
    """
    m = model.moe
    prec = model.precision
    d = m.expert_in_dim(model.hidden_size)
    f = ffn_matrices(m.activation)
    mi = m.expert_ffn / moe_tp
    if fusion == "unfused":
        return (2 * d + (f + 1) * mi) * ACT_BYTES
    b_disp = activation_bytes(dtype_bytes(prec.dispatch), prec.dispatch)
    b_act = activation_bytes(dtype_bytes(prec.activations), prec.activations)
    out = d * b_disp + 2 * mi * b_act + d * ACT_BYTES
    if fusion == "act-kernel":
        out += 2 * (f - 1) * mi * ACT_BYTES
    return out


def moe_group_ops(model: ModelSpec, plan: ParallelPlan, hw: HwProfile, total_tokens: float, max_rank_tokens: float,
                  imbalance: float = 1.0, *, prefill: bool = False,
                  conventions: Conventions = DEFAULT_CONVENTIONS) -> list[GroupOp]:
    """Dispatch, routed experts and combine of one step, per GPU, for all MoE blocks.

    ``total_tokens``: tokens of all attention-DP ranks (the EP group); ``max_rank_tokens``: tokens of the
    busiest rank (its GPUs send the most). The busiest EP rank's pairs (its grouped GEMM and what it
    receives) are the mean times the statistical busiest-rank ratio of uniform routing
    (:func:`~.routing.busiest_pairs_ratio`) times ``imbalance`` >= 1, the systematic imbalance on top
    (ignored at EP1, where every GPU holds a 1/moe_tp share of every expert).
    ``prefill``: the step runs a prefill chunk on some rank (selects the dispatch mode of ``conventions``).
    """
    nE = model.block_count("E")
    if not nE or total_tokens <= 0:
        return []
    m = model.moe
    prec = model.precision
    w = m.expert_in_dim(model.hidden_size)
    ep, moe_tp = plan.ep, plan.moe_tp
    K = m.top_k
    slots = plan.expert_slots(m.num_experts)
    # one EP rank holds every expert (split over moe_tp GPUs): there is no busiest rank to be imbalanced
    imbalance = imbalance * busiest_pairs_ratio(slots, K, ep, total_tokens) if ep > 1 else 1.0
    pairs_per_slot = total_tokens * K / ep * imbalance
    # all-to-all: copies a GPU sends (its token slice) or receives (the tokens of the other ranks that hit
    # its slot), whichever is larger; copies to the GPU's own slot stay on the GPU
    mode = conventions.dispatch(prefill)
    ranks_per_node = max(1, hw.nvlink_domain_size // moe_tp)
    c_nvl, c_so = remote_copies_per_token(slots, K, ep, ranks_per_node, mode)
    send = max_rank_tokens / plan.tp * moe_tp
    # receive: by symmetry a slot receives what an average rank sends, scaled by the busiest slot's imbalance
    recv = total_tokens / ep * imbalance
    ops = []
    for name, dt in (("moe.dispatch", prec.dispatch), ("moe.combine", prec.combine)):
        b = w * activation_bytes(dtype_bytes(dt), dt)
        nvl, so = max(send, recv) * c_nvl * b, max(send, recv) * c_so * b
        if nvl or so:
            # measured all-to-all tables key on the bytes each GPU holds, (ep-1)/ep of which it sends
            ops.append(GroupOp(name, nE, "", nvlink_bytes=nvl, scaleout_bytes=so, peers=plan.gpus_per_stage,
                               table={"kind": "alltoall", "domain": "scaleout" if so else "nvlink", "ranks": ep,
                                      "bytes": (nvl + so) * ep / (ep - 1)}))
    n = ffn_matrices(m.activation)
    # redundant copies split their expert's tokens: treat the E + R slots as equally likely destinations
    # (under popularity skew, conventions.routing_skew: fewer distinct experts; routing.py)
    touched = expected_max_experts_touched(slots, K, ep, total_tokens, conventions.routing_skew)
    # INT4 weight-only experts run a W4A16 grouped GEMM (dequantise in the kernel, BF16 math): its own
    # efficiencies (roofline.W4A16, HwProfile.w4a16_*); no measured table of another dtype stands in for it
    expert_dt = "w4a16" if prec.class_weights("experts") == "int4" and prec.class_compute("experts") == "bf16" \
        else prec.class_compute("experts")
    ops.append(GroupOp(
        "moe.routed_experts", nE, expert_dt,
        flops=2.0 * pairs_per_slot * n * w * m.expert_ffn / moe_tp,
        mem_bytes=touched * m.expert_params(model.hidden_size) * dtype_bytes(prec.class_weights("experts")) / moe_tp
        + pairs_per_slot * expert_activation_bytes_per_pair(model, moe_tp, conventions.expert_fusion),
        table=None if moe_tp > 1 or expert_dt == "w4a16" else {"kind": "moe", "dtype": expert_dt, "distribution": "balanced",
                                       "activation": m.activation, "tokens": total_tokens * imbalance, "hidden": w,
                                       "ffn": m.expert_ffn, "topk": K, "num_experts": m.num_experts, "ep": ep},
    ))
    if moe_tp > 1:
        # the slot's GPUs sum their partial expert outputs: with EP, per received copy (pair) before the combine
        # sends it back; without EP (ep 1, pure MoE tensor parallel) every GPU holds every token and first sums
        # its experts' outputs per token (the top-k weighted sum, vLLM fused_moe / moe_sum), then all-reduces
        # tokens x width once (vLLM DeepseekV2MoE / FusedMoE: one tensor_model_parallel_all_reduce per layer)
        rows = pairs_per_slot if ep > 1 else total_tokens
        ops.append(GroupOp("moe.expert_tp_allreduce", nE, "", nvlink_bytes=2.0 * (moe_tp - 1) / moe_tp * rows * w * ACT_BYTES,
                           peers=moe_tp))
    return [op for op in ops if op.flops or op.mem_bytes or op.nvlink_bytes or op.scaleout_bytes]

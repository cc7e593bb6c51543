"""ModelSpec: the architecture of a decoder-only LLM, as the cost model needs it.

A model is a sequence of *layers*; each layer is a string of *blocks* run in order, each block with its
own pre-norm:

==========  ===========================================================================================
block       what it is
==========  ===========================================================================================
``A``       attention: MLA (DeepSeek-V3 / Kimi-K2) or GQA (Qwen3, Nemotron-H)
``D``       dense FFN (SwiGLU or squared-ReLU) of width ``dense_ffn``
``E``       MoE FFN: router, routed experts (optionally in a latent space of width ``latent_dim``), shared experts
``M``       Mamba-2 mixer
==========  ===========================================================================================

A DeepSeek-style transformer layer is ``"AD"`` or ``"AE"``; a Nemotron-H layer is a single block
(``"M"``, ``"E"``, ``"A"`` or ``"D"``). Parameter counts follow the formula written out in
docs/MODELING.md (section "Parameters"), which reproduces DeepSeek-V3's published 671B exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

from ..errors import InputError

#: Bytes per element of each storage dtype. FP8 block scales (one fp32 per 128x128 block) add 0.02 % and
#: are ignored. NVFP4 stores one FP8 scale per 16 values: 4 + 8/16 = 4.5 bits (facts.md §1.3).
#: INT4 weight-only with group size 32 and a BF16 scale: 4 + 16/32 = 4.5 bits (Kimi-K2-Thinking's
#: compressed-tensors config, group_size 32, models.yaml).
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5625,
    "int4": 0.5625,
}

#: Tensor-core dtype used for a GEMM whose activations are stored in the given dtype.
#: W4A16 / int4 weight-only GEMMs dequantise to BF16 and run at BF16 peak.
COMPUTE_DTYPE = {"bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "int8": "fp8", "fp4": "fp4", "int4": "bf16"}

Activation = Literal["swiglu", "relu2"]


def dtype_bytes(dtype: str, where: str = "precision") -> float:
    """Bytes per element of ``dtype``; InputError naming ``where`` if unknown."""
    try:
        return BYTES_PER_ELEMENT[dtype]
    except KeyError:
        raise InputError(f"{where}: unknown dtype {dtype!r} (allowed: {', '.join(BYTES_PER_ELEMENT)})") from None


def ffn_matrices(activation: str) -> int:
    """Weight matrices of one FFN: SwiGLU has gate, up and down (3); squared-ReLU has up and down (2)."""
    return 3 if activation == "swiglu" else 2


@dataclass(frozen=True)
class Attention:
    """Attention block. ``kind='mla'`` uses the low-rank fields; ``kind='gqa'`` uses ``head_dim`` and KV heads."""

    kind: Literal["mla", "gqa"]
    num_heads: int
    num_kv_heads: int
    head_dim: int = 0  # GQA only
    q_lora_rank: int | None = None  # MLA: None means a direct h -> H*(nope+rope) query projection
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    qk_norm: bool = False  # GQA: per-head RMSNorm on q and k (Qwen3)

    def params(self, hidden: int) -> int:
        """Weights of one attention block (projections and internal norms), elements."""
        h, H = hidden, self.num_heads
        if self.kind == "mla":
            q = self.q_lora_rank
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q_proj = h * H * qk if not q else h * q + q + q * H * qk  # q_a, q_a_norm, q_b
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank  # + kv_a_norm
            kv_b = self.kv_lora_rank * H * (self.qk_nope_head_dim + self.v_head_dim)
            o = H * self.v_head_dim * h
            return q_proj + kv_a + kv_b + o
        d = self.head_dim
        return h * H * d + 2 * h * self.num_kv_heads * d + H * d * h + (2 * d if self.qk_norm else 0)

    def kv_elements_per_token(self) -> int:
        """KV-cache elements one token keeps in one attention block: MLA keeps the latent c_kv plus the
        shared RoPE key (512 + 64 = 576 for DeepSeek-V3/Kimi-K2); GQA keeps K and V per KV head."""
        if self.kind == "mla":
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim


@dataclass(frozen=True)
class MoE:
    """MoE FFN block. With ``latent_dim`` set it is a LatentMoE layer (arXiv 2601.18089 §3): the router
    and shared experts read the full hidden vector, routed experts live in the latent space
    (W_down: h -> latent, experts latent -> m -> latent, W_up: latent -> h)."""

    num_experts: int
    top_k: int
    expert_ffn: int  # m, intermediate width of one routed expert
    num_shared: int = 0
    shared_ffn: int = 0  # intermediate width of one shared expert
    activation: Activation = "swiglu"
    latent_dim: int | None = None
    router_bias: bool = False  # e_score_correction_bias (DeepSeek-V3 / Kimi-K2 noaux_tc)

    def expert_in_dim(self, hidden: int) -> int:
        """Width of the vectors that are dispatched to and computed by routed experts."""
        return self.latent_dim or hidden

    def expert_params(self, hidden: int) -> int:
        return ffn_matrices(self.activation) * self.expert_in_dim(hidden) * self.expert_ffn

    def shared_params(self, hidden: int) -> int:
        return self.num_shared * ffn_matrices(self.activation) * hidden * self.shared_ffn

    def router_params(self, hidden: int) -> int:
        return self.num_experts * hidden + (self.num_experts if self.router_bias else 0)

    def latent_proj_params(self, hidden: int) -> int:
        return 2 * hidden * self.latent_dim if self.latent_dim else 0

    def params(self, hidden: int, active: bool = False) -> int:
        experts = self.top_k if active else self.num_experts
        return (
            experts * self.expert_params(hidden)
            + self.shared_params(hidden)
            + self.router_params(hidden)
            + self.latent_proj_params(hidden)
        )


@dataclass(frozen=True)
class Mamba:
    """Mamba-2 mixer (Nemotron-H). d_inner = num_heads * head_dim."""

    num_heads: int
    head_dim: int
    state_size: int
    n_groups: int
    conv_kernel: int = 4

    @property
    def d_inner(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def conv_dim(self) -> int:
        """Channels of the causal conv: x plus B and C (n_groups * state each)."""
        return self.d_inner + 2 * self.n_groups * self.state_size

    def in_proj_out(self) -> int:
        """Output width of in_proj: z, x, B, C and dt."""
        return 2 * self.d_inner + 2 * self.n_groups * self.state_size + self.num_heads

    def params(self, hidden: int) -> int:
        return (
            hidden * self.in_proj_out()
            + self.conv_dim * self.conv_kernel + self.conv_dim  # conv weight + bias
            + 3 * self.num_heads  # dt_bias, A_log, D
            + self.d_inner  # gated RMSNorm
            + self.d_inner * hidden  # out_proj
        )

    def state_elements_per_seq(self) -> int:
        """Recurrent state one sequence keeps per Mamba block: SSM state plus the conv window."""
        return self.num_heads * self.head_dim * self.state_size + self.conv_dim * (self.conv_kernel - 1)


#: Weight classes with their own storage dtype (``Precision.class_weights``).
WEIGHT_CLASSES = ("experts", "attention", "dense", "embedding")

#: Tensor-core dtypes from narrowest to widest: a GEMM runs at the wider of its weights' and activations'.
_WIDTH = {"fp4": 0, "fp8": 1, "bf16": 2}


@dataclass(frozen=True)
class Precision:
    """Storage dtype of each tensor class.

    ``weights`` applies to the linear layers (attention projections, FFNs, experts, latent projections,
    Mamba projections); embeddings, LM head, norms and the router stay BF16 (as in the DeepSeek-V3 and
    Kimi-K2 FP8 checkpoints). Per weight class it can be overridden: ``expert_weights`` (routed experts),
    ``attention_weights`` (attention projections), ``dense_weights`` (dense FFN, shared experts, LatentMoE
    latent projections, Mamba projections) and ``embedding_weights`` (embedding and LM head). Quantised
    checkpoints differ by class: NVIDIA's NVFP4 checkpoints (nvidia/DeepSeek-R1-FP4, ModelOpt) quantise the
    routed experts and exclude attention, shared experts, LM head and MTP layers; Kimi-K2-Thinking's INT4
    quantises the routed experts only (compressed-tensors ignore list).

    ``activations`` sets the GEMM input dtype; a GEMM runs on the tensor cores of the wider of its
    activation and weight compute dtypes (:meth:`class_compute`; W4A16 INT4 runs at BF16, see
    COMPUTE_DTYPE). ``dispatch``/``combine`` are the EP all-to-all payload dtypes (the LatentMoE paper §2:
    FP4 dispatch, BF16 combine on GB200).
    """

    weights: str = "bf16"
    activations: str = "bf16"
    kv_cache: str = "bf16"
    attention: str = "bf16"  # dtype of the attention-core math
    dispatch: str = "bf16"
    combine: str = "bf16"
    ssm_state: str = "bf16"
    expert_weights: str | None = None  # None: ``weights``
    attention_weights: str | None = None  # None: ``weights``
    dense_weights: str | None = None  # None: ``weights``
    embedding_weights: str = "bf16"

    def validate(self, where: str) -> None:
        for name in ("weights", "activations", "kv_cache", "attention", "dispatch", "combine", "ssm_state",
                     "expert_weights", "attention_weights", "dense_weights", "embedding_weights"):
            if getattr(self, name) is not None:
                dtype_bytes(getattr(self, name), f"{where}: precision.{name}")
        # GEMM inputs need a tensor-core dtype (COMPUTE_DTYPE); fp32 is a storage dtype only (KV, state, combine)
        for name in ("weights", "activations", "expert_weights", "attention_weights", "dense_weights", "embedding_weights"):
            value = getattr(self, name)
            if value is not None and value not in COMPUTE_DTYPE:
                raise InputError(f"{where}: precision.{name} = {value!r} is not a GEMM dtype "
                                 f"(allowed: {', '.join(COMPUTE_DTYPE)})")

    @property
    def gemm_compute_dtype(self) -> str:
        return COMPUTE_DTYPE[self.activations]

    def class_weights(self, cls: str) -> str:
        """Storage dtype of one weight class (``WEIGHT_CLASSES``)."""
        if cls == "embedding":
            return self.embedding_weights
        own = getattr(self, f"{'expert' if cls == 'experts' else cls}_weights")
        return own or self.weights

    def class_compute(self, cls: str) -> str:
        """Tensor-core dtype of the GEMMs of one weight class: the wider of the activations' and the weights'
        compute dtypes (FP8 attention weights with FP4 activations run FP8 GEMMs)."""
        a, w = COMPUTE_DTYPE[self.activations], COMPUTE_DTYPE[self.class_weights(cls)]
        return a if _WIDTH[a] >= _WIDTH[w] else w

    def by_class(self) -> dict[str, str]:
        """Weight dtype per class, for labels and records."""
        return {c: self.class_weights(c) for c in WEIGHT_CLASSES}


@lru_cache(maxsize=1024)
def _count_blocks(layers: tuple[str, ...], block: str) -> int:
    """Blocks of one kind over the layer strings (cached: the cost model asks at every EP-group evaluation)."""
    return sum(layer.count(block) for layer in layers)


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only LLM: its layers, block shapes, vocabulary and precision."""

    name: str
    hidden_size: int
    vocab_size: int
    layers: tuple[str, ...]
    attention: Attention | None = None
    moe: MoE | None = None
    mamba: Mamba | None = None
    dense_ffn: int = 0
    dense_activation: Activation = "swiglu"
    tie_embeddings: bool = False
    max_context: int = 131072
    precision: Precision = field(default_factory=Precision)
    description: str = ""
    source: str = ""
    #: published totals for comparison (not used in any computation)
    reported: dict[str, float] = field(default_factory=dict, compare=False)

    # ---- structure -------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def block_count(self, block: str) -> int:
        """How many blocks of one kind ('A', 'D', 'E', 'M') the model has."""
        return _count_blocks(self.layers, block)

    def validate(self, where: str | None = None) -> "ModelSpec":
        where = where or f"model {self.name}"
        if self.hidden_size <= 0 or self.vocab_size <= 0 or not self.layers:
            raise InputError(f"{where}: hidden_size, vocab_size must be > 0 and layers non-empty")
        for layer in self.layers:
            if not layer or set(layer) - set("ADEM"):
                raise InputError(f"{where}: layer {layer!r} must be made of blocks A, D, E, M")
        needs = {"A": self.attention, "E": self.moe, "M": self.mamba}
        for block, spec in needs.items():
            if self.block_count(block) and spec is None:
                raise InputError(f"{where}: has {block} blocks but no {dict(A='attention', E='moe', M='mamba')[block]} section")
        if self.block_count("D") and self.dense_ffn <= 0:
            raise InputError(f"{where}: has dense FFN blocks but dense_ffn = {self.dense_ffn} (must be > 0)")
        if self.moe is not None:
            m = self.moe
            if not 1 <= m.top_k <= m.num_experts:
                raise InputError(f"{where}: moe.top_k = {m.top_k} out of range [1, num_experts={m.num_experts}]")
            if m.expert_ffn <= 0:
                raise InputError(f"{where}: moe.expert_ffn = {m.expert_ffn} must be > 0")
            if m.latent_dim is not None and not 0 < m.latent_dim <= self.hidden_size:
                raise InputError(f"{where}: moe.latent_dim = {m.latent_dim} out of range (0, hidden_size={self.hidden_size}]")
        self.precision.validate(where)
        return self

    # ---- parameters ------------------------------------------------------------------------------
    def block_params(self, block: str, active: bool = False) -> int:
        """Weights of one block including its pre-norm, elements."""
        h = self.hidden_size
        if block == "A":
            return self.attention.params(h) + h
        if block == "D":
            return ffn_matrices(self.dense_activation) * h * self.dense_ffn + h
        if block == "E":
            return self.moe.params(h, active) + h
        if block == "M":
            return self.mamba.params(h) + h
        raise ValueError(block)

    def embedding_params(self) -> int:
        """Input embedding plus LM head (once if tied) plus the final norm."""
        return (1 if self.tie_embeddings else 2) * self.vocab_size * self.hidden_size + self.hidden_size

    def _params(self, active: bool) -> int:
        blocks = sum(n * self.block_params(b, active) for b in "ADEM" if (n := self.block_count(b)))
        return blocks + self.embedding_params()

    @property
    def total_params(self) -> int:
        """All weights (MTP heads excluded), elements."""
        return self._params(active=False)

    @property
    def active_params(self) -> int:
        """Weights one token touches (top-k routed experts), embedding and LM head included."""
        return self._params(active=True)

    @property
    def routed_expert_params(self) -> int:
        """Weights of all routed experts in all MoE blocks."""
        if self.moe is None:
            return 0
        return self.block_count("E") * self.moe.num_experts * self.moe.expert_params(self.hidden_size)

    # ---- caches ----------------------------------------------------------------------------------
    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes one token keeps across all attention blocks (MLA: 576 values per layer)."""
        if self.attention is None:
            return 0.0
        elems = self.block_count("A") * self.attention.kv_elements_per_token()
        return elems * dtype_bytes(self.precision.kv_cache)

    @property
    def state_bytes_per_seq(self) -> float:
        """Fixed recurrent-state bytes one sequence keeps across all Mamba blocks."""
        if self.mamba is None:
            return 0.0
        return self.block_count("M") * self.mamba.state_elements_per_seq() * dtype_bytes(self.precision.ssm_state)

    # ---- derived variants ------------------------------------------------------------------------
    def with_layers(self, layers: tuple[str, ...], name: str | None = None) -> "ModelSpec":
        return replace(self, layers=tuple(layers), name=name or self.name, reported={})

    def with_precision(self, **dtypes: str) -> "ModelSpec":
        """A copy with some precision fields replaced (None values are ignored)."""
        changes = {k: v for k, v in dtypes.items() if v is not None}
        spec = replace(self, precision=replace(self.precision, **changes))
        spec.precision.validate(f"model {self.name}")
        return spec

    def summary(self) -> dict:
        """The JSON view used by `lmsim models show --json`."""
        from dataclasses import asdict

        out = {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "total_params": self.total_params,
            "active_params": self.active_params,
            "num_layers": self.num_layers,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "state_bytes_per_seq": self.state_bytes_per_seq,
            "routed_expert_params": self.routed_expert_params,
            "blocks": {b: self.block_count(b) for b in "ADEM" if self.block_count(b)},
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "dense_ffn": self.dense_ffn,
            "tie_embeddings": self.tie_embeddings,
            "attention": asdict(self.attention) if self.attention else None,
            "moe": asdict(self.moe) if self.moe else None,
            "mamba": asdict(self.mamba) if self.mamba else None,
            "precision": asdict(self.precision),
            "layers": compress_layers(self.layers),
            "reported": dict(self.reported),
        }
        return out


def compress_layers(layers: tuple[str, ...]) -> list[list]:
    """Run-length form of a layer list: [["AD", 1], ["AE", 60]]."""
    runs: list[list] = []
    for layer in layers:
        if runs and runs[-1][0] == layer:
            runs[-1][1] += 1
        else:
            runs.append([layer, 1])
    return runs


def to_latentmoe(spec: ModelSpec, alpha: int = 4, variant: Literal["acc", "eff"] = "acc", name: str | None = None) -> ModelSpec:
    """The LatentMoE rule of arXiv 2601.18089 §3: latent width h/alpha, alpha x more experts, and for the
    recommended ``acc`` variant alpha x top-k (``eff`` keeps top-k). Expert FFN width, router (now over
    alpha*N experts, full width) and shared experts (full width) are unchanged."""
    if spec.moe is None:
        raise InputError(f"model {spec.name}: has no MoE blocks to convert to LatentMoE")
    if spec.hidden_size % alpha:
        raise InputError(f"model {spec.name}: hidden_size {spec.hidden_size} not divisible by alpha = {alpha}")
    m = spec.moe
    moe = replace(
        m,
        latent_dim=spec.hidden_size // alpha,
        num_experts=m.num_experts * alpha,
        top_k=m.top_k * alpha if variant == "acc" else m.top_k,
    )
    return replace(spec, moe=moe, name=name or f"{spec.name}-latentmoe", reported={})

"""Schema of a model catalog entry (``sim/models/catalog/*.yaml`` or any ``--model path.yaml``).

The entry is validated **after** it is merged over its ``base`` (see :mod:`latentmoe_sim.models.catalog`),
so a derived entry may leave fields out that its base gives. Every field is typed strictly (``top_k: "8"``,
``top_k: 2.5``, ``tie_embeddings: "no"`` and ``expert_ffn: .nan`` are refused) and bounded.

Bounds. Lower bounds are what the formula needs (a count >= 1, a width >= 1; zero only where zero means
"none", e.g. ``num_shared: 0``). Upper bounds leave one to two orders of magnitude above the largest model
in the catalog (``sim/models/catalog/``: hidden 7168 and vocabulary 163,840 for Kimi-K2; 1,536 routed
experts top-32 for Kimi-K2-LatentMoE; 94 layers for Qwen3-235B; dense FFN 18,432 for DeepSeek-V3), so that
every published architecture fits while a typo (``layers: [[AE, 200000000]]``) is refused before it costs
memory or minutes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel

__all__ = ["MAX_LAYERS", "LayerFields", "ModelEntry", "AttentionEntry", "MoEEntry", "MambaEntry", "PrecisionEntry", "Dtype"]

#: Most layers a model may have: 10x the deepest catalog model (Qwen3-235B, 94) plus room for EPM depth
#: variants; each layer costs a cost-model pass, so this bounds a run's setup time.
MAX_LAYERS = 2048
_WIDTH = 1 << 20  # hidden/FFN widths: 1,048,576 (146x Kimi-K2's 7168 hidden, 57x DeepSeek-V3's 18,432 FFN)
_HEADS = 4096  # attention/Mamba heads and head dims (32x the 128 of DeepSeek-V3/Kimi-K2/Mamba-2)
_EXPERTS = 65536  # routed experts (42x Kimi-K2-LatentMoE's 1,536)

#: Storage dtypes (sim/models/spec.py BYTES_PER_ELEMENT), spelled as the precision fields take them.
Dtype = Literal["fp32", "bf16", "fp16", "fp8", "int8", "fp4", "int4"]
Activation = Literal["swiglu", "relu2"]


def _count(lo: int, hi: int) -> Any:
    return Annotated[int, Field(ge=lo, le=hi)]


_TEXT = Annotated[str, Field(max_length=2000)]
_NAME = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$",
                             json_schema_extra={"allowed": "1 to 200 printable characters"})]


class AttentionEntry(StrictModel):
    """``attention:`` MLA (``kv_lora_rank``, ``qk_*_head_dim``, ``v_head_dim``) or GQA (``head_dim``)."""

    kind: Literal["mla", "gqa"]
    num_heads: _count(1, _HEADS)
    num_kv_heads: _count(1, _HEADS)
    head_dim: _count(0, _HEADS) = 0
    q_lora_rank: _count(1, _WIDTH) | None = None
    kv_lora_rank: _count(0, _WIDTH) = 0
    qk_nope_head_dim: _count(0, _HEADS) = 0
    qk_rope_head_dim: _count(0, _HEADS) = 0
    v_head_dim: _count(0, _HEADS) = 0
    qk_norm: bool = False


class MoEEntry(StrictModel):
    """``moe:`` routed experts (``latent_dim`` set: a LatentMoE layer), shared experts, router."""

    num_experts: _count(1, _EXPERTS)
    top_k: _count(1, _EXPERTS)
    expert_ffn: _count(1, _WIDTH)
    num_shared: _count(0, 256) = 0
    shared_ffn: _count(0, _WIDTH) = 0
    activation: Activation = "swiglu"
    latent_dim: _count(1, _WIDTH) | None = None
    router_bias: bool = False


class MambaEntry(StrictModel):
    """``mamba:`` a Mamba-2 mixer (d_inner = num_heads * head_dim)."""

    num_heads: _count(1, _HEADS)
    head_dim: _count(1, _HEADS)
    state_size: _count(1, _HEADS)
    n_groups: _count(1, _HEADS)
    conv_kernel: _count(1, 64) = 4


class PrecisionEntry(StrictModel):
    """``precision:`` storage dtype of each tensor class (see ``ModelSpec.Precision``)."""

    weights: Dtype = "bf16"
    activations: Dtype = "bf16"
    kv_cache: Dtype = "bf16"
    attention: Dtype = "bf16"
    dispatch: Dtype = "bf16"
    combine: Dtype = "bf16"
    ssm_state: Dtype = "bf16"
    #: per weight class (sim/precision.py); None: ``weights``
    expert_weights: Dtype | None = None
    attention_weights: Dtype | None = None
    dense_weights: Dtype | None = None
    embedding_weights: Dtype = "bf16"


class LatentMoEEntry(StrictModel):
    """``latentmoe:`` apply the paper's rule (arXiv 2601.18089 §3) to the entry: latent width h/alpha."""

    alpha: _count(1, 64) = 4
    variant: Literal["acc", "eff"] = "acc"


_BLOCKS = re.compile(r"^[ADEM]{1,16}$")


class LayerFields(StrictModel):
    """The layer structure: runs (``layers: [[AD, 1], [AE, 60]]``) or a Nemotron-H pattern
    (``hybrid_pattern: "MEME*"``, M Mamba-2, E MoE, * attention, - dense MLP), exactly one of the two."""

    layers: Annotated[list[list[Any]], Field(min_length=1, max_length=MAX_LAYERS,
                                             json_schema_extra={"allowed": f"a non-empty list of [BLOCKS, COUNT] runs, "
                                                                           f"BLOCKS from A D E M, COUNT in [1, {MAX_LAYERS}]"})] | None = None
    hybrid_pattern: Annotated[str, Field(min_length=1, max_length=MAX_LAYERS, pattern=r"^[ME*\-]+$",
                                         json_schema_extra={"allowed": f"1 to {MAX_LAYERS} of the characters M E * -"})] | None = None

    @field_validator("layers")
    @classmethod
    def _runs(cls, runs: list[list[Any]] | None) -> list[list[Any]] | None:
        if runs is None:
            return runs
        total = 0
        for i, run in enumerate(runs):
            if len(run) != 2:
                raise ValueError(f"entry [{i}] must be [BLOCKS, COUNT], got a list of {len(run)} items")
            blocks, count = run
            if not isinstance(blocks, str) or not _BLOCKS.match(blocks):
                raise ValueError(f"entry [{i}]: BLOCKS must be 1 to 16 of the letters A D E M (e.g. AE)")
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_LAYERS:
                raise ValueError(f"entry [{i}]: COUNT must be an integer in [1, {MAX_LAYERS}]")
            total += count
            if total > MAX_LAYERS:
                raise ValueError(f"more than {MAX_LAYERS} layers in all")
        return runs

    @model_validator(mode="after")
    def _exactly_one(self) -> "LayerFields":
        if (self.layers is None) == (self.hybrid_pattern is None):
            raise ValueError("give exactly one of layers (runs such as [[AE, 60]]) and hybrid_pattern")
        return self

    def layer_tuple(self) -> tuple[str, ...]:
        """The layers as ModelSpec wants them (``M``/``E``/``A``/``D`` per Nemotron-H layer)."""
        if self.layers is not None:
            return tuple(b for b, n in self.layers for _ in range(n))
        return tuple({"*": "A", "-": "D"}.get(c, c) for c in self.hybrid_pattern)


class ModelEntry(LayerFields):
    """A catalog entry after merging over its base."""

    name: _NAME
    description: _TEXT = ""
    source: _TEXT = ""
    hidden_size: _count(1, _WIDTH)
    vocab_size: _count(1, 1 << 24)
    tie_embeddings: bool = False
    max_context: _count(1, 1 << 24) = 131072
    dense_ffn: _count(0, _WIDTH) = 0
    dense_activation: Activation = "swiglu"
    attention: AttentionEntry | None = None
    moe: MoEEntry | None = None
    mamba: MambaEntry | None = None
    precision: PrecisionEntry = PrecisionEntry()
    latentmoe: LatentMoEEntry | None = None
    reported: dict[str, float] = {}

    @model_validator(mode="after")
    def _consistent(self) -> "ModelEntry":
        blocks = "".join(b * n for b, n in self.layers) if self.layers else self.hybrid_pattern.replace("*", "A").replace("-", "D")
        for block, section, what in (("A", self.attention, "attention"), ("E", self.moe, "moe"), ("M", self.mamba, "mamba")):
            if block in blocks and section is None:
                raise ValueError(f"the layers have {block} blocks but there is no {what} section")
        if "D" in blocks and self.dense_ffn < 1:
            raise ValueError(f"the layers have dense (D) blocks: dense_ffn = {self.dense_ffn} must be >= 1")
        m, a = self.moe, self.attention
        if m is not None:
            if m.top_k > m.num_experts:
                raise ValueError(f"moe.top_k = {m.top_k} out of range, allowed [1, moe.num_experts = {m.num_experts}]")
            if m.latent_dim is not None and m.latent_dim > self.hidden_size:
                raise ValueError(f"moe.latent_dim = {m.latent_dim} out of range, allowed [1, hidden_size = {self.hidden_size}]")
            if m.num_shared and not m.shared_ffn:
                raise ValueError(f"moe.num_shared = {m.num_shared} needs moe.shared_ffn >= 1")
        if a is not None:
            if a.num_kv_heads > a.num_heads:
                raise ValueError(f"attention.num_kv_heads = {a.num_kv_heads} out of range, allowed [1, attention.num_heads = {a.num_heads}]")
            if a.kind == "gqa" and a.head_dim < 1:
                raise ValueError("attention.head_dim must be >= 1 for kind gqa")
            if a.kind == "mla" and (a.kv_lora_rank < 1 or a.v_head_dim < 1 or a.qk_nope_head_dim + a.qk_rope_head_dim < 1):
                raise ValueError("attention of kind mla needs kv_lora_rank, v_head_dim and qk_nope_head_dim + qk_rope_head_dim >= 1")
        if self.latentmoe is not None:
            if m is None:
                raise ValueError("latentmoe needs a moe section")
            alpha = self.latentmoe.alpha
            if self.hidden_size % alpha:
                raise ValueError(f"latentmoe.alpha = {alpha} must divide hidden_size = {self.hidden_size}")
            if m.num_experts * alpha > _EXPERTS:
                raise ValueError(f"latentmoe.alpha = {alpha} makes {m.num_experts * alpha} experts, over the {_EXPERTS} allowed")
        return self

"""Schema of the Hugging Face ``config.json`` fields that :mod:`latentmoe_sim.models.hf_import` reads.

One model per supported family. Unlike our own files, a HF config carries dozens of keys we do not use
(``rope_scaling``, ``initializer_range``, ...), so unknown keys are **ignored** here, not refused; every key
that *is* read is typed strictly and bounded with the same limits as a catalog entry
(:mod:`latentmoe_sim.schema.model`): ``num_hidden_layers: 61.5``, ``decoder_sparse_step: 0``,
``moe_layer_freq: "abc"`` and ``num_experts_per_tok: 2.5`` are refused with one line naming the file and
the key.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from .base import StrictModel
from .model import _EXPERTS, _HEADS, _WIDTH, MAX_LAYERS

__all__ = ["HFCommon", "DeepseekV3Config", "Qwen3MoeConfig", "NemotronHConfig", "FAMILIES"]


def _count(lo: int, hi: int) -> Any:
    return Annotated[int, Field(ge=lo, le=hi)]


class HFCommon(StrictModel):
    """Keys every supported family has. Unknown keys are ignored (HF configs carry many we do not use)."""

    model_config = ConfigDict(extra="ignore")

    model_type: str = ""
    architectures: list[str] | None = None
    hidden_size: _count(1, _WIDTH)
    vocab_size: _count(1, 1 << 24)
    tie_word_embeddings: bool = False
    max_position_embeddings: _count(1, 1 << 24) = 131072
    intermediate_size: _count(0, _WIDTH) | None = None
    num_attention_heads: _count(1, _HEADS)
    quantization_config: dict[str, Any] | None = None


class DeepseekV3Config(HFCommon):
    """DeepSeek-V3 / Kimi-K2 (``DeepseekV3ForCausalLM``): MLA and MoE after ``first_k_dense_replace`` dense layers."""

    num_hidden_layers: _count(1, MAX_LAYERS)
    num_key_value_heads: _count(1, _HEADS) | None = None
    q_lora_rank: _count(1, _WIDTH) | None = None
    kv_lora_rank: _count(1, _WIDTH)
    qk_nope_head_dim: _count(0, _HEADS)
    qk_rope_head_dim: _count(0, _HEADS)
    v_head_dim: _count(1, _HEADS)
    moe_intermediate_size: _count(1, _WIDTH)
    n_routed_experts: _count(1, _EXPERTS)
    num_experts_per_tok: _count(1, _EXPERTS)
    n_shared_experts: _count(0, 256) | None = None
    first_k_dense_replace: _count(0, MAX_LAYERS) = 0
    moe_layer_freq: _count(1, MAX_LAYERS) = 1
    moe_latent_size: _count(1, _WIDTH) | None = None
    topk_method: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "DeepseekV3Config":
        _top_k(self.num_experts_per_tok, "n_routed_experts", self.n_routed_experts)
        _latent(self.moe_latent_size, self.hidden_size)
        if self.first_k_dense_replace > self.num_hidden_layers:
            raise ValueError(f"first_k_dense_replace = {self.first_k_dense_replace} out of range, "
                             f"allowed [0, num_hidden_layers = {self.num_hidden_layers}]")
        if self.qk_nope_head_dim + self.qk_rope_head_dim < 1:
            raise ValueError("qk_nope_head_dim + qk_rope_head_dim must be >= 1")
        if self.first_k_dense_replace and not self.intermediate_size:
            raise ValueError("intermediate_size (the dense layers' FFN width) must be >= 1 when first_k_dense_replace > 0")
        return self


class Qwen3MoeConfig(HFCommon):
    """Qwen3-MoE (``Qwen3MoeForCausalLM``): GQA with q/k norm; MoE every ``decoder_sparse_step`` layers."""

    num_hidden_layers: _count(1, MAX_LAYERS)
    num_key_value_heads: _count(1, _HEADS)
    head_dim: _count(1, _HEADS) | None = None
    num_experts: _count(1, _EXPERTS)
    num_experts_per_tok: _count(1, _EXPERTS)
    moe_intermediate_size: _count(1, _WIDTH)
    decoder_sparse_step: _count(1, MAX_LAYERS) = 1
    mlp_only_layers: Annotated[list[_count(0, MAX_LAYERS - 1)], Field(max_length=MAX_LAYERS)] = []

    @model_validator(mode="after")
    def _consistent(self) -> "Qwen3MoeConfig":
        _top_k(self.num_experts_per_tok, "num_experts", self.num_experts)
        _kv_heads(self.num_key_value_heads, self.num_attention_heads)
        _head_dim(self.head_dim, self.hidden_size, self.num_attention_heads)
        dense = set(self.mlp_only_layers) | {i for i in range(self.num_hidden_layers) if (i + 1) % self.decoder_sparse_step}
        if any(i < self.num_hidden_layers for i in dense) and not self.intermediate_size:
            raise ValueError("intermediate_size (the dense layers' FFN width) must be >= 1 when some layers are dense")
        return self


class NemotronHConfig(HFCommon):
    """Nemotron-H (``NemotronHForCausalLM``): a ``hybrid_override_pattern`` of Mamba-2 (M), MoE (E),
    attention (*) and MLP (-) layers; LatentMoE via ``moe_latent_size``."""

    hybrid_override_pattern: Annotated[str, Field(min_length=1, max_length=MAX_LAYERS, pattern=r"^[ME*\-]+$",
                                                  json_schema_extra={"allowed": f"1 to {MAX_LAYERS} of the characters M E * -"})]
    num_key_value_heads: _count(1, _HEADS)
    head_dim: _count(1, _HEADS) | None = None
    mlp_hidden_act: str = "relu2"
    n_routed_experts: _count(1, _EXPERTS) | None = None
    num_experts_per_tok: _count(1, _EXPERTS) | None = None
    moe_intermediate_size: _count(1, _WIDTH) | None = None
    n_shared_experts: _count(0, 256) | None = None
    moe_shared_expert_intermediate_size: _count(0, _WIDTH) | None = None
    moe_latent_size: _count(1, _WIDTH) | None = None
    mamba_num_heads: _count(1, _HEADS)
    mamba_head_dim: _count(1, _HEADS)
    ssm_state_size: _count(1, _HEADS)
    n_groups: _count(1, _HEADS) = 8
    conv_kernel: _count(1, 64) = 4

    @model_validator(mode="after")
    def _consistent(self) -> "NemotronHConfig":
        _kv_heads(self.num_key_value_heads, self.num_attention_heads)
        _head_dim(self.head_dim, self.hidden_size, self.num_attention_heads)
        if "E" in self.hybrid_override_pattern:
            for key in ("n_routed_experts", "num_experts_per_tok", "moe_intermediate_size"):
                if getattr(self, key) is None:
                    raise ValueError(f"{key} is required: hybrid_override_pattern has MoE (E) layers")
            _top_k(self.num_experts_per_tok, "n_routed_experts", self.n_routed_experts)
            _latent(self.moe_latent_size, self.hidden_size)
        if "-" in self.hybrid_override_pattern and not self.intermediate_size:
            raise ValueError("intermediate_size must be >= 1: hybrid_override_pattern has MLP (-) layers")
        return self


#: model_type -> schema, and the ``architectures`` substring that also selects it.
FAMILIES: dict[str, tuple[type[HFCommon], tuple[str, ...]]] = {
    "deepseek_v3": (DeepseekV3Config, ("Deepseek",)),
    "kimi_k2": (DeepseekV3Config, ()),
    "deepseek_v2": (DeepseekV3Config, ()),
    "qwen3_moe": (Qwen3MoeConfig, ("Qwen3Moe",)),
    "nemotron_h": (NemotronHConfig, ("NemotronH",)),
}


def _top_k(top_k: int, experts_key: str, experts: int) -> None:
    if top_k > experts:
        raise ValueError(f"num_experts_per_tok = {top_k} out of range, allowed [1, {experts_key} = {experts}]")


def _latent(latent: int | None, hidden: int) -> None:
    if latent is not None and latent > hidden:
        raise ValueError(f"moe_latent_size = {latent} out of range, allowed [1, hidden_size = {hidden}]")


def _kv_heads(kv: int, heads: int) -> None:
    if kv > heads:
        raise ValueError(f"num_key_value_heads = {kv} out of range, allowed [1, num_attention_heads = {heads}]")


def _head_dim(head_dim: int | None, hidden: int, heads: int) -> None:
    if head_dim is None and hidden // heads < 1:
        raise ValueError(f"head_dim is absent and hidden_size // num_attention_heads = {hidden} // {heads} is 0")

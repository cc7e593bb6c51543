"""Read a Hugging Face ``config.json`` into a ModelSpec.

Supported families (by ``model_type`` / ``architectures``):

* DeepSeek-V3 style (``deepseek_v3``, ``kimi_k2``; DeepseekV3ForCausalLM): MLA + MoE with
  ``first_k_dense_replace`` dense layers;
* Qwen3-MoE (``qwen3_moe``; Qwen3MoeForCausalLM): GQA + MoE, ``decoder_sparse_step`` and ``mlp_only_layers``;
* Nemotron-H (``nemotron_h``): a ``hybrid_override_pattern`` of Mamba-2 / MoE / attention / MLP layers,
  LatentMoE via ``moe_latent_size``.

Precision comes from ``quantization_config`` (fp8 -> FP8 weights and activations) or ``torch_dtype``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .catalog import parse_layers
from .spec import Attention, Mamba, ModelSpec, MoE, Precision


def _get(cfg: dict, key: str, where: str, default=None):
    value = cfg.get(key, default)
    if value is None:
        raise InputError(f"{where}: missing field {key}")
    return value


def _precision(cfg: dict) -> Precision:
    quant = cfg.get("quantization_config") or {}
    method = str(quant.get("quant_method", "")).lower()
    if "fp8" in method or quant.get("fmt") == "e4m3":
        return Precision(weights="fp8", activations="fp8", dispatch="fp8")
    if "fp4" in method or "nvfp4" in str(quant).lower():
        return Precision(weights="fp4", activations="fp4", dispatch="fp4")
    return Precision()


def spec_from_hf_config(path: str | Path, name: str | None = None) -> ModelSpec:
    where = str(path)
    try:
        cfg = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: line {exc.lineno} malformed JSON ({exc.msg})") from None
    cfg = cfg.get("text_config", cfg) if isinstance(cfg, dict) else cfg
    if not isinstance(cfg, dict):
        raise InputError(f"{where}: expected a JSON object")
    mtype = str(cfg.get("model_type", "")).lower()
    arch = " ".join(cfg.get("architectures") or [])
    name = name or Path(path).parent.name or Path(path).stem
    common = dict(
        name=name,
        hidden_size=_get(cfg, "hidden_size", where),
        vocab_size=_get(cfg, "vocab_size", where),
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        max_context=int(cfg.get("max_position_embeddings", 131072)),
        precision=_precision(cfg),
        description=f"imported from {Path(path).name} ({mtype or arch})",
        source=str(path),
    )
    if mtype in ("deepseek_v3", "kimi_k2", "deepseek_v2") or "Deepseek" in arch:
        L = _get(cfg, "num_hidden_layers", where)
        k_dense = int(cfg.get("first_k_dense_replace", 0))
        freq = int(cfg.get("moe_layer_freq", 1))
        layers = tuple("AD" if (i < k_dense or (i - k_dense) % freq) else "AE" for i in range(L))
        attention = Attention(
            kind="mla",
            num_heads=_get(cfg, "num_attention_heads", where),
            num_kv_heads=cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
            q_lora_rank=cfg.get("q_lora_rank"),
            kv_lora_rank=_get(cfg, "kv_lora_rank", where),
            qk_nope_head_dim=_get(cfg, "qk_nope_head_dim", where),
            qk_rope_head_dim=_get(cfg, "qk_rope_head_dim", where),
            v_head_dim=_get(cfg, "v_head_dim", where),
        )
        m = _get(cfg, "moe_intermediate_size", where)
        moe = MoE(
            num_experts=_get(cfg, "n_routed_experts", where),
            top_k=_get(cfg, "num_experts_per_tok", where),
            expert_ffn=m,
            num_shared=int(cfg.get("n_shared_experts") or 0),
            shared_ffn=m,
            latent_dim=cfg.get("moe_latent_size"),
            router_bias=cfg.get("topk_method") == "noaux_tc",
        )
        spec = ModelSpec(layers=layers, attention=attention, moe=moe, dense_ffn=int(cfg.get("intermediate_size", 0)), **common)
    elif mtype == "qwen3_moe" or "Qwen3Moe" in arch:
        L = _get(cfg, "num_hidden_layers", where)
        step = int(cfg.get("decoder_sparse_step", 1))
        dense_only = set(cfg.get("mlp_only_layers") or [])
        layers = tuple("AE" if (i not in dense_only and (i + 1) % step == 0) else "AD" for i in range(L))
        heads = _get(cfg, "num_attention_heads", where)
        attention = Attention(
            kind="gqa",
            num_heads=heads,
            num_kv_heads=_get(cfg, "num_key_value_heads", where),
            head_dim=int(cfg.get("head_dim") or cfg["hidden_size"] // heads),
            qk_norm=True,
        )
        moe = MoE(
            num_experts=_get(cfg, "num_experts", where),
            top_k=_get(cfg, "num_experts_per_tok", where),
            expert_ffn=_get(cfg, "moe_intermediate_size", where),
        )
        spec = ModelSpec(layers=layers, attention=attention, moe=moe, dense_ffn=int(cfg.get("intermediate_size", 0)), **common)
    elif mtype == "nemotron_h" or "NemotronH" in arch:
        pattern = _get(cfg, "hybrid_override_pattern", where)
        layers = parse_layers({"hybrid_pattern": pattern}, where)
        heads = _get(cfg, "num_attention_heads", where)
        attention = Attention(
            kind="gqa",
            num_heads=heads,
            num_kv_heads=_get(cfg, "num_key_value_heads", where),
            head_dim=int(cfg.get("head_dim") or cfg["hidden_size"] // heads),
        )
        act = "relu2" if str(cfg.get("mlp_hidden_act", "relu2")) == "relu2" else "swiglu"
        moe = None
        if "E" in layers:
            moe = MoE(
                num_experts=_get(cfg, "n_routed_experts", where),
                top_k=_get(cfg, "num_experts_per_tok", where),
                expert_ffn=_get(cfg, "moe_intermediate_size", where),
                num_shared=int(cfg.get("n_shared_experts") or 0),
                shared_ffn=int(cfg.get("moe_shared_expert_intermediate_size") or 0),
                activation=act,
                latent_dim=cfg.get("moe_latent_size"),
            )
        mamba = Mamba(
            num_heads=_get(cfg, "mamba_num_heads", where),
            head_dim=_get(cfg, "mamba_head_dim", where),
            state_size=_get(cfg, "ssm_state_size", where),
            n_groups=int(cfg.get("n_groups", 8)),
            conv_kernel=int(cfg.get("conv_kernel", 4)),
        )
        spec = ModelSpec(
            layers=layers, attention=attention, moe=moe, mamba=mamba, dense_ffn=int(cfg.get("intermediate_size", 0)),
            dense_activation=act, **common,
        )
    else:
        raise InputError(
            f"{where}: field model_type = {mtype!r} not supported (supported: deepseek_v3, kimi_k2, qwen3_moe, nemotron_h)"
        )
    return spec.validate(where)

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

from pathlib import Path

from ..errors import InputError
from .spec import Attention, Mamba, ModelSpec, MoE, Precision

#: Largest config.json read. Real ones are ~2-6 kB (DeepSeek-V3's is 1.7 kB); 1 MiB is generous.
MAX_CONFIG_BYTES = 1 << 20


def _precision(quant: dict | None) -> Precision:
    quant = quant or {}
    method = str(quant.get("quant_method", ""))[:100].lower()
    if "fp8" in method or quant.get("fmt") == "e4m3":
        return Precision(weights="fp8", activations="fp8", dispatch="fp8")
    if "fp4" in method or "nvfp4" in str(quant)[:10000].lower():
        return Precision(weights="fp4", activations="fp4", dispatch="fp4")
    return Precision()


def _family(cfg: dict, where: str):
    from ..schema import short
    from ..schema.hf_config import FAMILIES

    mtype = cfg.get("model_type", "")
    if not isinstance(mtype, str):
        raise InputError(f"{where}: field model_type = {short(mtype)}: must be a string")
    arch = cfg.get("architectures") or []
    arch = " ".join(a for a in arch if isinstance(a, str)) if isinstance(arch, list) else ""
    if mtype.lower() in FAMILIES:
        return FAMILIES[mtype.lower()][0], mtype.lower() or arch
    for schema, markers in FAMILIES.values():
        if any(m in arch for m in markers):
            return schema, arch
    raise InputError(f"{where}: field model_type = {short(mtype)} not supported "
                     f"(supported: {', '.join(FAMILIES)}; or architectures DeepseekV3*, Qwen3Moe*, NemotronH*)")


def spec_from_hf_config(path: str | Path, name: str | None = None) -> ModelSpec:
    """Read a HF ``config.json`` (safe loader, then the family's schema in
    :mod:`latentmoe_sim.schema.hf_config`) into a validated :class:`ModelSpec`."""
    from ..schema import load_file, validate
    from ..schema.hf_config import DeepseekV3Config, Qwen3MoeConfig
    from ..schema.model import ModelEntry
    from .catalog import parse_layers, spec_to_entry

    where = str(path)
    cfg = load_file(path, label=where, what="HF config.json", max_bytes=MAX_CONFIG_BYTES)
    if isinstance(cfg, dict) and isinstance(cfg.get("text_config"), dict):
        cfg = cfg["text_config"]
    if not isinstance(cfg, dict):
        raise InputError(f"{where}: top level must be a JSON object")
    schema, kind = _family(cfg, where)
    c = validate(schema, cfg, where)
    name = name if name is not None else (Path(path).parent.name or Path(path).stem)
    common = dict(
        name=name,
        hidden_size=c.hidden_size,
        vocab_size=c.vocab_size,
        tie_embeddings=c.tie_word_embeddings,
        max_context=c.max_position_embeddings,
        precision=_precision(c.quantization_config),
        description=f"imported from {Path(path).name} ({kind})",
        source=str(path),
        dense_ffn=c.intermediate_size or 0,
    )
    if isinstance(c, DeepseekV3Config):
        L, k_dense, freq = c.num_hidden_layers, c.first_k_dense_replace, c.moe_layer_freq
        layers = tuple("AD" if (i < k_dense or (i - k_dense) % freq) else "AE" for i in range(L))
        attention = Attention(
            kind="mla", num_heads=c.num_attention_heads, num_kv_heads=c.num_key_value_heads or c.num_attention_heads,
            q_lora_rank=c.q_lora_rank, kv_lora_rank=c.kv_lora_rank, qk_nope_head_dim=c.qk_nope_head_dim,
            qk_rope_head_dim=c.qk_rope_head_dim, v_head_dim=c.v_head_dim,
        )
        moe = MoE(
            num_experts=c.n_routed_experts, top_k=c.num_experts_per_tok, expert_ffn=c.moe_intermediate_size,
            num_shared=c.n_shared_experts or 0, shared_ffn=c.moe_intermediate_size, latent_dim=c.moe_latent_size,
            router_bias=c.topk_method == "noaux_tc",
        )
        spec = ModelSpec(layers=layers, attention=attention, moe=moe, **common)
    elif isinstance(c, Qwen3MoeConfig):
        dense_only = set(c.mlp_only_layers)
        layers = tuple("AE" if (i not in dense_only and (i + 1) % c.decoder_sparse_step == 0) else "AD"
                       for i in range(c.num_hidden_layers))
        attention = Attention(kind="gqa", num_heads=c.num_attention_heads, num_kv_heads=c.num_key_value_heads,
                              head_dim=c.head_dim or c.hidden_size // c.num_attention_heads, qk_norm=True)
        moe = MoE(num_experts=c.num_experts, top_k=c.num_experts_per_tok, expert_ffn=c.moe_intermediate_size)
        spec = ModelSpec(layers=layers, attention=attention, moe=moe, **common)
    else:  # NemotronHConfig
        layers = parse_layers({"hybrid_pattern": c.hybrid_override_pattern}, where)
        attention = Attention(kind="gqa", num_heads=c.num_attention_heads, num_kv_heads=c.num_key_value_heads,
                              head_dim=c.head_dim or c.hidden_size // c.num_attention_heads)
        act = "relu2" if c.mlp_hidden_act == "relu2" else "swiglu"
        moe = None
        if "E" in layers:
            moe = MoE(
                num_experts=c.n_routed_experts, top_k=c.num_experts_per_tok, expert_ffn=c.moe_intermediate_size,
                num_shared=c.n_shared_experts or 0, shared_ffn=c.moe_shared_expert_intermediate_size or 0,
                activation=act, latent_dim=c.moe_latent_size,
            )
        mamba = Mamba(num_heads=c.mamba_num_heads, head_dim=c.mamba_head_dim, state_size=c.ssm_state_size,
                      n_groups=c.n_groups, conv_kernel=c.conv_kernel)
        spec = ModelSpec(layers=layers, attention=attention, moe=moe, mamba=mamba, dense_activation=act, **common)
    # The imported architecture must also be a valid catalog entry (same bounds, same cross-field rules),
    # since `models import --write` saves it as one.
    validate(ModelEntry, spec_to_entry(spec), f"{where} (as a catalog entry)")
    return spec.validate(where)

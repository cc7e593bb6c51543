"""Precision presets and what actually ran: the label every result carries.

``--precision fp4`` means what NVFP4 checkpoints ship: the **routed experts** in FP4 (W4A4 on GPUs with FP4
tensor cores), everything else as the checkpoint states (the catalog entry's dtype; FP8 for DeepSeek-V3 and
Kimi-K2). NVIDIA's ModelOpt NVFP4 checkpoints (nvidia/DeepSeek-R1-FP4) exclude attention, shared experts,
the LM head and the MTP layers from quantisation (their ``exclude_modules``; the same ignore list is noted
on NVFP4 re-quantisations such as HF jarrelscy/DeepSeek-V4-Pro-0813-NVFP4), and TensorRT-LLM's DeepSeek-R1
B200 blog lists "64x Attention Modules bf16 / 58x MoE FFN Layers nvfp4 / RouterGEMM bf16". The EP dispatch
goes FP4 too and the combine stays BF16 (the LatentMoE paper's FP4 setting, §2). ``fp8`` and ``bf16`` set
every linear layer (FP8 checkpoints such as DeepSeek-V3's quantise all of them; embeddings stay BF16).

A GPU without FP4 tensor cores (H100, H200, MI300X, MI325X) cannot run W4A4: FP4 weights are dequantised in
the GEMM and the math runs on the next wider tensor cores it has (FP8; :class:`~latentmoe_sim.cost.roofline.Roofline`
falls back the same way). :func:`describe` says so, and :func:`fp4_warning` gives the one warning line.
"""

from __future__ import annotations

from .hw import HwProfile
from .models.spec import COMPUTE_DTYPE, WEIGHT_CLASSES, Precision

#: ``--precision NAME`` -> Precision fields it sets (None: leave the checkpoint's).
PRESETS: dict[str, dict[str, str]] = {
    "fp4": {"expert_weights": "fp4", "activations": "fp4", "dispatch": "fp4"},
    "fp8": {"weights": "fp8", "activations": "fp8", "dispatch": "fp8"},
    "bf16": {"weights": "bf16", "activations": "bf16", "dispatch": "bf16"},
}

#: Tensor-core dtypes tried, in order, for the math of a given dtype (same chain as the roofline).
FALLBACK = {"fp4": ("fp4", "fp8", "bf16"), "fp8": ("fp8", "bf16"), "bf16": ("bf16",)}


def executed_dtype(hw: HwProfile, dtype: str) -> str:
    """The tensor-core dtype ``hw`` runs math of ``dtype`` on (FP4 on a GPU without FP4 cores: FP8)."""
    for dt in FALLBACK.get(dtype, ("bf16",)):
        if hw.peak_flops.get(dt):
            return dt
    return "bf16"


def class_label(prec: Precision, hw: HwProfile, cls: str) -> str:
    """One class: its weight dtype and, when the math is not that dtype, what it ran on."""
    w, want = prec.class_weights(cls), prec.class_compute(cls)
    ran = executed_dtype(hw, want)
    if ran != want:  # the GPU lacks the tensor cores the checkpoint targets
        return f"{w.upper()} weights dequantised to {ran.upper()} ({ran.upper()} peak)"
    if COMPUTE_DTYPE[w] != ran or w == "int4":  # weight-only quantisation (W4A16, W4A8)
        return f"{w.upper()} weight-only, {ran.upper()} math"
    return w.upper()


def describe(prec: Precision, hw: HwProfile) -> str:
    """Label of what ran, classes with equal labels grouped: ``experts FP4, attention/dense FP8, embedding BF16``."""
    groups: dict[str, list[str]] = {}
    for cls in WEIGHT_CLASSES:
        groups.setdefault(class_label(prec, hw, cls), []).append(cls)
    return ", ".join(f"{'/'.join(classes)} {label}" for label, classes in groups.items())


def fp4_warning(prec: Precision, hw: HwProfile) -> str | None:
    """The one warning line when FP4 weights meet a GPU without FP4 tensor cores, else None."""
    fp4 = [c for c in WEIGHT_CLASSES if prec.class_weights(c) == "fp4"]
    if not fp4 or hw.peak_flops.get("fp4"):
        return None
    ran = executed_dtype(hw, "fp4").upper()
    return (f"warning: {hw.name} has no FP4 tensor cores: FP4 {'/'.join(fp4)} weights run weight-only, dequantised "
            f"to {ran} at the {ran} peak (labels say so)")


__all__ = ["FALLBACK", "PRESETS", "class_label", "describe", "executed_dtype", "fp4_warning"]

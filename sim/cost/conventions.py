"""Named kernel and communication conventions of the cost model, with the frameworks' defaults.

A :class:`Conventions` says *how* a serving stack runs the ops that :mod:`ops` describes, where stacks
differ and the difference moves the LatentMoE comparison (docs/MODELING.md §4a gives each with its source):

``expert_fusion`` (activation traffic of the routed experts, per (token, expert) pair):
  * ``"fused"`` (default): the grouped GEMM reads its input at the dispatch dtype, applies the gated
    activation (SwiGLU / squared ReLU) in the first GEMM's epilogue and writes the intermediate once at the
    activation dtype; the second GEMM reads it and writes the output in BF16 (TensorRT-LLM's CUTLASS MoE
    "FC1: fused GEMM + SwiGLU", FlashInfer's wrapper of TensorRT-LLM's CuteDSL grouped GEMM with SwiGLU
    fusion);
  * ``"act-kernel"``: the first GEMM writes the gate and up projections in BF16 and a separate kernel
    applies the activation and quantises (SGLang's DeepEP + DeepGEMM path:
    ``silu_and_mul_masked_post_quant_fwd`` between two ``m_grouped_fp8_gemm_nt_masked`` calls);
  * ``"unfused"``: every tensor in BF16, the activation a separate kernel (this project's convention
    before issue 10: ``(2 d_in + (f + 1) m) * 2`` bytes per pair).

``dispatch_prefill`` / ``dispatch_decode`` (copies of a token the EP all-to-all sends):
  * ``"per-pair"``: one copy per (token, expert) pair: DeepEP's low-latency kernels (receive buffers are
    ``[local experts, tokens, hidden]``), which SGLang's ``--deepep-mode auto`` uses for decode batches;
  * ``"per-rank"``: one copy per destination rank holding any of the token's experts (DeepEP's normal
    intranode kernels, ``is_token_in_rank``; FlashInfer's ``moe_ep`` MNNVL all-to-alls, which dispatch each
    token "to the ranks that own its experts", the NVLink path of TensorRT-LLM's wide EP on GB200);
  * ``"per-node"``: one copy per destination node over the scale-out network, forwarded over NVLink to the
    ranks of that node (DeepEP's normal internode kernels, ``num_tokens_per_rdma_rank``); inside one
    NVLink domain it equals ``per-rank``. SGLang's ``auto`` uses the normal kernels for prefill (extend)
    batches, and for any step with a prefill chunk in it (the mode is agreed across DP ranks).

``mla_decode_overhead_us`` (a number, default 0): GPU time per MLA attention layer in every step with decodes,
  on top of the op-by-op roofline of the absorbed decode path (``attn.mla_qkv_a`` .. ``attn.o_proj``): the
  kernels a framework's MLA decode module runs that the op list does not name (the q_a / kv_a RMSNorms,
  RoPE, cache writes, split-KV combine, casts) and their launch floors under CUDA graphs. Measured
  (:data:`MLA_DECODE_OVERHEAD_US`): it is nearly constant over batch and context, so it is one number per
  framework.

``routing_skew`` (a number, default 0 = uniform routing): the expert popularity of the model's router on the
  workload, the log-standard deviation of the experts' shares of all picks (lognormal over a layer's experts,
  :mod:`.routing`). Not a kernel convention but a property of the trained router and the traffic; it travels
  here because it reaches the same op (the routed experts' weight reads, ``ops.moe_group_ops``). Validation
  sets the measured value for rows routed by a real router (``REAL_ROUTING_SKEW``, docs/MODELING.md §4a.3c).

``tp_allreduce``: ``"ring"`` (default; NCCL ring, ``2 (tp-1)/tp`` of the message per GPU) or ``"nvls"``
  (NVLink SHARP on NVSwitch systems: the switch reduces, each GPU sends its message once and receives
  the result once, ``(1 + 1/tp)`` of the message per GPU per direction). SGLang leaves NVLS off unless
  ``--enable-nccl-nvls``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

EXPERT_FUSIONS = ("fused", "act-kernel", "unfused")
DISPATCH_MODES = ("per-pair", "per-rank", "per-node")
TP_ALLREDUCES = ("ring", "nvls")

#: MLA decode-module overhead per layer (``Conventions.mla_decode_overhead_us``), microseconds, per (framework,
#: hardware profile): the median over AIConfigurator's measured MLA generation-module latencies
#: (aiconfigurator-core 0.12.0, ``systems/data/<gpu>/mla/<framework>/<version>/mla_generation_module_perf.parquet``:
#: the whole DeepSeek-V3 ``DeepseekV2MLAAttention`` decode module, BF16 GEMMs and KV, CUDA graphs, 8/16/32
#: heads per GPU, batch 1-128, context 2-8192, the faster backend where two were measured; 120 points per GPU)
#: minus this cost model's roofline of the same ops (``python experiments/fit_mla_overhead.py``; p10-p90 in
#: brackets). vLLM 0.24.0: H100 77.0 (66-90), H200 73.7 (64-86), B200 28.0 (14-53), B300 75.7 (56-106), GB200
#: 76.4 (58-107), GB300 75.6 (55-106); TensorRT-LLM 1.3.0rc20: H100 29.8 (21-39), H200 29.1 (24-37), B200 22.1
#: (11-48), B300 19.7 (9-47), GB200 21.1 (10-43), GB300 20.2 (10-44). Validation applies its row's pair
#: (sim/validation/configure.py); the library default stays 0.
MLA_DECODE_OVERHEAD_US: dict[tuple[str, str], float] = {
    ("vllm", "h100_sxm"): 77.0, ("vllm", "h200_sxm"): 73.7, ("vllm", "b200"): 28.0, ("vllm", "b300"): 75.7,
    ("vllm", "gb200_nvl72"): 76.4, ("vllm", "gb300_nvl72"): 75.6,
    ("trtllm", "h100_sxm"): 29.8, ("trtllm", "h200_sxm"): 29.1, ("trtllm", "b200"): 22.1, ("trtllm", "b300"): 19.7,
    ("trtllm", "gb200_nvl72"): 21.1, ("trtllm", "gb300_nvl72"): 20.2,
}

#: Extra bytes per element of FP8 activations for their scales: one FP32 scale per 128 channels
#: (DeepEP ``low_latency_dispatch`` returns scales shaped ``[..., hidden // 128]`` in float32; DeepSeek-V3's
#: 1x128 activation tiles). NVFP4 already carries its FP8 scale per 16 values in its 0.5625 B/element.
FP8_SCALE_BYTES_PER_ELEMENT = 4.0 / 128.0


@dataclass(frozen=True)
class Conventions:
    """Kernel and communication conventions (see the module docstring for each option and its source)."""

    expert_fusion: str = "fused"
    dispatch_prefill: str = "per-node"
    dispatch_decode: str = "per-pair"
    tp_allreduce: str = "ring"
    mla_decode_overhead_us: float = 0.0
    routing_skew: float = 0.0

    def __post_init__(self):
        for name, allowed in (("expert_fusion", EXPERT_FUSIONS), ("dispatch_prefill", DISPATCH_MODES),
                              ("dispatch_decode", DISPATCH_MODES), ("tp_allreduce", TP_ALLREDUCES)):
            value = getattr(self, name)
            if value not in allowed:
                raise InputError(f"cost conventions: {name} = {value!r} (allowed: {', '.join(allowed)})")
        x = self.mla_decode_overhead_us
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1e4:
            raise InputError(f"cost conventions: mla_decode_overhead_us = {x!r} (allowed: a number of microseconds in [0, 10000])")
        from .routing import MAX_ROUTING_SKEW

        s = self.routing_skew
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= MAX_ROUTING_SKEW:
            raise InputError(f"cost conventions: routing_skew = {s!r} (allowed: a number in [0, {MAX_ROUTING_SKEW:g}], "
                             "0 = uniform routing)")

    def dispatch(self, prefill: bool) -> str:
        """The dispatch mode of a step: the prefill mode when any rank runs a prefill chunk."""
        return self.dispatch_prefill if prefill else self.dispatch_decode


DEFAULT_CONVENTIONS = Conventions()


def activation_bytes(dtype_bytes_value: float, dtype: str) -> float:
    """Bytes per element of an activation stored in ``dtype``, its scales included."""
    return dtype_bytes_value + (FP8_SCALE_BYTES_PER_ELEMENT if dtype == "fp8" else 0.0)

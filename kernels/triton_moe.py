"""Triton routed experts: tokens grouped by expert, then one grouped GEMM per expert matrix.

The (token, slot) pairs of a batch are sorted by expert, so each expert's rows are contiguous. A tile
schedule (built on the device with torch ops, no host sync) lists, for every ``BLOCK_M`` rows of every
expert's group, which expert and which first row; one Triton program computes one (tile, ``BLOCK_N``
columns) block of ``A[rows] @ W[expert]``. The grid is sized for the worst case (``ceil(P / BLOCK_M) + E``
tiles for P pairs and E experts); padding tiles start past their group's end and store nothing.

Dtypes: BF16 (FP32 accumulation), and FP8 e4m3 where the GPU has it (per-row activation scales, per
(expert, column) weight scales, applied after the FP32 accumulation). In Triton's CPU interpreter BF16
``tl.dot`` is wrong (``../shared/reference/stack.md``) and FP8 has no numpy type, so the interpreter tests
run FP32/FP16, and the FP8 path there upcasts the FP8 values to FP32 before the dot (``UPCAST``): the
quantisation and scaling are tested on CPU, the FP8 tensor-core dot itself only on a GPU.

Expert FFN: ``act(A @ W1[e]) @ W2[e]`` with the activation applied between the two grouped GEMMs in torch;
the weighted combine is a scatter-add over the sorted pairs.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .reference import activate

#: FP8 e4m3 largest finite value (OCP 8-bit floating point spec, E4M3: 448).
FP8_E4M3_MAX = 448.0


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@triton.jit
def _grouped_gemm_kernel(a_ptr, w_ptr, c_ptr, tile_expert_ptr, tile_start_ptr, group_end_ptr, a_scale_ptr, w_scale_ptr,
                         N, K, stride_am, stride_ak, stride_we, stride_wk, stride_wn, stride_cm, stride_cn, stride_se,
                         HAS_SCALE: tl.constexpr, UPCAST: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    e = tl.load(tile_expert_ptr + pid_m)
    start = tl.load(tile_start_ptr + pid_m)
    end = tl.load(group_end_ptr + e)
    rm = start + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    row_ok = rm < end
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + rk
        a = tl.load(a_ptr + rm[:, None] * stride_am + kk[None, :] * stride_ak, mask=row_ok[:, None] & (kk[None, :] < K), other=0.0)
        w = tl.load(w_ptr + e * stride_we + kk[:, None] * stride_wk + rn[None, :] * stride_wn,
                    mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
        if UPCAST:
            a = a.to(tl.float32)
            w = w.to(tl.float32)
        acc += tl.dot(a, w)
    if HAS_SCALE:
        sa = tl.load(a_scale_ptr + rm, mask=row_ok, other=0.0)
        sw = tl.load(w_scale_ptr + e * stride_se + rn, mask=rn < N, other=0.0)
        acc = acc * sa[:, None] * sw[None, :]
    tl.store(c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn, acc.to(c_ptr.dtype.element_ty),
             mask=row_ok[:, None] & (rn[None, :] < N))


def tile_schedule(sorted_expert: torch.Tensor, num_experts: int, block_m: int):
    """(tile expert, tile first row, group end per expert) for pairs sorted by expert, on their device."""
    P = sorted_expert.numel()
    dev = sorted_expert.device
    counts = torch.bincount(sorted_expert, minlength=num_experts)
    offsets = torch.zeros(num_experts + 1, dtype=torch.int64, device=dev)
    offsets[1:] = torch.cumsum(counts, 0)
    tiles = (counts + block_m - 1) // block_m
    tile_off = torch.zeros(num_experts + 1, dtype=torch.int64, device=dev)
    tile_off[1:] = torch.cumsum(tiles, 0)
    max_tiles = (P + block_m - 1) // block_m + num_experts
    t = torch.arange(max_tiles, device=dev)
    tile_expert = torch.searchsorted(tile_off[1:], t, right=True).clamp(max=num_experts - 1)
    tile_start = offsets[tile_expert] + (t - tile_off[tile_expert]) * block_m
    valid = t < tile_off[-1]
    tile_start = torch.where(valid, tile_start, torch.full_like(tile_start, P))
    tile_expert = torch.where(valid, tile_expert, torch.zeros_like(tile_expert))
    return tile_expert.to(torch.int32), tile_start.to(torch.int32), offsets[1:].to(torch.int32)


def grouped_gemm(a: torch.Tensor, w: torch.Tensor, schedule, *, a_scale=None, w_scale=None, out_dtype=None,
                 block_m: int = 64, block_n: int = 64, block_k: int = 32) -> torch.Tensor:
    """``C[rows of expert e] = A[rows] @ W[e]`` for rows grouped by expert (``schedule`` from
    :func:`tile_schedule` with the same ``block_m``). FP8 inputs need ``a_scale`` (per row) and ``w_scale``
    (per expert and column)."""
    tile_expert, tile_start, group_end = schedule
    P, K = a.shape
    E, K2, N = w.shape
    assert K == K2, (a.shape, w.shape)
    out_dtype = out_dtype or (torch.float32 if a.dtype in (torch.float32, torch.float8_e4m3fn) else a.dtype)
    c = torch.empty(P, N, dtype=out_dtype, device=a.device)
    if P == 0:
        return c
    fp8 = a.dtype == torch.float8_e4m3fn
    has_scale = a_scale is not None
    if fp8 and not has_scale:
        raise ValueError("FP8 inputs need a_scale and w_scale")
    dummy = c if not has_scale else None
    grid = (tile_expert.numel(), triton.cdiv(N, block_n))
    _grouped_gemm_kernel[grid](
        a, w, c, tile_expert, tile_start, group_end,
        a_scale if has_scale else dummy, w_scale if has_scale else dummy,
        N, K, a.stride(0), a.stride(1), w.stride(0), w.stride(1), w.stride(2), c.stride(0), c.stride(1),
        w_scale.stride(0) if has_scale else 0,
        HAS_SCALE=has_scale, UPCAST=bool(fp8 and interpreting()),
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k,
    )
    return c


def quantize_fp8_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row FP8 e4m3 quantisation: (values, float32 scale per row) with ``x ~ values * scale``."""
    scale = x.float().abs().amax(dim=-1).clamp(min=1e-12) / FP8_E4M3_MAX
    return (x.float() / scale[..., None]).to(torch.float8_e4m3fn), scale


def quantize_fp8_weights(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (expert, output column) FP8 e4m3 quantisation of an E x K x N weight: (values, E x N scales)."""
    scale = w.float().abs().amax(dim=1).clamp(min=1e-12) / FP8_E4M3_MAX
    return (w.float() / scale[:, None, :]).to(torch.float8_e4m3fn), scale


class TritonExperts:
    """Routed experts on the Triton grouped GEMM; a drop-in ``experts=`` for
    :func:`~latentmoe_sim.kernels.reference.moe_forward`. ``fp8=True`` quantises activations per row and
    weights per (expert, column) to FP8 e4m3 (weights once, cached per tensor)."""

    def __init__(self, *, fp8: bool = False, block_m: int = 64, block_n: int = 64, block_k: int = 32):
        self.fp8, self.blocks = fp8, dict(block_m=block_m, block_n=block_n, block_k=block_k)
        self._wq: dict[int, tuple] = {}

    def _weights(self, w):
        if not self.fp8:
            return w, None
        key = id(w)
        if key not in self._wq:
            self._wq[key] = quantize_fp8_weights(w)
        return self._wq[key]

    def _gemm(self, a, w, sched):
        wq, ws = self._weights(w)
        if self.fp8:
            aq, as_ = quantize_fp8_rows(a)
            return grouped_gemm(aq, wq, sched, a_scale=as_, w_scale=ws, out_dtype=torch.float32, **self.blocks)
        return grouped_gemm(a, wq, sched, **self.blocks)

    def __call__(self, z, idx, w, w1, w2, activation):
        T, k = idx.shape
        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        tok = order // k
        sched = tile_schedule(flat[order], w1.shape[0], self.blocks["block_m"])
        h = activate(self._gemm(z[tok].contiguous(), w1, sched), activation)
        o = self._gemm(h.to(z.dtype) if not self.fp8 else h, w2, sched)
        out = torch.zeros(T, w2.shape[-1], dtype=torch.float32, device=z.device)
        return out.index_add_(0, tok, o.float() * w.reshape(-1)[order, None])


__all__ = ["FP8_E4M3_MAX", "TritonExperts", "grouped_gemm", "quantize_fp8_rows", "quantize_fp8_weights", "tile_schedule"]

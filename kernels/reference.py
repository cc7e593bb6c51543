"""Torch reference of one LatentMoE layer (and, without the projection, a standard MoE layer).

LatentMoE (arXiv 2601.18089 §3): the router and the shared experts work at the model width ``h``; the
tokens are projected down to a latent width ``l`` (``W_down``, h x l) once, every routed expert works in
that latent space, the weighted combination of the top-k expert outputs is projected back up (``W_up``,
l x h). With ``latent_dim=None`` the same code is a standard MoE layer (experts at width h).

Forward, for tokens ``x`` (T x h)::

    scores  = score_fn(x @ W_router)                 router at full width (T x E)
    idx, w  = top_k(scores (+ bias for selection)), normalised over the k chosen
    z       = x @ W_down                             latent (T x l); z = x without projection
    y_i     = sum_j w_ij * expert_{idx_ij}(z_i)      routed experts in the latent space
    out     = y @ W_up + shared(x)                   back to width h, shared experts at full width

An expert is ``act(z @ W1) @ W2`` with SwiGLU (``W1`` = [gate | up], ``silu(g) * u``) or squared ReLU
(``relu(u)^2``, Nemotron-3's choice). The routed-expert computation is pluggable (``experts=``) so the
Triton grouped GEMM (:mod:`.triton_moe`) is tested against :func:`experts_reference`.

This module imports torch; nothing in the simulator core imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class MoEConfig:
    """Shape of one MoE layer. ``latent_dim=None`` is a standard MoE."""

    hidden: int
    num_experts: int
    top_k: int
    expert_ffn: int
    latent_dim: int | None = None
    num_shared: int = 0
    shared_ffn: int = 0
    activation: str = "swiglu"  # or "relu2"
    score: str = "sigmoid"  # DeepSeek-V3 / Kimi-K2 score experts with a sigmoid; "softmax" for Mixtral-style

    def __post_init__(self):
        if self.activation not in ("swiglu", "relu2"):
            raise ValueError(f"activation must be swiglu or relu2, not {self.activation!r}")
        if self.score not in ("sigmoid", "softmax"):
            raise ValueError(f"score must be sigmoid or softmax, not {self.score!r}")
        if not 0 < self.top_k <= self.num_experts:
            raise ValueError(f"top_k = {self.top_k} must be in [1, num_experts = {self.num_experts}]")

    @property
    def expert_in(self) -> int:
        """Width the routed experts see: the latent width, or the model width."""
        return self.latent_dim or self.hidden

    @property
    def w1_cols(self) -> int:
        """Columns of an expert's first matrix: gate and up for SwiGLU, up only for squared ReLU."""
        return (2 if self.activation == "swiglu" else 1) * self.expert_ffn


def init_params(cfg: MoEConfig, *, seed: int = 0, dtype=torch.float32, device="cpu") -> dict[str, torch.Tensor]:
    """Random weights scaled 1/sqrt(fan-in), so activations stay O(1) for numerical tests."""
    g = torch.Generator(device="cpu").manual_seed(seed)

    def rnd(*shape):
        return (torch.randn(*shape, generator=g) / shape[-2] ** 0.5).to(dtype=dtype, device=device)

    h, l, E = cfg.hidden, cfg.expert_in, cfg.num_experts
    p = {
        "router": rnd(h, E),
        "router_bias": torch.zeros(E, dtype=torch.float32, device=device),
        "w1": rnd(E, l, cfg.w1_cols),
        "w2": rnd(E, cfg.expert_ffn, l),
    }
    if cfg.latent_dim:
        p["w_down"] = rnd(h, l)
        p["w_up"] = rnd(l, h)
    if cfg.num_shared:
        s = cfg.num_shared * cfg.shared_ffn
        p["shared_w1"] = rnd(h, (2 if cfg.activation == "swiglu" else 1) * s)
        p["shared_w2"] = rnd(s, h)
    return p


def activate(u: torch.Tensor, activation: str) -> torch.Tensor:
    """SwiGLU on [gate | up] halves, or squared ReLU."""
    if activation == "swiglu":
        gate, up = u.chunk(2, dim=-1)
        return torch.nn.functional.silu(gate) * up
    return torch.relu(u).square()


def route(x: torch.Tensor, p: dict, cfg: MoEConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(expert ids T x k, weights T x k): top-k of the router scores at full width, weights normalised to
    sum to one over the chosen experts; ``router_bias`` shifts selection only (DeepSeek-V3's aux-loss-free
    balancing bias, §2.1.2)."""
    logits = (x @ p["router"]).float()
    scores = torch.sigmoid(logits) if cfg.score == "sigmoid" else torch.softmax(logits, dim=-1)
    idx = torch.topk(scores + p["router_bias"], cfg.top_k, dim=-1).indices
    w = scores.gather(-1, idx)
    return idx, w / w.sum(-1, keepdim=True)


def experts_reference(z: torch.Tensor, idx: torch.Tensor, w: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
                      activation: str) -> torch.Tensor:
    """``sum_j w_ij * expert_{idx_ij}(z_i)``, one expert at a time (the plain loop every kernel must match)."""
    out = torch.zeros(z.shape[0], w2.shape[-1], dtype=torch.float32, device=z.device)
    for e in idx.unique().tolist():
        tok, slot = (idx == e).nonzero(as_tuple=True)
        h = activate(z[tok].float() @ w1[e].float(), activation)
        out.index_add_(0, tok, (h @ w2[e].float()) * w[tok, slot, None])
    return out


Experts = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str], torch.Tensor]


def moe_forward(x: torch.Tensor, p: dict, cfg: MoEConfig, experts: Experts = experts_reference) -> torch.Tensor:
    """One (Latent)MoE layer on tokens ``x`` (T x hidden); returns T x hidden in float32."""
    idx, w = route(x, p, cfg)
    z = x @ p["w_down"] if cfg.latent_dim else x
    y = experts(z, idx, w, p["w1"], p["w2"], cfg.activation)
    if cfg.latent_dim:
        y = y.to(p["w_up"].dtype) @ p["w_up"]
    y = y.float()
    if cfg.num_shared:
        y = y + activate(x.float() @ p["shared_w1"].float(), cfg.activation) @ p["shared_w2"].float()
    return y


__all__ = ["MoEConfig", "activate", "experts_reference", "init_params", "moe_forward", "route"]

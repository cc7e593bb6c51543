"""kernels/: the torch reference (Latent)MoE layer against hand-built cases, and the Triton grouped-GEMM
experts against the reference in Triton's CPU interpreter (small shapes; FP32/FP16, since BF16 ``tl.dot``
is wrong in the interpreter, ../shared/reference/stack.md).

Without torch (CI installs only '.[dev]') the whole module skips with the reason printed; without Triton
the reference tests still run and the Triton ones skip.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

torch = pytest.importorskip("torch", reason="torch not installed (optional: pip install torch==2.13.0, see README)")

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # must precede the first triton import

from latentmoe_sim.kernels.reference import MoEConfig, activate, experts_reference, init_params, moe_forward, route  # noqa: E402

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton not installed (optional: pip install triton==3.7.1)")

CFG = MoEConfig(hidden=32, num_experts=8, top_k=2, expert_ffn=24, latent_dim=16, num_shared=1, shared_ffn=16)


def _x(T=20, h=32, seed=2, dtype=torch.float32):
    return torch.randn(T, h, generator=torch.Generator().manual_seed(seed)).to(dtype)


# ---- reference ------------------------------------------------------------------------------------------
def test_route_picks_top_k_and_normalises():
    p = init_params(CFG, seed=1)
    x = _x()
    idx, w = route(x, p, CFG)
    assert idx.shape == (20, 2) and torch.allclose(w.sum(-1), torch.ones(20))
    scores = torch.sigmoid(x @ p["router"])
    assert torch.equal(idx.sort(-1).values, scores.topk(2, dim=-1).indices.sort(-1).values)


def test_single_expert_layer_is_the_plain_ffn():
    # one expert, top-1, weight 1: the layer is W_up(act(W_down x W1) W2) + shared(x), written out by hand
    cfg = MoEConfig(hidden=12, num_experts=1, top_k=1, expert_ffn=10, latent_dim=6, num_shared=1, shared_ffn=5)
    p = init_params(cfg, seed=3)
    x = _x(7, 12)
    z = x @ p["w_down"]
    g, u = (z @ p["w1"][0]).chunk(2, dim=-1)
    routed = (torch.nn.functional.silu(g) * u) @ p["w2"][0] @ p["w_up"]
    sg, su = (x @ p["shared_w1"]).chunk(2, dim=-1)
    shared = (torch.nn.functional.silu(sg) * su) @ p["shared_w2"]
    assert torch.allclose(moe_forward(x, p, cfg), routed + shared, atol=1e-5)


def test_standard_moe_is_latent_moe_with_identity_projections():
    std = MoEConfig(hidden=16, num_experts=6, top_k=3, expert_ffn=8, activation="relu2")
    lat = MoEConfig(hidden=16, num_experts=6, top_k=3, expert_ffn=8, activation="relu2", latent_dim=16)
    p = init_params(std, seed=4)
    pl = dict(p, w_down=torch.eye(16), w_up=torch.eye(16))
    x = _x(9, 16)
    assert torch.allclose(moe_forward(x, p, std), moe_forward(x, pl, lat), atol=1e-6)


def test_squared_relu_and_swiglu():
    u = torch.tensor([[-1.0, 2.0, 3.0, -4.0]])
    assert torch.equal(activate(u, "relu2"), torch.tensor([[0.0, 4.0, 9.0, 0.0]]))
    silu = torch.nn.functional.silu(torch.tensor([-1.0, 2.0]))
    assert torch.allclose(activate(u, "swiglu"), (silu * torch.tensor([3.0, -4.0]))[None])


# ---- Triton (interpreter on CPU) ----------------------------------------------------------------------------
BLOCKS = dict(block_m=16, block_n=16, block_k=16)


@needs_triton
def test_grouped_gemm_matches_per_expert_matmul_with_empty_and_ragged_groups():
    from latentmoe_sim.kernels.triton_moe import grouped_gemm, tile_schedule

    g = torch.Generator().manual_seed(5)
    experts = torch.tensor([0] * 3 + [2] * 21 + [3] * 16 + [5])  # experts 1 and 4 empty; 21 rows span two tiles
    a = torch.randn(len(experts), 24, generator=g)
    w = torch.randn(6, 24, 20, generator=g)
    c = grouped_gemm(a, w, tile_schedule(experts, 6, 16), **BLOCKS)
    ref = torch.stack([a[i] @ w[e] for i, e in enumerate(experts.tolist())])
    assert torch.allclose(c, ref, atol=1e-4)


@needs_triton
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-4), (torch.float16, 2e-2)])
@pytest.mark.parametrize("latent", [16, None])
def test_triton_layer_matches_reference(dtype, atol, latent):
    from latentmoe_sim.kernels.triton_moe import TritonExperts

    cfg = MoEConfig(hidden=32, num_experts=8, top_k=2, expert_ffn=24, latent_dim=latent, num_shared=1, shared_ffn=16)
    p32 = init_params(cfg, seed=1)
    ref = moe_forward(_x(), p32, cfg)
    p = {k: (v.to(dtype) if k != "router_bias" else v) for k, v in p32.items()}
    out = moe_forward(_x(dtype=dtype), p, cfg, experts=TritonExperts(**BLOCKS))
    assert torch.allclose(out, ref, atol=atol)


@needs_triton
def test_fp8_path_matches_quantise_dequantise_reference():
    from latentmoe_sim.kernels.triton_moe import TritonExperts, quantize_fp8_rows, quantize_fp8_weights

    def dq_rows(a):
        q, s = quantize_fp8_rows(a)
        return q.float() * s[:, None]

    def experts_fp8_emulated(z, idx, w, w1, w2, activation):
        q1, s1 = quantize_fp8_weights(w1)
        q2, s2 = quantize_fp8_weights(w2)
        d1, d2 = q1.float() * s1[:, None, :], q2.float() * s2[:, None, :]
        out = torch.zeros(z.shape[0], w2.shape[-1])
        for e in idx.unique().tolist():
            tok, slot = (idx == e).nonzero(as_tuple=True)
            h = activate(dq_rows(z[tok]) @ d1[e], activation)
            out.index_add_(0, tok, (dq_rows(h) @ d2[e]) * w[tok, slot, None])
        return out

    p = init_params(CFG, seed=1)
    x = _x()
    emulated = moe_forward(x, p, CFG, experts=experts_fp8_emulated)
    fp8 = moe_forward(x, p, CFG, experts=TritonExperts(fp8=True, **BLOCKS))
    assert torch.allclose(fp8, emulated, atol=1e-4)
    # and FP8 e4m3 (3 mantissa bits) stays within a few per cent of the FP32 layer
    ref = moe_forward(x, p, CFG)
    assert (fp8 - ref).abs().max() < 0.06 * ref.abs().max()


def test_reference_experts_equal_dense_mixture():
    # every token routed to all experts with its weights: the loop equals the dense weighted sum
    cfg = MoEConfig(hidden=8, num_experts=3, top_k=3, expert_ffn=4, activation="relu2")
    p = init_params(cfg, seed=6)
    z = _x(5, 8)
    idx = torch.tensor([[0, 1, 2]] * 5)
    w = torch.full((5, 3), 1 / 3)
    dense = sum(activate(z @ p["w1"][e], "relu2") @ p["w2"][e] for e in range(3)) / 3
    assert torch.allclose(experts_reference(z, idx, w, p["w1"], p["w2"], "relu2"), dense, atol=1e-6)


@needs_triton
def test_bench_builders_run_on_cpu(monkeypatch):
    """The GPU harness's shape builders, on tiny shapes on CPU (catches shape bugs before a GPU is lent)."""
    from latentmoe_sim.kernels import bench

    monkeypatch.setattr(bench, "DEVICE", "cpu")
    for dtype in ("bf16", "fp8"):
        row = dict(dtype=dtype, distribution="balanced", activation="swiglu", tokens=12, ep=2, hidden=32, ffn=16, topk=2,
                   num_experts=8)
        assert bench._moe_builder(row)() is not None
    out = bench._gemm_builder("bf16", 4, 32, 16)()()
    assert out.shape == (4, 32)
    assert bench._mla_decode_builder(2, 3, 40)()().shape == (3, 2, 512)
    assert bench._mla_prefill_builder(2, 1, 24)()().shape == (1, 2, 24, 128)

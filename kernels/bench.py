"""GPU benchmark harness: time each op of the Kimi-K2 and LatentMoE layers over the sweep's shape grid and
write measured tables (the format of :mod:`latentmoe_sim.cost.measured`, docs/KERNELS.md).

Run on a machine with a CUDA GPU, as one prepared command (sized to finish in under 8 minutes)::

    python kernels/bench.py --out hwprofiles/measured/h200_sxm --gpu h200_sxm     # needs only torch + triton
    # or, installed: python -m latentmoe_sim.kernels.bench ... / lmsim kernels bench --out ...

Per shape: build the tensors, run ``warmup`` untimed launches, then ``repeats`` timed ones, each between a
pair of CUDA events with the L2 cache flushed (a 256 MiB write) before it, and keep the **median**. The
shape grid is ordered by what the LatentMoE-vs-Kimi comparison needs most (routed experts, then the
projection and attention GEMMs, then attention cores); a wall-clock ``budget_s`` stops adding shapes, and the
header records how many ran. Every shape runs under try/except: a failure (e.g. FP8 GEMMs on a GPU without
FP8) is printed and skipped.

What is timed:

* ``gemm``: ``torch.matmul`` in BF16; FP8 e4m3 with ``torch._scaled_mm`` (per-tensor scales);
* ``moe``: our Triton grouped-GEMM routed experts (:mod:`.triton_moe`) on ONE GPU of an EP group: ``tokens``
  tokens over the group pick top-k of all experts uniformly; this GPU runs the pairs of its
  ``num_experts / ep`` local experts (grouping, both GEMMs, activation, weighted combine);
* ``mla_decode``: the absorbed MLA decode core in plain torch (scores over the 576-wide latent cache,
  softmax, weighted sum of the 512-wide part): a reference implementation, slower than FlashMLA;
* ``mla_prefill``: ``scaled_dot_product_attention`` (causal) with q/k head dim 192, v head dim 128.

Collectives need several GPUs and are not timed here (the imported NCCL tables stay in use).

This module imports only the standard library, torch and triton (the GPU image has no polars or YAML), so
it writes its CSV itself; tests/test_bench.py checks that :func:`latentmoe_sim.cost.measured.read_table`
reads it back.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):  # run as a plain script (`python kernels/bench.py`), no install needed:
    # register this folder as the package latentmoe_sim.kernels so the relative imports below resolve
    import types

    _here = Path(__file__).resolve().parent
    sys.modules.setdefault("latentmoe_sim", types.ModuleType("latentmoe_sim")).__path__ = []
    _spec = importlib.util.spec_from_file_location("latentmoe_sim.kernels", _here / "__init__.py",
                                                   submodule_search_locations=[str(_here)])
    sys.modules["latentmoe_sim.kernels"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["latentmoe_sim.kernels"])
    __package__ = "latentmoe_sim.kernels"

#: Columns per kind: must equal latentmoe_sim.cost.measured.KINDS (tests/test_bench.py checks it).
COLUMNS = {
    "gemm": ("dtype", "m", "n", "k"),
    "moe": ("dtype", "distribution", "activation", "tokens", "hidden", "ffn", "topk", "num_experts", "ep"),
    "mla_decode": ("kv_dtype", "heads", "batch", "context"),
    "mla_prefill": ("dtype", "heads", "batch", "isl"),
}

#: Model shapes (catalog: sim/models/catalog/kimi-k2-1t.yaml and kimi-k2-1t-latentmoe.yaml).
KIMI = dict(hidden=7168, ffn=2048, topk=8, num_experts=384)
LATENT = dict(hidden=1792, ffn=2048, topk=32, num_experts=1536)
#: (n, k) of the dense GEMMs of Kimi-K2 and its LatentMoE variant, at TP 1 and TP 8 where they differ
#: (MLA: q_lora 1536, kv latent 512 + rope 64, 64 heads of 192 (q) / 128 (v); shared expert 3 x 2048).
GEMM_NK = (
    (1792, 7168), (7168, 1792),                # LatentMoE W_down / W_up
    (2112, 7168),                              # MLA fused q_a + kv_a (1536 + 576)
    (12288, 1536), (1536, 1536),               # MLA q_b, TP1 / TP8
    (7168, 8192), (7168, 1024),                # attention o_proj, TP1 / TP8
    (6144, 7168),                              # shared expert (gate, up, down as one GEMM, as the cost model)
    (384, 7168), (1536, 7168),                 # routers: Kimi-K2 / LatentMoE
    (20480, 7168),                             # LM head, vocab 163,840 / TP 8
)
GEMM_M = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
MOE_TOKENS_PER_RANK = (1, 4, 16, 64, 256, 1024, 4096, 16384)
MOE_EP = (8, 16)
MLA_DECODE = dict(heads=(8, 16, 64), batch=(1, 8, 32, 128, 512), context=(1024, 4096, 16384))
MLA_PREFILL = dict(heads=(8, 64), batch=(1,), isl=(512, 2048, 8192, 16384))
#: device the builders allocate on (tests set "cpu" to run the builders in Triton's interpreter)
DEVICE = "cuda"
#: bytes written to flush the L2 cache between timed launches (H200 L2 is 50 MB; B200 126 MB)
L2_FLUSH_BYTES = 256 * 2**20


@dataclass
class Case:
    """One shape to time: its table row (without latency) and a builder that allocates the tensors on the
    GPU and returns the closure to time (only the real timer calls it)."""

    kind: str
    row: dict
    make: Callable[[], Callable[[], object]]


def cases(quick: bool = False) -> list[Case]:
    """The shape grid, most important first (``quick``: a handful per kind, for a smoke test)."""
    out: list[Case] = []
    pick = (lambda xs: xs[:: max(1, len(xs) // 2)][:2]) if quick else (lambda xs: xs)
    for dtype in ("bf16", "fp8"):
        for model in (KIMI, LATENT):
            for ep in pick(MOE_EP):
                for t in pick(MOE_TOKENS_PER_RANK):
                    row = dict(dtype=dtype, distribution="balanced", activation="swiglu", tokens=t * ep, ep=ep, **model)
                    out.append(Case("moe", row, _moe_builder(row)))
    for dtype in ("bf16", "fp8"):
        for n, k in (GEMM_NK[:3] if quick else GEMM_NK):
            for m in pick(GEMM_M):
                out.append(Case("gemm", dict(dtype=dtype, m=m, n=n, k=k), _gemm_builder(dtype, m, n, k)))
    for h in pick(MLA_DECODE["heads"]):
        for b in pick(MLA_DECODE["batch"]):
            for c in pick(MLA_DECODE["context"]):
                out.append(Case("mla_decode", dict(kv_dtype="bf16", heads=h, batch=b, context=c), _mla_decode_builder(h, b, c)))
    for h in pick(MLA_PREFILL["heads"]):
        for n in pick(MLA_PREFILL["isl"]):
            out.append(Case("mla_prefill", dict(dtype="bf16", heads=h, batch=1, isl=n), _mla_prefill_builder(h, 1, n)))
    return out


# ---- builders (torch imported only when a case is built) -----------------------------------------------------
def _gemm_builder(dtype, m, n, k):
    def make():
        import torch

        a = torch.randn(m, k, device=DEVICE, dtype=torch.bfloat16)
        w = torch.randn(k, n, device=DEVICE, dtype=torch.bfloat16) / math.sqrt(k)
        if dtype == "bf16":
            return lambda: a @ w
        a8 = a.to(torch.float8_e4m3fn)
        w8 = w.t().contiguous().to(torch.float8_e4m3fn).t()  # column-major, as _scaled_mm wants
        one = torch.ones((), device=DEVICE, dtype=torch.float32)
        return lambda: torch._scaled_mm(a8, w8, one, one, out_dtype=torch.bfloat16)
    return make


def _moe_builder(row):
    def make():
        import torch

        from .triton_moe import TritonExperts

        E, ep, K = row["num_experts"], row["ep"], row["topk"]
        local = E // ep
        g = torch.Generator(device=DEVICE).manual_seed(0)
        idx = torch.rand(row["tokens"], E, device=DEVICE, generator=g).topk(K, dim=-1).indices
        keep = idx < local  # pairs routed to this GPU's experts
        tok, slot = keep.nonzero(as_tuple=True)
        # the pairs this GPU receives, as (token, 1) rows: the dispatch has already happened
        ids = idx[tok, slot].reshape(-1, 1)
        w = torch.rand(ids.shape[0], 1, device=DEVICE, generator=g)
        z = torch.randn(ids.shape[0], row["hidden"], device=DEVICE, dtype=torch.bfloat16)
        w1 = torch.randn(local, row["hidden"], 2 * row["ffn"], device=DEVICE, dtype=torch.bfloat16) / math.sqrt(row["hidden"])
        w2 = torch.randn(local, row["ffn"], row["hidden"], device=DEVICE, dtype=torch.bfloat16) / math.sqrt(row["ffn"])
        experts = TritonExperts(fp8=row["dtype"] == "fp8", block_m=64, block_n=128, block_k=64)
        if ids.shape[0] == 0:
            return lambda: None
        experts(z, ids, w, w1, w2, "swiglu")  # quantise the weights once (cached), outside the timing
        return lambda: experts(z, ids, w, w1, w2, "swiglu")
    return make


def _mla_decode_builder(heads, batch, context):
    def make():
        import torch

        q = torch.randn(batch, heads, 576, device=DEVICE, dtype=torch.bfloat16)
        cache = torch.randn(batch, context, 576, device=DEVICE, dtype=torch.bfloat16)
        scale = 1.0 / math.sqrt(192)

        def run():
            s = torch.softmax((q @ cache.transpose(1, 2)).float() * scale, dim=-1).to(torch.bfloat16)
            return s @ cache[..., :512]
        return run
    return make


def _mla_prefill_builder(heads, batch, isl):
    def make():
        import torch

        q = torch.randn(batch, heads, isl, 192, device=DEVICE, dtype=torch.bfloat16)
        k = torch.randn(batch, heads, isl, 192, device=DEVICE, dtype=torch.bfloat16)
        v = torch.randn(batch, heads, isl, 128, device=DEVICE, dtype=torch.bfloat16)
        return lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    return make


# ---- timing ----------------------------------------------------------------------------------------------------
def cuda_timer(case: Case, warmup: int, repeats: int) -> float:
    """Median seconds of ``repeats`` CUDA-event-timed launches after ``warmup`` untimed ones, L2 flushed."""
    import torch

    fn = case.make()
    flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.float32, device="cuda")
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    events = []
    for _ in range(repeats):
        flush.zero_()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        events.append((s, e))
    torch.cuda.synchronize()
    t = statistics.median(s.elapsed_time(e) for s, e in events) * 1e-3
    del fn, flush
    torch.cuda.empty_cache()
    return t


def gpu_problem() -> str | None:
    """Why the real timer cannot run here (no torch, no triton, no CUDA GPU), or None."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install torch==2.13.0; on a GPU machine its CUDA build)"
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install triton==3.7.1)"
    if not torch.cuda.is_available():
        return "no CUDA GPU visible (torch.cuda.is_available() is False): the harness times kernels on a GPU"
    return None


def software() -> str:
    import torch

    parts = [f"torch {torch.__version__}", f"CUDA {torch.version.cuda}"]
    try:
        import triton

        parts.append(f"triton {triton.__version__}")
    except ImportError:
        pass
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name())
    return "; ".join(parts)


# ---- the run ---------------------------------------------------------------------------------------------------
def run(out, *, gpu: str, repeats: int = 20, warmup: int = 5, budget_s: float = 420.0, quick: bool = False,
        command: str = "", timer: Callable[[Case, int, int], float] | None = None,
        clock: Callable[[], float] = time.monotonic, software_str: str | None = None, log=sys.stderr) -> dict[str, int]:
    """Time the grid (``timer``: CUDA events by default; tests pass a fake) and write one table per kind
    under ``out``. Returns rows written per kind."""
    if timer is None:
        problem = gpu_problem()
        if problem:
            raise RuntimeError(problem)
        timer = cuda_timer
    grid = cases(quick)
    start = clock()
    rows: dict[str, list] = {}
    done = failed = 0
    for case in grid:
        if clock() - start > budget_s:
            print(f"bench: budget of {budget_s:.0f} s reached after {done} of {len(grid)} shapes", file=log)
            break
        try:
            t = timer(case, warmup, repeats)
        except Exception as exc:  # noqa: BLE001 - one unsupported shape/dtype must not lose the others
            failed += 1
            print(f"bench: {case.kind} {case.row}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=log)
            continue
        done += 1
        if t > 0:
            rows.setdefault(case.kind, []).append({**case.row, "latency_us": t * 1e6})
    sw = software_str if software_str is not None else software()
    prov = {"gpu": gpu, "source": "lmsim kernels bench (latentmoe-sim kernels/bench.py): median of CUDA-event timings, L2 flushed",
            "software": sw, "date": _dt.date.today().isoformat(), "command": command,
            "shapes": f"{done} timed, {failed} failed, {len(grid)} in the grid", "repeats": f"{repeats} (warmup {warmup})",
            "license": "Apache-2.0 (latentmoe-sim)"}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for kind, rs in rows.items():
        write_csv(out / f"{kind}.csv", kind, prov, rs)
    return {k: len(v) for k, v in rows.items()}


def write_csv(path: Path, kind: str, prov: dict, rows: list[dict]) -> None:
    """The documented table format (latentmoe_sim.cost.measured): provenance header, columns, rows."""
    cols = COLUMNS[kind]
    with open(path, "w") as f:
        f.write("# latentmoe-sim measured table\n")
        f.write(f"# kind: {kind}\n")
        for k, v in prov.items():
            f.write(f"# {k}: {' '.join(str(v).split())}\n")
        f.write(",".join(cols + ("latency_us",)) + "\n")
        for r in rows:
            f.write(",".join(str(r[c]) for c in cols) + f",{r['latency_us']:.4g}\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m latentmoe_sim.kernels.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--gpu", help="hardware-profile name for the header (default: the --out folder's name)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--budget-s", type=float, default=420.0)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    problem = gpu_problem()
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    written = run(a.out, gpu=a.gpu or Path(a.out).resolve().name, repeats=a.repeats, warmup=a.warmup, budget_s=a.budget_s,
                  quick=a.quick, command="python -m latentmoe_sim.kernels.bench " + " ".join(sys.argv[1:] if argv is None else argv))
    print(f"wrote {a.out}: " + ", ".join(f"{k} {v} rows" for k, v in written.items()))
    return 0


if __name__ == "__main__":  # pragma: no cover - needs a GPU
    sys.exit(main())

"""Measured operator costs: per-op latency tables, their file format, and time from them.

The roofline (:mod:`roofline`) gives every GEMM one compute efficiency and every streaming op one memory
efficiency. Real kernels are not like that: small GEMMs have a latency floor, narrow grouped GEMMs leave SMs
idle, attention kernels reach their own fraction of peak. This module prices an op from **measured
latency tables** instead, and falls back to the roofline where no table reaches.

How a time is made (docs/KERNELS.md walks through an example):

1. Each table row is a measured latency ``L`` at one shape. Its *achieved efficiency* is
   ``eff = SOL(shape) / L``, with ``SOL`` the speed-of-light time at the GPU's *pure* peaks (no efficiency
   factors, no latency): ``max(FLOPs / peak, bytes / HBM bandwidth)`` for compute, ``bytes / link
   bandwidth`` for collectives (:func:`sol_time`).
2. For a query shape, ``log(eff)`` is interpolated multilinearly in ``log2`` of every numeric axis
   (nested bracket-and-blend, so ragged tables work; :class:`LogInterp`). Interpolating efficiency rather
   than latency is what *transfers* a measurement to a nearby shape: at a table point it returns the
   measured latency exactly, between points it bends the roofline by the measured efficiency.
3. The op's time is its own ``SOL / eff``. Outside a table's range an axis is held at the edge for up to
   a factor :data:`EDGE_HOLD_FACTOR`; beyond that (or with no table) the op keeps its roofline time and is
   labelled ``roofline``.

Table format (one CSV per op kind under ``hwprofiles/measured/<gpu>/<kind>.csv``)::

    # latentmoe-sim measured table
    # kind: gemm
    # gpu: h200_sxm
    # source: AIConfigurator ... (or: lmsim kernels bench)
    # software: ...
    # date: 2026-...
    # command: lmsim kernels import-aic --system h200_sxm ...
    # license: ...
    dtype,m,n,k,latency_us
    bf16,1,128,128,5.01
    ...

Comment lines ``# key: value`` are the provenance header (``kind`` and ``gpu`` required); the first
non-comment line names the columns; :data:`KINDS` lists each kind's categorical and numeric columns and
the last column is always ``latency_us`` (microseconds, per GPU, one op invocation).
"""

from __future__ import annotations

import bisect
import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import InputError
from ..hw import HwProfile
from ..models.spec import BYTES_PER_ELEMENT, ffn_matrices

#: An axis may lie outside a table's range by up to this factor (its efficiency is then held at the edge,
#: as AIConfigurator does out of range, aiconfigurator.md §2.3); beyond it the roofline is used.
EDGE_HOLD_FACTOR = 2.0

#: Activations travel between kernels in BF16 (as ops.ACT_BYTES).
ACT_BYTES = 2.0


@dataclass(frozen=True)
class KindSpec:
    """Columns of one table kind: exact-match categorical columns, numeric axes in the file, and the axes
    (possibly derived from the file's columns) that efficiency is interpolated over."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    doc: str


#: The table kinds, their columns and meaning. Latency is always the last column, ``latency_us``.
KINDS: dict[str, KindSpec] = {
    "gemm": KindSpec(("dtype",), ("m", "n", "k"),
                     "C[m,n] = A[m,k] @ W[k,n]; dtype = weight/compute dtype (bf16, fp8 = block-scaled FP8, fp4)"),
    "moe": KindSpec(("dtype", "distribution", "activation"), ("tokens", "hidden", "ffn", "topk", "num_experts", "ep"),
                    "routed experts of one MoE layer on one GPU of an EP group: tokens = tokens entering the layer "
                    "over the whole EP group, hidden = expert input width, ffn = expert FFN width, activation = swiglu "
                    "(gated, 3 matrices) or relu2 (2); num_experts split over ep GPUs; distribution = balanced or "
                    "AIConfigurator's power_law_<alpha> token-to-expert skew"),
    "mla_decode": KindSpec(("kv_dtype",), ("heads", "batch", "context"),
                           "MLA decode attention core (absorbed form) on one GPU: heads per GPU, batch of sequences, "
                           "context tokens each attends"),
    "mla_bmm": KindSpec(("dtype", "phase"), ("heads", "tokens"),
                        "MLA decode's absorbed per-head batched GEMMs on one GPU: phase pre = q_nope (128) -> latent "
                        "query (512), post = latent output (512) -> v (128); heads per GPU, tokens = decodes"),
    "mla_prefill": KindSpec(("dtype",), ("heads", "batch", "isl"),
                            "MLA prefill attention core on one GPU: heads per GPU, batch of prompts of isl tokens, causal"),
    "allreduce": KindSpec(("dtype", "domain"), ("bytes", "ranks"),
                          "all-reduce of a bytes-long buffer over ranks GPUs; domain = nvlink (inside one NVLink domain)"),
    "alltoall": KindSpec(("domain",), ("bytes", "ranks"),
                         "all-to-all where each GPU holds bytes in total (sends (ranks-1)/ranks of it); any dtype"),
}

HEADER_TAG = "latentmoe-sim measured table"


# ---- the file format ---------------------------------------------------------------------------------
@dataclass
class Table:
    """One measured table: provenance, column names, rows (categoricals as str, numbers as float)."""

    kind: str
    provenance: dict[str, str]
    rows: list[dict] = field(default_factory=list)

    @property
    def columns(self) -> tuple[str, ...]:
        spec = KINDS[self.kind]
        return spec.categorical + spec.numeric + ("latency_us",)


def write_table(path: str | os.PathLike, table: Table) -> None:
    """Write ``table`` in the documented CSV format (provenance header, then rows)."""
    spec = KINDS[table.kind]
    prov = {"kind": table.kind, **{k: v for k, v in table.provenance.items() if k != "kind"}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(f"# {HEADER_TAG}\n")
        for k, v in prov.items():
            f.write(f"# {k}: {' '.join(str(v).split())}\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(table.columns)
        for r in table.rows:
            w.writerow([r[c] for c in spec.categorical] + [_num(r[c]) for c in spec.numeric] + [f"{r['latency_us']:.4g}"])


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


def read_table(path: str | os.PathLike) -> Table:
    """Read one table; a malformed file raises InputError naming the file, line and field."""
    prov: dict[str, str] = {}
    rows: list[dict] = []
    path = str(path)
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    body = []
    for i, line in enumerate(lines, 1):
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                prov[key.strip()] = value.strip()
        elif line.strip():
            body.append((i, line))
    kind = prov.get("kind")
    if kind not in KINDS:
        raise InputError(f"{path}: header 'kind' = {kind!r} (allowed: {', '.join(KINDS)})")
    spec = KINDS[kind]
    want = spec.categorical + spec.numeric + ("latency_us",)
    if not body:
        raise InputError(f"{path}: no column line")
    head = tuple(c.strip() for c in body[0][1].split(","))
    if head != want:
        raise InputError(f"{path}: columns {','.join(head)} (expected {','.join(want)})")
    for lineno, line in body[1:]:
        vals = [v.strip() for v in line.split(",")]
        if len(vals) != len(want):
            raise InputError(f"{path}:{lineno}: {len(vals)} fields (expected {len(want)})")
        r: dict = dict(zip(spec.categorical, vals))
        for c, v in zip(spec.numeric + ("latency_us",), vals[len(spec.categorical):]):
            try:
                x = float(v)
            except ValueError:
                raise InputError(f"{path}:{lineno}: {c} = {v!r} is not a number") from None
            if not x > 0 or math.isinf(x):
                raise InputError(f"{path}:{lineno}: {c} = {v} must be > 0 and finite")
            r[c] = x
        rows.append(r)
    return Table(kind, prov, rows)


# ---- speed of light ------------------------------------------------------------------------------------
def expected_experts_touched(num_experts: float, top_k: float, tokens: float) -> float:
    """``E * (1 - (1 - k/E)^t)``: distinct experts hit by ``tokens`` uniform top-k choices (as ops.py)."""
    if tokens <= 0:
        return 0.0
    return num_experts * -math.expm1(tokens * math.log1p(-top_k / num_experts)) if top_k < num_experts else num_experts


class Sol:
    """Speed-of-light times at the GPU's pure peaks: the denominator of achieved efficiency."""

    def __init__(self, hw: HwProfile):
        self.hw = hw

    def peak(self, dtype: str) -> float:
        for dt in {"fp4": ("fp4", "fp8", "bf16"), "fp8": ("fp8", "bf16")}.get(dtype, ("bf16",)):
            if self.hw.peak_flops.get(dt):
                return self.hw.peak_flops[dt]
        return self.hw.flops("bf16")

    def compute(self, flops: float, mem_bytes: float, dtype: str) -> float:
        return max(flops / self.peak(dtype), mem_bytes / self.hw.hbm_bandwidth_bytes_per_s)

    def link(self, link_bytes: float) -> float:
        return link_bytes / self.hw.nvlink_bandwidth_bytes_per_s

    # per kind: SOL of one table row / query shape (``s`` maps column -> value)
    def of(self, kind: str, s: dict) -> float:
        if kind == "gemm":
            m, n, k = s["m"], s["n"], s["k"]
            return self.compute(2.0 * m * n * k, k * n * BYTES_PER_ELEMENT[s["dtype"]] + m * (k + n) * ACT_BYTES, s["dtype"])
        if kind == "moe":
            t, w, f, K, E, ep = (s[c] for c in ("tokens", "hidden", "ffn", "topk", "num_experts", "ep"))
            nm = ffn_matrices(s["activation"])
            pairs = t * K / ep
            touched = expected_experts_touched(E, K, t) / ep
            wb = BYTES_PER_ELEMENT[s["dtype"]]
            return self.compute(2.0 * pairs * nm * w * f,
                                touched * nm * w * f * wb + pairs * (2 * w + (nm + 1) * f) * ACT_BYTES, s["dtype"])
        if kind == "mla_decode":
            # DeepSeek-V3 MLA geometry (kv_lora_rank 512 + rope 64 = 576 cached, DeepSeek-V3 §2.1.1), as ops.py
            H, b, c = s["heads"], s["batch"], s["context"]
            kvb = BYTES_PER_ELEMENT[s["kv_dtype"]]
            return self.compute(2.0 * H * (576 + 512) * b * c, 576 * kvb * b * c + b * H * (576 + 512) * ACT_BYTES, "bf16")
        if kind == "mla_bmm":
            # per head: tokens x 128 by 128 x 512 (pre) or tokens x 512 by 512 x 128 (post), DeepSeek-V3 §2.1.1
            H, t = s["heads"], s["tokens"]
            return self.compute(2.0 * t * H * 128 * 512, H * 128 * 512 * BYTES_PER_ELEMENT[s["dtype"]] + t * H * (128 + 512) * ACT_BYTES,
                                s["dtype"])
        if kind == "mla_prefill":
            # qk head dim 192 (128 nope + 64 rope), v head dim 128 (DeepSeek-V3 §2.1.1); causal pairs
            H, b, n = s["heads"], s["batch"], s["isl"]
            pairs = b * n * (n + 1) / 2.0
            return self.compute(2.0 * H * (192 + 128) * pairs, 2.0 * b * n * H * (192 + 128) * ACT_BYTES, "bf16")
        if kind == "allreduce":
            r = s["ranks"]
            return self.link(2.0 * (r - 1) / r * s["bytes"])
        if kind == "alltoall":
            r = s["ranks"]
            return self.link((r - 1) / r * s["bytes"])
        raise KeyError(kind)


# ---- interpolation ---------------------------------------------------------------------------------------
class LogInterp:
    """Multilinear interpolation of ``log(value)`` in ``log2`` of each axis over scattered points.

    Nested bracket-and-blend: along the first axis take the two table values that bracket the query, solve
    each sub-table (the remaining axes) recursively, blend linearly in log2 of the axis. Ragged tables work
    (each sub-table has its own values). Out of range an axis is clamped to its edge if within
    ``hold`` (a factor) of it; otherwise the answer is ``None``. ``hold_above_last``: the factor for the last
    axis above its range (``math.inf`` where efficiency saturates, e.g. rows per expert of a grouped GEMM
    deep in the compute-bound regime).
    """

    def __init__(self, points: Iterable[tuple[Sequence[float], float]], hold: float = EDGE_HOLD_FACTOR,
                 hold_above_last: float | None = None):
        self.log_hold = math.log2(hold)
        self.log_hold_last = math.log2(hold_above_last) if hold_above_last else self.log_hold
        acc: dict = {}
        n_axes = None
        for axes, value in points:
            n_axes = len(axes) if n_axes is None else n_axes
            node = acc
            for a in axes[:-1]:
                node = node.setdefault(math.log2(a), {})
            node.setdefault(math.log2(axes[-1]), []).append(math.log(value))
        self.n_axes = n_axes or 0
        self.root = self._freeze(acc, 1)

    def _freeze(self, node: dict, depth: int):
        keys = sorted(node)
        if depth == self.n_axes:
            return keys, [sum(v) / len(v) for v in (node[k] for k in keys)]
        return keys, [self._freeze(node[k], depth + 1) for k in keys]

    def __call__(self, query: Sequence[float]) -> float | None:
        if not self.n_axes:
            return None
        v = self._at(self.root, [math.log2(q) for q in query], 0)
        return None if v is None else math.exp(v)

    def _at(self, node, q: list[float], depth: int) -> float | None:
        keys, kids = node
        x = q[depth]
        leaf = depth == self.n_axes - 1
        solve = (lambda i: kids[i]) if leaf else (lambda i: self._at(kids[i], q, depth + 1))
        if x <= keys[0]:
            return solve(0) if keys[0] - x <= self.log_hold + 1e-12 else None
        if x >= keys[-1]:
            limit = self.log_hold_last if leaf else self.log_hold
            return solve(len(keys) - 1) if x - keys[-1] <= limit + 1e-12 else None
        hi = bisect.bisect_left(keys, x)
        if keys[hi] == x:
            return solve(hi)
        lo = hi - 1
        a, b = solve(lo), solve(hi)
        if a is None or b is None:
            return a if b is None else b
        w = (x - keys[lo]) / (keys[hi] - keys[lo])
        return a + w * (b - a)


class SiteInterp:
    """Scattered sites (leading axes), each with a :class:`LogInterp` over the remaining axes: the answer is
    the inverse-distance-squared blend (in log2 space, of log values) over the nearest sites that answer."""

    def __init__(self, sites: dict[tuple, LogInterp]):
        self.sites = [(tuple(math.log2(v) for v in s), f) for s, f in sites.items()]

    def __call__(self, query: Sequence[float]) -> float | None:
        n = len(self.sites[0][0]) if self.sites else 0
        here = [math.log2(v) for v in query[:n]]
        ranked = sorted(self.sites, key=lambda sf: sum((a - b) ** 2 for a, b in zip(sf[0], here)))
        num = den = 0.0
        used = 0
        for site, f in ranked:
            v = f(query[n:])
            if v is None:
                continue
            d2 = sum((a - b) ** 2 for a, b in zip(site, here))
            if d2 == 0.0:
                return v
            num, den, used = num + math.log(v) / d2, den + 1.0 / d2, used + 1
            if used == SITE_NEIGHBOURS:
                break
        return math.exp(num / den) if used else None


# ---- queries: table kind + categoricals + axes, and how the axes are derived --------------------------------
#: The axes efficiency is interpolated over, per kind, as functions of a row/query (a dict of columns).
#: MoE: rows per expert (tokens * topk / experts) and experts per GPU rather than raw tokens/experts/top-k,
#: so a LatentMoE layer (1536 experts, top-32, width 1792) reads the efficiency of a grouped GEMM with the same
#: rows per expert, experts per GPU and widths in a table measured on other layer shapes.
INTERP_AXES: dict[str, Callable[[dict], tuple[float, ...]]] = {
    "gemm": lambda s: (s["n"], s["k"], s["m"]),
    "moe": lambda s: (s["hidden"], s["ffn"], s["num_experts"] / s["ep"], s["tokens"] * s["topk"] / s["num_experts"]),
    "mla_decode": lambda s: (s["heads"], s["batch"], s["context"]),
    "mla_prefill": lambda s: (s["heads"], s["batch"], s["isl"]),
    "mla_bmm": lambda s: (s["heads"], s["tokens"]),
    "allreduce": lambda s: (s["ranks"], s["bytes"]),
    "alltoall": lambda s: (s["ranks"], s["bytes"]),
}
#: Kinds whose leading interpolation axes are *sites*: measured there only in a few scattered combinations
#: (MoE tables hold the (hidden, FFN) widths of the models AIConfigurator profiles, not a grid), so a query
#: reads the efficiency curve of the nearest sites in log2 distance instead of bracketing each axis:
#: inverse-distance-squared weights over up to SITE_NEIGHBOURS sites that answer (an exact site alone if
#: measured), as AIConfigurator does for GEMM (n, k) sites (aiconfigurator.md §2.3).
SITE_AXES = {"moe": 2}
#: Kinds whose last axis is held at its upper edge without limit: a grouped GEMM's efficiency has saturated
#: by AIConfigurator's largest MoE batch (16,384 tokens: 341 rows per expert for Kimi-K2's shape), so a prefill
#: step's thousands of rows per expert read the same site's edge rather than another model's shape.
SATURATING_LAST = {"moe": math.inf}
SITE_NEIGHBOURS = 3

#: Kinds whose first interpolation axis is held at the edge without limit: NCCL/all-to-all efficiency at 16+
#: GPUs inside one NVLink domain is read from the largest measured group (8 GPUs in AIConfigurator's tables).
UNBOUNDED_AXES = {"allreduce": (0,), "alltoall": (0,)}


#: Steps per octave of the grid that query axes are read on (see :meth:`MeasuredTables.efficiency`).
GRID_PER_OCTAVE = 64


def _on_grid(a: float) -> float:
    """``a`` rounded to the nearest point of a log2 grid with GRID_PER_OCTAVE steps (powers of two stay)."""
    return 2.0 ** (round(math.log2(a) * GRID_PER_OCTAVE) / GRID_PER_OCTAVE) if a > 0 else a


@dataclass(frozen=True)
class Query:
    """One op's shape for a table lookup: kind, the row's columns (categoricals and numbers)."""

    kind: str
    shape: dict

    def key(self) -> tuple:
        return (self.kind, tuple(sorted(self.shape.items())))


class MeasuredTables:
    """All tables of one GPU, ready for :meth:`efficiency` lookups (built once per cost model)."""

    def __init__(self, hw: HwProfile, tables: Sequence[Table], where: str = ""):
        self.hw, self.sol, self.where = hw, Sol(hw), where
        self.provenance: dict[str, dict[str, str]] = {}
        self._interp: dict[tuple, object] = {}
        groups: dict[tuple, list] = {}
        for t in tables:
            self.provenance[t.kind] = t.provenance
            cats = KINDS[t.kind].categorical
            f = INTERP_AXES[t.kind]
            for r in t.rows:
                eff = self.sol.of(t.kind, r) / (r["latency_us"] * 1e-6)
                groups.setdefault((t.kind,) + tuple(r[c] for c in cats), []).append((f(r), eff))
        for key, pts in groups.items():
            ns = SITE_AXES.get(key[0], 0)
            if ns:
                by_site: dict[tuple, list] = {}
                for axes, eff in pts:
                    by_site.setdefault(tuple(axes[:ns]), []).append((axes[ns:], eff))
                hold_last = SATURATING_LAST.get(key[0])
                self._interp[key] = SiteInterp({s: LogInterp(p, hold_above_last=hold_last) for s, p in by_site.items()})
            else:
                self._interp[key] = LogInterp(pts)
        self._memo: dict[tuple, float | None] = {}

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.provenance)

    def efficiency(self, q: Query) -> float | None:
        """Achieved efficiency (SOL / latency) at ``q``, interpolated; ``None`` where no table reaches.

        The interpolation axes are read on a grid of :data:`GRID_PER_OCTAVE` steps per octave (a change of
        at most 0.55 % in an axis value, far below the tables' own run-to-run noise), so that the engine's
        steps, whose context lengths all differ, share memoised efficiencies."""
        cats = tuple(q.shape[c] for c in KINDS[q.kind].categorical)
        axes = tuple(_on_grid(a) for a in INTERP_AXES[q.kind](q.shape))
        key = (q.kind, cats, axes)
        if key in self._memo:
            return self._memo[key]
        interp = self._interp.get((q.kind,) + cats)
        eff = None
        if interp is not None and all(a > 0 for a in axes):
            axes = list(axes)
            if isinstance(interp, LogInterp) and UNBOUNDED_AXES.get(q.kind) == (0,):  # clamp the first axis
                keys = interp.root[0]
                axes[0] = min(max(axes[0], 2.0 ** keys[0]), 2.0 ** keys[-1])
            eff = interp(axes)
        if len(self._memo) > 100_000:
            self._memo.clear()
        self._memo[key] = eff
        return eff

    def time(self, q: Query) -> float | None:
        """Interpolated latency (seconds) at exactly the shape ``q`` (SOL of ``q`` / efficiency)."""
        eff = self.efficiency(q)
        return None if eff is None else self.sol.of(q.kind, q.shape) / eff


def shape_of(spec: dict, x: Sequence[float] | None = None) -> dict:
    """Evaluate an op's table spec (:attr:`latentmoe_sim.cost.ops.Op.table`) at feature vector ``x``:
    constants stay, a coefficient dict becomes ``sum coef * x[f]``, a pair of dicts becomes their ratio."""
    def ev(v):
        if isinstance(v, dict):
            return sum(c * x[f] for f, c in v.items())
        if isinstance(v, tuple):
            den = ev(v[1])
            return ev(v[0]) / den if den else 0.0
        return v
    return {k: ev(v) for k, v in spec.items() if k != "kind"}


def op_time(tables: MeasuredTables | None, spec: dict | None, flops: float, mem_bytes: float, link_bytes: float,
            dtype: str, x: Sequence[float] | None = None) -> tuple[float, str] | None:
    """Measured seconds of one op invocation and its source label, or None (the caller keeps the roofline).

    ``spec`` is the op's table spec; the op's own FLOPs/bytes give its speed of light, which is divided by
    the efficiency measured at its shape. ``link_bytes`` > 0 marks a collective (SOL over NVLink)."""
    if tables is None or spec is None:
        return None
    shape = shape_of(spec, x)
    if any(isinstance(v, float) and v <= 0 for v in shape.values()):
        return None
    eff = tables.efficiency(Query(spec["kind"], shape))
    if eff is None:
        return None
    sol = tables.sol.link(link_bytes) if link_bytes else tables.sol.compute(flops, mem_bytes, dtype)
    return sol / eff, f"measured:{spec['kind']}"


# ---- finding a GPU's tables -----------------------------------------------------------------------------------
def measured_root() -> Path:
    """``hwprofiles/measured/`` of this installation (package data)."""
    from .. import hwprofiles  # an empty package; importing it is free

    return Path(hwprofiles.__file__).parent / "measured"


def tables_dir(hw: HwProfile) -> Path | None:
    """The folder of ``hw``'s measured tables, or None. ``LMSIM_MEASURED_DIR`` (a folder holding
    ``<gpu>/``) overrides the bundled one, so a fresh ``lmsim kernels bench`` run can be used in place."""
    for root in filter(None, (os.environ.get("LMSIM_MEASURED_DIR"), str(measured_root()))):
        d = Path(root) / hw.name
        if d.is_dir() and any(d.glob("*.csv")):
            return d
    return None


_CACHE: dict[tuple, MeasuredTables] = {}


def load_tables(hw: HwProfile, folder: str | os.PathLike | None = None) -> MeasuredTables | None:
    """The measured tables of ``hw`` (cached per folder), or None if there are none."""
    d = Path(folder) if folder else tables_dir(hw)
    if d is None or not d.is_dir():
        return None
    files = sorted(d.glob("*.csv"))
    if not files:
        return None
    key = (hw.name, hw.peak_flops.get("bf16"), hw.hbm_bandwidth_bytes_per_s, hw.nvlink_bandwidth_bytes_per_s, str(d),
           tuple((str(f), f.stat().st_mtime_ns) for f in files))
    mt = _CACHE.get(key)
    if mt is None:
        mt = _CACHE[key] = MeasuredTables(hw, [read_table(f) for f in files], where=str(d))
    return mt


COSTS_MODES = ("roofline", "measured", "auto")


def resolve_costs(mode: str, hw: HwProfile) -> MeasuredTables | None:
    """Tables for ``--costs``: ``roofline`` -> None; ``auto`` -> the GPU's tables if any; ``measured`` ->
    the GPU's tables, or an InputError if it has none."""
    if mode not in COSTS_MODES:
        raise InputError(f"--costs = {mode!r} (allowed: {', '.join(COSTS_MODES)})")
    if mode == "roofline":
        return None
    mt = load_tables(hw)
    if mt is None and mode == "measured":
        raise InputError(f"--costs measured: no tables for hardware {hw.name!r} under {measured_root()} "
                         f"(or $LMSIM_MEASURED_DIR); bundled: {', '.join(sorted(p.name for p in measured_root().iterdir() if p.is_dir()))}")
    return mt


__all__ = [
    "COSTS_MODES", "EDGE_HOLD_FACTOR", "KINDS", "LogInterp", "MeasuredTables", "Query", "Sol", "Table",
    "load_tables", "read_table", "resolve_costs", "tables_dir", "write_table",
]

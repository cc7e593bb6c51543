"""CompiledStepCost: the cost model folded into arrays so the engine pays O(1) per step.

Every rank-local op's time is ``gate * (max(cf . x, cb . x) + lat)`` with ``x`` the rank's feature vector
(:data:`~latentmoe_sim.cost.ops.FEATURES`), so all ops of all layers become two small matrices. The
EP-group ops (dispatch, routed experts, combine) depend on the group's token totals only; they are
evaluated from precomputed constants (:class:`~latentmoe_sim.cost.group.GroupCost`) and memoised on them. The result equals :meth:`CostModel.step_time` op for op (tests/test_cost.py checks it).

With measured costs (``CostModel.measured``) each rank-local op's roofline time is scaled by its
measured/roofline ratio at the step's features (:class:`_MeasuredScale`, memoised), so steps still
equal the reference exactly. A decode stretch evaluates the ratios at its first step and holds them: exact
for every op whose shape does not change along the stretch (all GEMMs: M is the decode count), an
approximation for the decode attention core, whose measured efficiency drifts slowly with context length.
"""

from __future__ import annotations

from itertools import product
from typing import Callable, Sequence

import numpy as np

from .base import RankLoad
from .group import GroupCost
from .model import CostModel, features
from .ops import F_CTX, F_D, F_DK, F_P, F_PAIRS
from .stretch import DecodeStretch, upper_envelope


_CONTEXT = [F_PAIRS, F_CTX, F_DK]  # the features that grow with a rank's context


class CompiledStepCost:
    """A step cost with the engine's interface (``dp``, ``step_time``, ``decode_stretch``)."""

    def __init__(self, cost: CostModel):
        self.cost = cost
        self.dp = cost.plan.dp
        roof = cost.roof
        n, nf = len(cost.ops), 7
        cf, cb = np.zeros((n, nf)), np.zeros((n, nf))
        lat, gate = np.zeros(n), np.zeros(n, dtype=int)
        for i, op in enumerate(cost.ops):
            c = op.count
            if op.seconds:  # a runtime cost: the same seconds on both lines, no latency
                cf[i] = cb[i] = np.array(op.vector(op.seconds)) * c
            elif op.link:
                inv = roof.inv_scaleup(op.peers) if op.link == "nvlink" else roof.inv_so
                cb[i] = np.array(op.vector(op.comm_bytes)) * inv * c
                lat[i] = (cost.hw.nvlink_latency_s if op.link == "nvlink" else cost.hw.scaleout_latency_s) * c
            else:
                cf[i] = np.array(op.vector(op.flops)) * roof.inv_flops(op.dtype) * c
                cb[i] = np.array(op.vector(op.mem_bytes)) * roof.inv_mem * c
                lat[i] = roof.op_latency * c
            gate[i] = op.gate
        self._cfT, self._cbT, self._lat, self._gate = cf.T.copy(), cb.T.copy(), lat, gate
        self._cf, self._cb = cf, cb
        varying = (cf[:, F_DK] != 0) | (cb[:, F_DK] != 0)
        self._vary = np.flatnonzero(varying)
        self._fixed = np.flatnonzero(~varying)
        # what _decode_terms reads of the fixed ops, sliced once (the same arrays as slicing per call), and the
        # roofline's ratios (all 1)
        fixed = self._fixed
        self._ones = np.ones(n)
        self._fixed_rows = (cf[fixed], cb[fixed], lat[fixed], gate[fixed], np.ones(len(fixed)))
        self._overhead = cost.hw.step_overhead_s
        self._group_memo: dict[tuple[float, float, bool], float] = {}
        self._group = GroupCost(cost)
        self._terms_memo: dict[int, tuple] = {}
        self._pieces_memo: dict[int, tuple] = {}
        self._step_memo: dict[tuple, float] = {}  # rank-local seconds of a rank with prefill, by its load
        self._measured = cost.measured is not None
        # ops whose time depends on a rank's context (causal pairs, context tokens, decode KV), and the rest
        context = (cf[:, _CONTEXT] != 0).any(axis=1) | (cb[:, _CONTEXT] != 0).any(axis=1) | np.isin(gate, _CONTEXT)
        self._token_ops = np.flatnonzero(~context)
        self._context_ops = [
            (int(gate[i]), float(lat[i]),
             tuple((int(f), float(cf[i, f])) for f in np.flatnonzero(cf[i])),
             tuple((int(f), float(cb[i, f])) for f in np.flatnonzero(cb[i])))
            for i in np.flatnonzero(context)
        ]
        self._token_memo: dict[tuple[int, int], float] = {}
        # the token-dependent ops' rows, and per (prefill tokens > 0, decodes > 0) which of them run (their gate
        # feature is non-zero): what _token_time needs, sliced once (the same arrays as slicing per call)
        rows = self._token_ops
        tok_gate = gate[rows]
        on = {(pz, dz): np.array(features(RankLoad(int(pz), 0.0, 0, int(dz), 0)))[tok_gate] != 0
              for pz in (False, True) for dz in (False, True)}
        self._token_rows = (cf[rows], cb[rows], lat[rows], on)
        self._context_time = _compile_context_ops(self._context_ops)
        self._lines_memo: dict[int, tuple] = {}  # d -> the pieces of _decode_pieces(d) as (base + a, b)
        self._scale = _MeasuredScale(cost, cf, cb, lat, gate) if self._measured else None
        self._idle_s = float(self.rank_times([RankLoad()])[0])  # an idle rank's (0 unless an op needs no work)

    # ---- pieces ----------------------------------------------------------------------------------
    def group_time(self, total_tokens: float, busiest_tokens: float, prefill: bool = False) -> float:
        """Seconds of the EP-group ops (all MoE layers) for these token totals, memoised; ``prefill``: some
        rank runs a prefill chunk (the all-to-all's dispatch mode). A miss is evaluated by :class:`GroupCost`
        (the same floats as ``CostModel.group_breakdown``'s sum, without building its op objects)."""
        key = (total_tokens, busiest_tokens, prefill)
        t = self._group_memo.get(key)
        if t is None:
            t = self._group.time(total_tokens, busiest_tokens, prefill) if total_tokens > 0 else 0.0
            if len(self._group_memo) >= 65536:
                self._group_memo.clear()
            self._group_memo[key] = t
        return t

    def rank_times(self, loads: Sequence[RankLoad]) -> np.ndarray:
        """Seconds of each rank's rank-local ops."""
        X = np.array([features(l) for l in loads])
        T = np.maximum(X @ self._cfT, X @ self._cbT) + self._lat
        T *= X[:, self._gate] != 0
        if self._scale is not None:
            T *= np.array([self._scale.ratios(x) for x in X])
        return T.sum(axis=1)

    # ---- the engine's interface ------------------------------------------------------------------
    def step_time(self, loads: Sequence[RankLoad]) -> float:
        """Seconds of one engine step; ``loads`` has one entry per attention-DP rank.

        The slowest rank paces the step. A decode-only rank's time is a function of its decode count and
        attended KV (:meth:`_decode_pieces`), which grows with the KV, so per decode count only the rank
        with the most KV is evaluated, in O(1); a rank with a prefill chunk costs its token-dependent ops
        (memoised) plus its few context-dependent ones (:meth:`_prefill_rank_time`). With measured costs
        every rank goes through the matrices (memoised on the loads).
        """
        if self._measured:  # the measured/roofline ratios depend on every feature: the matrices, per rank
            key = tuple(loads)
            t = self._step_memo.get(key)
            if t is None:
                tokens = [l[0] + l[3] for l in loads]
                prefill = any(l[0] for l in loads)
                t = self._overhead + float(self.rank_times(loads).max()) + self.group_time(sum(tokens), max(tokens), prefill)
                if len(self._step_memo) >= 4096:
                    self._step_memo.clear()
                self._step_memo[key] = t
            return t
        most: dict[int, int] = {}
        chunks = []
        total = busiest = 0
        idle = False
        for load in loads:
            p, d = load[0], load[3]
            tokens = p + d
            total += tokens
            if tokens > busiest:
                busiest = tokens
            if p:
                chunks.append(load)
            elif d:
                if load[4] > most.get(d, -1):
                    most[d] = load[4]
            else:
                idle = True
        return self.step_time_grouped(most, chunks, idle, total, busiest)

    @property
    def grouped(self) -> bool:
        """Whether :meth:`step_time_grouped` and :meth:`decode_stretch_grouped` may stand in for
        :meth:`step_time` and :meth:`decode_stretch` (roofline costs; measured ratios need every rank)."""
        return not self._measured

    def step_time_grouped(self, most: dict, chunks: Sequence[RankLoad], idle: bool, total_tokens: int,
                          busiest_tokens: int) -> float:
        """:meth:`step_time` from what it depends on, which the engine can gather without building a load
        per rank: ``most[d]``, the largest attended KV of the decode-only ranks with ``d`` decodes; the loads
        of the ranks with a prefill chunk; whether some rank is idle; and the step's total and busiest rank's
        tokens (prefill + decodes)."""
        slowest = self._idle_s if idle else 0.0
        memo = self._lines_memo
        for d, kv in most.items():
            lines = memo.get(d) or self._decode_lines(d)
            for a, b in lines:
                t = a + b * kv
                if t > slowest:
                    slowest = t
        if chunks:
            token_memo, context_time = self._token_memo, self._context_time
            for p, pairs, ctx, d, dk in chunks:
                t = token_memo.get((p, d))
                t = context_time(self._token_time(p, d) if t is None else t, p, pairs, ctx, d, dk)
                if t > slowest:
                    slowest = t
        return self._overhead + slowest + self.group_time(total_tokens, busiest_tokens, bool(chunks))

    def _prefill_rank_time(self, load: RankLoad) -> float:
        """Rank-local seconds of a rank running a prefill chunk: the ops that depend on its token counts
        only (GEMMs, norms, router: memoised on ``(prefill tokens, decodes)``), plus the few that depend on
        its context (attention cores: causal pairs, context tokens, decode KV), evaluated term by term."""
        p, pairs, ctx, d, dk = load
        t = self._token_memo.get((p, d))
        if t is None:
            t = self._token_time(p, d)
        return self._context_time(t, p, pairs, ctx, d, dk)

    def _token_time(self, p: int, d: int) -> float:
        """Seconds of a rank's ops that depend on its token counts only (``p`` prefill tokens, ``d``
        decodes); memoised on ``(p, d)``."""
        x = np.array([1.0, float(p + d), float(p), 0.0, 0.0, float(d), 0.0])  # features(RankLoad(p, 0.0, 0, d, 0))
        cf, cb, lat, gates = self._token_rows
        T = (np.maximum(cf @ x, cb @ x) + lat) * gates[p != 0, d != 0]  # a dict keyed by two bools
        t = float(T.sum())
        if len(self._token_memo) >= 65536:
            self._token_memo.clear()
        self._token_memo[(p, d)] = t
        return t

    def _decode_terms(self, d: int, kv: int = 0) -> tuple:
        """For ``d`` decodes on a rank: the fixed ops' seconds and, per KV-dependent op, its compute and
        memory lines as (seconds at KV 0, seconds per KV token) pairs. Memoised on ``d`` (and, with measured
        costs, on the KV total ``kv`` at which the measured/roofline ratios are taken)."""
        measured = self.cost.measured is not None
        key = (d, kv) if measured else d
        terms = self._terms_memo.get(key)
        if terms is None:
            x = np.array([1.0, float(d), 0.0, 0.0, 0.0, float(d), 0.0])  # features(RankLoad(0, 0.0, 0, d, 0))
            cf, cb, lat = self._cf, self._cb, self._lat
            cf_f, cb_f, lat_f, gate_f, ones_f = self._fixed_rows
            if measured:
                r = self._scale.ratios(np.array(features(RankLoad(0, 0.0, 0, d, kv))))
                r_f = r[self._fixed]
            else:
                r, r_f = self._ones, ones_f
            gates = x[gate_f] != 0
            base = float(((np.maximum(cf_f @ x, cb_f @ x) + lat_f) * r_f)[gates].sum())
            options = tuple(
                ((float((cf[v] @ x + lat[v]) * r[v]), float(cf[v, F_DK] * r[v])),
                 (float((cb[v] @ x + lat[v]) * r[v]), float(cb[v, F_DK] * r[v])))
                for v in self._vary if x[self._gate[v]] != 0
            )
            if len(self._terms_memo) >= 65536:
                self._terms_memo.clear()
            terms = self._terms_memo[key] = (base, options)
        return terms

    def _decode_pieces(self, d: int) -> tuple[float, tuple[tuple[float, float], ...]]:
        """One rank's step time with ``d`` decodes as a function of its attended KV ``x``: the fixed ops'
        seconds and the pieces ``(seconds at x = 0, seconds per KV token)`` of the envelope that gives the
        KV-dependent ops' seconds, ``max_i(a_i + b_i * x)`` for ``x >= 0``. Memoised on ``d``.

        Every KV-dependent op costs the larger of a compute and a memory line in ``x``; a sum of maxima of
        lines is the maximum over every choice of one line per op, and only the choices on the upper
        envelope for ``x >= 0`` can ever be the maximum, so only those are kept. Roofline costs only (with
        measured costs the ratios depend on the KV too).
        """
        pieces = self._pieces_memo.get(d)
        if pieces is None:
            base, options = self._decode_terms(d)
            combos = [(sum(a for a, _ in combo), sum(b for _, b in combo)) for combo in product(*options)]
            env = upper_envelope(combos) if combos else [(0.0, 0.0, 0.0)]
            pieces = self._pieces_memo[d] = (base, tuple((a, b) for _, a, b in env))
        return pieces

    def _decode_lines(self, d: int) -> tuple[tuple[float, float], ...]:
        """:meth:`_decode_pieces` with the fixed ops folded in: lines ``(base + a, b)``, so that a rank with
        ``d`` decodes and attended KV ``x`` takes ``max(a + b * x)`` seconds (the same float sums as
        ``base + a + b * x``). Memoised on ``d``."""
        base, pieces = self._decode_pieces(d)
        lines = self._lines_memo[d] = tuple((base + a, b) for a, b in pieces)
        return lines

    def decode_stretch(self, decode_seqs: Sequence[int], decode_kv_tokens: Sequence[int]) -> DecodeStretch:
        """Step times of pure-decode steps j = 0, 1, ...: rank r attends ``kv_r + j * d_r`` tokens at step j.

        The step time is the slowest rank's. Ranks with the same decode count ``d`` have the same time
        function of their KV, which grows with the KV, and their KV grows equally fast (``d`` per step); so
        of those only the one with the most KV can be the slowest, at every step. Each remaining rank
        contributes the lines ``base + a + b * (kv + j * d)`` of its pieces.
        """
        lines: list[tuple[float, float]] = []
        if self._measured:
            # measured/roofline ratios are taken at each rank's own first-step KV: no two ranks share a function
            for d, kv in set(zip(decode_seqs, decode_kv_tokens)):
                if d <= 0:
                    continue
                base, options = self._decode_terms(d, kv)
                for combo in product(*options) if options else [()]:
                    a = base + sum(a0 + b * kv for a0, b in combo)
                    lines.append((a, sum(b for _, b in combo) * d))
        else:
            most: dict[int, int] = {}
            for d, kv in zip(decode_seqs, decode_kv_tokens):
                if d > 0 and kv >= most.get(d, -1):
                    most[d] = kv
            return self.decode_stretch_grouped(most, sum(decode_seqs), max(decode_seqs))
        if not lines:
            lines.append((0.0, 0.0))
        const = self._overhead + self.group_time(float(sum(decode_seqs)), float(max(decode_seqs)))
        return DecodeStretch(const, lines)

    def decode_stretch_grouped(self, most: dict, total_decodes: int, busiest_decodes: int) -> DecodeStretch:
        """:meth:`decode_stretch` from ``most[d]``, the largest attended KV at step 0 among the ranks with
        ``d`` decodes, and the decodes of all ranks and of the busiest one (roofline costs only)."""
        lines: list[tuple[float, float]] = []
        memo = self._lines_memo
        for d, kv in most.items():
            for a, b in memo.get(d) or self._decode_lines(d):
                lines.append((a + b * kv, b * d))
        if not lines:
            lines.append((0.0, 0.0))
        const = self._overhead + self.group_time(float(total_decodes), float(busiest_decodes))
        return DecodeStretch(const, lines)


_MISSING = object()

#: how each feature of a rank (:data:`~latentmoe_sim.cost.ops.FEATURES`, in order) is written in terms of
#: the arguments of the function that :func:`_compile_context_ops` builds
_FEATURE_EXPR = ("1.0", "(p + d)", "p", "pairs", "ctx", "d", "dk")


def _compile_context_ops(context_ops) -> Callable[[float, int, float, int, int, int], float]:
    """The context-dependent ops of a rank as one straight-line function
    ``f(t, p, pairs, ctx, d, dk) = t + sum over ops (max(compute, memory) + latency)``.

    Each op's compute and memory seconds are sparse dot products of its coefficients with the rank's features,
    gated on one feature; written out with the coefficients as literals (``repr`` round-trips a float
    exactly) and summed in the same order as a loop over the terms would, so the result is the same float,
    without the per-term loop and tuple indexing on the engine's hot path.
    """
    body = ["def context_time(t, p, pairs, ctx, d, dk):"]
    for gate, lat, cf, cb in context_ops:
        a = " + ".join(["0.0"] + [f"{c!r} * {_FEATURE_EXPR[f]}" for f, c in cf])
        b = " + ".join(["0.0"] + [f"{c!r} * {_FEATURE_EXPR[f]}" for f, c in cb])
        body += [f"    if {_FEATURE_EXPR[gate]}:",
                 f"        a = {a}",
                 f"        b = {b}",
                 f"        t += (a if a > b else b) + {lat!r}"]
    body.append("    return t")
    namespace: dict = {}
    exec("\n".join(body), namespace)  # noqa: S102 -- source built above from numbers only
    return namespace["context_time"]


class _MeasuredScale:
    """Per rank-local op, measured seconds / roofline seconds at a rank's features ``x``, vectorised: the same
    numbers as :meth:`CostModel.op_cost` (tested), without building an OpCost per op per step.

    The measured time of a table op is its speed of light (pure peaks: FLOP-seconds ``SF . x``, byte-seconds
    ``SB . x``) over the efficiency at its shape (:mod:`.measured`). Most ops (GEMMs, all-reduces) read only a
    rank's token counts, so their ratios are memoised on (prefill tokens, decodes); the few that read its
    context (attention cores) are evaluated term by term, their efficiencies memoised on the features they read.
    """

    def __init__(self, cost: CostModel, cf: np.ndarray, cb: np.ndarray, lat: np.ndarray, gate: np.ndarray):
        from .measured import Query, shape_of

        self._query, self._shape_of = Query, shape_of
        mt = cost.measured
        hw = cost.hw
        n, nf = cf.shape
        self._tables, self._cf, self._cb, self._lat = mt, cf, cb, lat
        self._gate = [int(g) for g in gate]
        sf, sb = np.zeros((n, nf)), np.zeros((n, nf))
        token_ops, context_ops = [], []
        for i, op in enumerate(cost.ops):
            if op.table is None or op.link == "scaleout":
                continue
            c = op.count
            if op.link:
                sb[i] = np.array(op.vector(op.comm_bytes)) / hw.nvlink_bandwidth_bytes_per_s * c
            else:
                sf[i] = np.array(op.vector(op.flops)) / mt.sol.peak(op.dtype) * c
                sb[i] = np.array(op.vector(op.mem_bytes)) / hw.hbm_bandwidth_bytes_per_s * c
            deps = tuple(sorted({f for v in op.table.values() for d in (v if isinstance(v, tuple) else (v,))
                                 if isinstance(d, dict) for f in d}))
            reads = set(deps) | set(np.flatnonzero(cf[i]).tolist()) | set(np.flatnonzero(cb[i]).tolist()) \
                | set(np.flatnonzero(sf[i]).tolist()) | set(np.flatnonzero(sb[i]).tolist()) | {self._gate[i]}
            if reads & set(_CONTEXT):
                sparse = lambda row: tuple((int(f), float(row[f])) for f in np.flatnonzero(row))  # noqa: E731
                context_ops.append((i, op.table, deps, sparse(cf[i]), sparse(cb[i]), float(lat[i]), sparse(sf[i]), sparse(sb[i])))
            else:
                token_ops.append((i, op.table, deps))
        self._sf, self._sb = sf, sb
        self._token_ops, self._context_ops = token_ops, context_ops
        self._eff: dict[tuple, float | None] = {}
        self._token_memo: dict[tuple, np.ndarray] = {}

    def _efficiency(self, i: int, spec: dict, deps: tuple, xs: list) -> float | None:
        k = (i,) + tuple([xs[f] for f in deps])
        eff = self._eff.get(k, _MISSING)
        if eff is _MISSING:
            shape = self._shape_of(spec, xs)
            bad = any(isinstance(v, float) and v <= 0 for v in shape.values())
            eff = None if bad else self._tables.efficiency(self._query(spec["kind"], shape))
            if len(self._eff) >= 262144:
                self._eff.clear()
            self._eff[k] = eff
        return eff

    def _token_ratios(self, xs: list) -> np.ndarray:
        """Ratios of the ops that read only token counts (1.0 for every other op), memoised."""
        key = (xs[F_P], xs[F_D])
        r = self._token_memo.get(key)
        if r is None:
            x = np.array(xs)
            r = np.ones(len(self._lat))
            roof = (np.maximum(self._cf @ x, self._cb @ x) + self._lat).tolist()
            sol = np.maximum(self._sf @ x, self._sb @ x).tolist()
            for i, spec, deps in self._token_ops:
                if xs[self._gate[i]] and roof[i] > 0.0:
                    eff = self._efficiency(i, spec, deps, xs)
                    if eff is not None:
                        r[i] = sol[i] / eff / roof[i]
            if len(self._token_memo) >= 65536:
                self._token_memo.clear()
            self._token_memo[key] = r
        return r

    def ratios(self, x) -> np.ndarray:
        xs = x.tolist() if isinstance(x, np.ndarray) else list(x)
        r = self._token_ratios(xs)
        copied = False
        for i, spec, deps, cf, cb, lat, sf, sb in self._context_ops:
            if not xs[self._gate[i]]:
                continue
            roof = max(sum(c * xs[f] for f, c in cf), sum(c * xs[f] for f, c in cb)) + lat
            eff = self._efficiency(i, spec, deps, xs) if roof > 0.0 else None
            if eff is not None:
                if not copied:
                    r, copied = r.copy(), True
                r[i] = max(sum(c * xs[f] for f, c in sf), sum(c * xs[f] for f, c in sb)) / eff / roof
        return r

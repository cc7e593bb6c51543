"""The compiled engine: the Python engine's simulation in numba, decision for decision and float for float,
at a fraction of the CPU. This module holds its parts and its interface; the event loop is
:mod:`.compiled_loop`.

Why it exists: a frontier sweep runs the engine on hundreds of thousands of operating points, and the Python
engine (about 20 small functions and 4.7 timers per request, ~7 us per timer: docs/ENGINE.md "Speed") cannot
go much faster. The compiled engine runs the same event loop over flat arrays in machine code.

What it mirrors, and how it stays exact:

* every state change of the Python engine (timers and their ``(time, phase, creation)`` order, the request
  source and its deferred actions, the routers, inboxes, ranks' FCFS queues and running sets, the paged KV
  pool with its lazily taken decode blocks and ``runs_out``, preemption by recompute, chunked-prefill
  admission, the finish heap, decode stretches and their cuts, KV transfers on shared links) is written out
  with the same arithmetic in the same order, so the records are *identical* (``tests/test_engine_compiled.py``
  and ``test_engine_compiled_disagg.py`` compare them column by column, and timers and steps, against the
  Python engine on random workloads);
* every cost number comes from the Python cost model itself. The kernel keeps three tables on the side of
  a :class:`~latentmoe_sim.cost.step.CompiledStepCost` (a decode count's lines, a prefill rank's
  token-dependent seconds, the EP group's seconds where the kernel cannot compute them); when a step needs an
  entry that is not there, the kernel saves the planned step, returns, the driver asks the step cost
  (``_decode_lines``, ``_token_time``, ``group_time``: the functions the Python engine calls) and the kernel
  resumes where it stopped. The kernel computes itself only the context-dependent ops of a prefill rank (a
  few attention cores, :func:`~latentmoe_sim.cost.step._compile_context_ops`, from their coefficients) and the
  EP group's seconds of roofline costs (:func:`_group_seconds`, GroupCost.time's operations), each with the
  same float operations.

This module: the layout of the state arrays, the pieces that take their configuration as arguments (the
clock heap, the finish heap, the rank queues, the KV pool, decode stretches, the context-dependent ops, the
EP group's seconds), the side tables and their miss-and-resume protocol (:class:`_Tables`, :func:`_fill`),
and the interface: :data:`AVAILABLE`, :func:`supported`, :func:`run_if_supported` (the eligibility check both
simulate functions use), :func:`simulate` (aggregated serving; disaggregated serving is
:func:`.compiled_loop.simulate`), :func:`warm_up`, :class:`Unsupported`.

What it covers: :func:`~.aggregated.simulate_aggregated` and :func:`~.disaggregated.simulate_disaggregated`
with roofline CompiledStepCosts (their ``grouped`` interface), the timer-heap clock, stretch mode
and no attention-DP balance. Everything else (measured-table costs, two-batch-overlap and MTP wrappers, the
SimPy clock, ``step_by_step``, ADP balance) runs on the Python engine, which stays the reference.
``engine="python"`` forces it.

numba compiles the kernel on first use and caches the machine code next to its module (``cache=True``), so a
new process loads it in well under a second; the first compile takes about 30 s.
"""

from __future__ import annotations

import math
import os
import weakref

import numpy as np

from latentmoe_sim.errors import InputError

from .clock import COMPLETE, ROUTE, SCHEDULE  # noqa: F401 - the kernel's timer phases
from .instance import BETWEEN, IDLE, STEP, STRETCH  # noqa: F401 - the kernel's instance states
from .request import DECODE, DONE, HELD, PREFILL, TRANSFER, WAITING  # noqa: F401 - the kernel's request phases

try:  # numba is a dependency, but the simulator must run (on the Python engine) without it
    from numba import njit, types
    from numba.typed import Dict

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    AVAILABLE = False

    def njit(*_a, **_k):
        return lambda f: f


# -- layout of the state arrays (module constants are compile-time constants to numba) ---------------------------

# requests: int64 [N, NQ]
# (the waiting deque is singly linked: it appends, appends left and pops left; the running set is doubly
# linked: a request leaves it from anywhere)
Q_IN, Q_OUT, Q_PHASE, Q_GEN, Q_PTGT, Q_PDONE, Q_BLOCKS, Q_RANK, Q_SEQ, Q_KVB, Q_GB, Q_CB, Q_PRE, Q_INST, \
    Q_WNEXT, Q_UNEXT, Q_UPREV, Q_INEXT = range(18)
NQ = 18
# requests: float64 [N, 3]
F_ARR, F_FIRST, F_FIN = range(3)

# ranks: int64 [R, NK]
K_FREE, K_SYNCED, K_RUNS, K_WHEAD, K_WTAIL, K_WLEN, K_UHEAD, K_UTAIL, K_ULEN, K_PARTIAL, K_NDEC, K_KVOFF, \
    K_COUNT, K_BLOCKED = range(14)
NK = 14
RUNS_INF = 1 << 62  # KVPool.runs_out = math.inf
RUNS_UNKNOWN = -(1 << 62)  # KVPool.runs_out = -math.inf (invalidated)

# instances: int64 [I, NI_]
I_STATE, I_C, I_STEPS, I_LOAD, I_TIMER, I_PLEFT, I_SEQ, I_IHEAD, I_ITAIL, I_HLEN, I_N, I_NSEG, I_NCH = range(13)
NI_ = 13
# instances: float64 [I, 2]: a stretch's start and end
IF_T0, IF_END = range(2)

# timer kinds (the phases are clock.py's, the instance states instance.py's and the request phases
# request.py's, imported above)
T_ARRIVE, T_START, T_THINK, T_FLUSH, T_PLAN, T_STEPEND, T_STRETCHEND = range(7)

# run-wide int64 scalars G[...]
G_CREATED, G_CLEN, G_REMAIN, G_TIMERS, G_NREQ, G_NEXTARR, G_SENT, G_STARTED, G_ARMED, G_DEFN, G_RR, G_MISSN, \
    G_PKIND, G_PINST, G_PN, G_PTOTAL, G_PBUSY, G_PIDLE, G_PMOSTN, G_PCHN, G_ERR, G_ERRARG = range(22)
NG = 22
# run-wide float64 scalars GF[...]
GF_NOW = 0
# pending plan kinds
PK_NONE, PK_IDLE, PK_STEP, PK_STRETCH = range(4)
# miss kinds: MISS[i] = (kind, a, b, c)
M_LINES, M_TOKEN, M_GROUP_STEP, M_GROUP_STRETCH = range(4)
# statuses of _run
S_DONE, S_MISS, S_STALL, S_BUG, S_FULL = range(5)

LMAX = 16  # most envelope pieces of one decode count's step time the tables hold (a handful in practice)


# -- keys of the side tables -------------------------------------------------------------------------------------


@njit(cache=True)
def _token_key(p, d):
    return (p << 24) | d


@njit(cache=True)
def _group_key(total, busiest, prefill):
    return (((total << 26) | busiest) << 1) | prefill


# -- the clock: a heap of (time, phase, creation id, kind, argument) ----------------------------------------------


@njit(cache=True)
def _at(G, GF, CT, CA, delay, phase, kind, arg):
    """Clock.at: a timer ``delay`` seconds from now; returns its id (creation number)."""
    tid = G[G_CREATED] + 1
    G[G_CREATED] = tid
    t = GF[GF_NOW] + delay
    i = G[G_CLEN]
    if i >= CT.shape[0]:
        G[G_ERR] = S_FULL
        return tid
    G[G_CLEN] = i + 1
    while i > 0:  # sift up; the new id is the largest, so a parent with (time, phase) <= ours stays above
        p = (i - 1) >> 1
        pt = CT[p]
        if pt < t or (pt == t and CA[p, 0] <= phase):
            break
        CT[i] = pt
        CA[i, 0] = CA[p, 0]
        CA[i, 1] = CA[p, 1]
        CA[i, 2] = CA[p, 2]
        CA[i, 3] = CA[p, 3]
        i = p
    CT[i] = t
    CA[i, 0] = phase
    CA[i, 1] = tid
    CA[i, 2] = kind
    CA[i, 3] = arg
    return tid


@njit(cache=True)
def _less(CT, CA, i, j):
    ti, tj = CT[i], CT[j]
    if ti != tj:
        return ti < tj
    if CA[i, 0] != CA[j, 0]:
        return CA[i, 0] < CA[j, 0]
    return CA[i, 1] < CA[j, 1]


@njit(cache=True)
def _pop(G, CT, CA, out):
    """Pop the first timer into ``out`` (phase, id, kind, arg); returns its time."""
    t = CT[0]
    out[0] = CA[0, 0]
    out[1] = CA[0, 1]
    out[2] = CA[0, 2]
    out[3] = CA[0, 3]
    n = G[G_CLEN] - 1
    G[G_CLEN] = n
    if n > 0:
        # move the last to the root and sift down
        lt = CT[n]
        l0, l1, l2, l3 = CA[n, 0], CA[n, 1], CA[n, 2], CA[n, 3]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and _less(CT, CA, c + 1, c):
                c += 1
            ct = CT[c]
            if ct < lt or (ct == lt and (CA[c, 0] < l0 or (CA[c, 0] == l0 and CA[c, 1] < l1))):
                CT[i] = ct
                CA[i, 0] = CA[c, 0]
                CA[i, 1] = CA[c, 1]
                CA[i, 2] = CA[c, 2]
                CA[i, 3] = CA[c, 3]
                i = c
            else:
                break
        CT[i] = lt
        CA[i, 0] = l0
        CA[i, 1] = l1
        CA[i, 2] = l2
        CA[i, 3] = l3
    return t


# -- an instance's finish heap: (counter of the last token, admission seq) -> request ----------------------------


@njit(cache=True)
def _hless(HK, a, b):
    if HK[a, 0] != HK[b, 0]:
        return HK[a, 0] < HK[b, 0]
    return HK[a, 1] < HK[b, 1]


@njit(cache=True)
def _hsift_down(HK, n, i):
    while True:
        c = 2 * i + 1
        if c >= n:
            return
        if c + 1 < n and _hless(HK, c + 1, c):
            c += 1
        if _hless(HK, c, i):
            for k in range(3):
                tmp = HK[i, k]
                HK[i, k] = HK[c, k]
                HK[c, k] = tmp
            i = c
        else:
            return


@njit(cache=True)
def _hpush(IN, HEAP, RQ, inst, k1, k2, req):
    HK = HEAP[inst]
    n = IN[inst, I_HLEN]
    if n >= HK.shape[0]:
        # full: drop the stale entries (preempted requests; they can never become live again) and re-heapify
        m = 0
        for j in range(n):
            r = HK[j, 2]
            if RQ[r, Q_PHASE] == DECODE and RQ[r, Q_SEQ] == HK[j, 1]:
                HK[m, 0] = HK[j, 0]
                HK[m, 1] = HK[j, 1]
                HK[m, 2] = r
                m += 1
        for j in range(m // 2 - 1, -1, -1):
            _hsift_down(HK, m, j)
        n = m
    i = n
    IN[inst, I_HLEN] = n + 1
    while i > 0:
        p = (i - 1) >> 1
        if HK[p, 0] < k1 or (HK[p, 0] == k1 and HK[p, 1] < k2):
            break
        HK[i, 0] = HK[p, 0]
        HK[i, 1] = HK[p, 1]
        HK[i, 2] = HK[p, 2]
        i = p
    HK[i, 0] = k1
    HK[i, 1] = k2
    HK[i, 2] = req


@njit(cache=True)
def _hpop(IN, HEAP, inst):
    HK = HEAP[inst]
    n = IN[inst, I_HLEN] - 1
    IN[inst, I_HLEN] = n
    if n > 0:
        HK[0, 0] = HK[n, 0]
        HK[0, 1] = HK[n, 1]
        HK[0, 2] = HK[n, 2]
        _hsift_down(HK, n, 0)


# -- a rank's queues: the FCFS waiting deque and the running set in admission order (linked lists) ---------------


@njit(cache=True)
def _w_append(RQ, RK, r, q):
    t = RK[r, K_WTAIL]
    RQ[q, Q_WNEXT] = -1
    if t >= 0:
        RQ[t, Q_WNEXT] = q
    else:
        RK[r, K_WHEAD] = q
    RK[r, K_WTAIL] = q
    RK[r, K_WLEN] += 1


@njit(cache=True)
def _w_appendleft(RQ, RK, r, q):
    h = RK[r, K_WHEAD]
    RQ[q, Q_WNEXT] = h
    if h < 0:
        RK[r, K_WTAIL] = q
    RK[r, K_WHEAD] = q
    RK[r, K_WLEN] += 1


@njit(cache=True)
def _w_popleft(RQ, RK, r):
    q = RK[r, K_WHEAD]
    nx = RQ[q, Q_WNEXT]
    RK[r, K_WHEAD] = nx
    if nx < 0:
        RK[r, K_WTAIL] = -1
    RK[r, K_WLEN] -= 1
    return q


@njit(cache=True)
def _u_append(RQ, RK, r, q):
    t = RK[r, K_UTAIL]
    RQ[q, Q_UNEXT] = -1
    RQ[q, Q_UPREV] = t
    if t >= 0:
        RQ[t, Q_UNEXT] = q
    else:
        RK[r, K_UHEAD] = q
    RK[r, K_UTAIL] = q
    RK[r, K_ULEN] += 1


@njit(cache=True)
def _u_remove(RQ, RK, r, q):
    p, nx = RQ[q, Q_UPREV], RQ[q, Q_UNEXT]
    if p >= 0:
        RQ[p, Q_UNEXT] = nx
    else:
        RK[r, K_UHEAD] = nx
    if nx >= 0:
        RQ[nx, Q_UPREV] = p
    else:
        RK[r, K_UTAIL] = p
    RK[r, K_ULEN] -= 1


# -- the KV pool (kvcache.KVPool) ---------------------------------------------------------------------------------


@njit(cache=True)
def _blocks_for(tokens, bs):
    return -((-tokens) // bs)


@njit(cache=True)
def _blocks_over(DUE, r, bs, c, n, n_dec):
    cycles = n // bs
    rest = n - cycles * bs
    total = cycles * n_dec
    if rest:
        start = c % bs
        end = start + rest
        if end <= bs:
            for j in range(start, end):
                total += DUE[r, j]
        else:
            for j in range(start, bs):
                total += DUE[r, j]
            for j in range(0, end - bs):
                total += DUE[r, j]
    return total


@njit(cache=True)
def _sync(RK, DUE, r, bs, c, n_dec):
    n = c - RK[r, K_SYNCED]
    if n > 0:
        if n_dec:
            RK[r, K_FREE] -= _blocks_over(DUE, r, bs, RK[r, K_SYNCED], n, n_dec)
        RK[r, K_SYNCED] = c


@njit(cache=True)
def _refresh(RK, DUE, r, bs, n_dec):
    if not n_dec:
        RK[r, K_RUNS] = RUNS_INF
        return
    c0 = RK[r, K_SYNCED]
    free = RK[r, K_FREE]
    cycles = free // n_dec
    j = cycles * bs
    used = cycles * n_dec
    while True:
        used += DUE[r, (c0 + j) % bs]
        if used > free:
            RK[r, K_RUNS] = c0 + j
            return
        j += 1


@njit(cache=True)
def _changed(RK, r):
    RK[r, K_RUNS] = RUNS_UNKNOWN
    RK[r, K_BLOCKED] = 0


@njit(cache=True)
def _head_fits(RQ, RK, r, free, seats, bs):
    if RK[r, K_WLEN] == 0 or RK[r, K_ULEN] >= seats:
        return False
    h = RK[r, K_WHEAD]
    return _blocks_for(RQ[h, Q_IN] + RQ[h, Q_GEN], bs) <= free


# -- the decode set (scheduler.Rank.start_decode / stop_decode) ------------------------------------------------


@njit(cache=True)
def _start_decode(RQ, RK, DUE, IN, HEAP, bs, r, inst, q, kv, generated, c):
    _sync(RK, DUE, r, bs, c, RK[r, K_NDEC])
    RQ[q, Q_PHASE] = DECODE
    RQ[q, Q_KVB] = kv
    RQ[q, Q_GB] = generated
    RQ[q, Q_CB] = c
    RK[r, K_NDEC] += 1
    RK[r, K_KVOFF] += kv - c
    DUE[r, (c - kv) % bs] += 1
    _hpush(IN, HEAP, RQ, inst, c + RQ[q, Q_OUT] - generated, RQ[q, Q_SEQ], q)


@njit(cache=True)
def _stop_decode(RQ, RK, DUE, bs, r, q, c):
    _sync(RK, DUE, r, bs, c, RK[r, K_NDEC])
    steps = c - RQ[q, Q_CB]
    RQ[q, Q_GEN] = RQ[q, Q_GB] + steps
    RK[r, K_NDEC] -= 1
    RK[r, K_KVOFF] -= RQ[q, Q_KVB] - RQ[q, Q_CB]
    DUE[r, (RQ[q, Q_CB] - RQ[q, Q_KVB]) % bs] -= 1
    return RQ[q, Q_KVB] + steps


@njit(cache=True)
def _evict(RQ, RK, DUE, bs, r, q, c):
    if RQ[q, Q_PHASE] == DECODE:
        kv = _stop_decode(RQ, RK, DUE, bs, r, q, c)
        RK[r, K_FREE] += _blocks_for(kv, bs)
    else:
        RK[r, K_FREE] += RQ[q, Q_BLOCKS]
        if RK[r, K_PARTIAL] == q:
            RK[r, K_PARTIAL] = -1
    _u_remove(RQ, RK, r, q)
    RQ[q, Q_PHASE] = WAITING
    RQ[q, Q_PRE] += 1
    RQ[q, Q_PTGT] = RQ[q, Q_IN] + RQ[q, Q_GEN]
    RQ[q, Q_PDONE] = 0
    RQ[q, Q_BLOCKS] = 0
    _w_appendleft(RQ, RK, r, q)


@njit(cache=True)
def _allocate_with_preemption(RQ, RK, DUE, bs, r, c, BUF):
    """Rank._allocate_with_preemption: the decodes due a block at ``c``, oldest first, each get one, the
    newest running requests preempted as needed. (The Python engine keeps them per residue; here the running
    list, in admission order, is filtered: the same requests in the same order.)"""
    res = c % bs
    m = 0
    q = RK[r, K_UHEAD]
    while q >= 0:
        if RQ[q, Q_PHASE] == DECODE and (RQ[q, Q_CB] - RQ[q, Q_KVB]) % bs == res:
            BUF[m] = q
            m += 1
        q = RQ[q, Q_UNEXT]
    preempted = False
    for i in range(m):
        q = BUF[i]
        if RQ[q, Q_PHASE] != DECODE:
            continue
        while RK[r, K_FREE] == 0:
            victim = RK[r, K_UTAIL]
            _evict(RQ, RK, DUE, bs, r, victim, c)
            preempted = True
            if victim == q:
                break
        if RQ[q, Q_PHASE] == DECODE:
            RK[r, K_FREE] -= 1
    return preempted


# -- decode stretches (cost.stretch.DecodeStretch over an instance's segments) -----------------------------------


@njit(cache=True)
def _ceil_clamped(x, n):
    """math.ceil(x) for x >= 0, clamped at n (the callers compare it with n only)."""
    if x >= n:
        return n
    return int(math.ceil(x))


@njit(cache=True)
def _elapsed(SEG, inst, nseg, n):
    if nseg == 1:
        if n <= 0:
            return 0.0
        a = SEG[inst, 0, 1]
        b = SEG[inst, 0, 2]
        return a * n + b * (n - 1) * n / 2.0
    total = 0.0
    for i in range(nseg):
        lo = _ceil_clamped(SEG[inst, i, 0], n) if i else 0
        hi = n if i + 1 == nseg else min(n, _ceil_clamped(SEG[inst, i + 1, 0], n))
        if hi <= lo:
            if lo >= n:
                break
            continue
        cnt = hi - lo
        total += SEG[inst, i, 1] * cnt + SEG[inst, i, 2] * (lo + hi - 1) * cnt / 2.0
    return total


@njit(cache=True)
def _seg_step_time(SEG, inst, nseg, j):
    for i in range(nseg - 1, -1, -1):
        if j >= SEG[inst, i, 0]:
            return SEG[inst, i, 1] + SEG[inst, i, 2] * j
    return SEG[inst, 0, 1] + SEG[inst, 0, 2] * j


@njit(cache=True)
def _steps_within(SEG, inst, nseg, dt, n):
    if n <= 0:
        return 0
    if nseg == 1 and SEG[inst, 0, 1] > 0.0:
        a = SEG[inst, 0, 1]
        b = SEG[inst, 0, 2]
        half = a - b / 2.0
        disc = half * half + 2.0 * b * dt
        kf = 2.0 * dt / (half + math.sqrt(disc)) if half > 0.0 else dt / a
        if kf >= n:
            k = n
        elif kf <= 0.0:
            k = 0
        else:
            k = int(kf)
        for _ in range(3):
            if k > 0 and _elapsed(SEG, inst, nseg, k) > dt:
                k -= 1
            elif k < n and _elapsed(SEG, inst, nseg, k + 1) <= dt:
                k += 1
            else:
                return k
    if _elapsed(SEG, inst, nseg, n - 1) <= dt:
        return n if _elapsed(SEG, inst, nseg, n) <= dt else n - 1
    lo, hi, e_lo = 0, n - 1, 0.0
    for _ in range(3):
        if hi - lo <= 1:
            return lo
        r = dt - e_lo
        slow = _seg_step_time(SEG, inst, nseg, hi - 1)
        fast = _seg_step_time(SEG, inst, nseg, lo)
        # both guesses from the bracket as it stands (DecodeStretch.steps_within builds them as one tuple)
        if slow > 0:
            qf = r / slow
            k0 = lo + int(qf) if qf < hi - lo else hi
        else:
            k0 = lo
        if fast > 0:
            qf = r / fast
            k1 = lo + int(qf) + 1 if qf < hi - lo else hi
        else:
            k1 = hi
        for k in (k0, k1):
            if lo < k < hi:
                e = _elapsed(SEG, inst, nseg, k)
                if e <= dt:
                    lo, e_lo = k, e
                else:
                    hi = k
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if _elapsed(SEG, inst, nseg, mid) <= dt:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True)
def _build_stretch(SEG, inst, const, LNA, LNB, m, TA, TB):
    """DecodeStretch(const, lines) into the instance's segments; returns the number of segments.
    ``LNA[:m]``, ``LNB[:m]``: the lines' (a, b); TA, TB: scratch."""
    if m == 1:
        SEG[inst, 0, 0] = 0.0
        SEG[inst, 0, 1] = const + LNA[0]
        SEG[inst, 0, 2] = LNB[0]
        return 1
    # upper_envelope: the highest line at 0 (of equals the steepest), then the steeper lines by slope
    best = 0
    for i in range(1, m):
        if LNA[i] > LNA[best] or (LNA[i] == LNA[best] and LNB[i] > LNB[best]):
            best = i
    a0, b0 = LNA[best], LNB[best]
    k = 0
    for i in range(m):
        if LNB[i] > b0:
            TA[k] = LNA[i]
            TB[k] = LNB[i]
            k += 1
    order = np.argsort(TB[:k], kind="mergesort")
    SEG[inst, 0, 0] = 0.0
    SEG[inst, 0, 1] = a0
    SEG[inst, 0, 2] = b0
    h = 1
    i = 0
    while i < k:
        b = TB[order[i]]
        a = TA[order[i]]
        j = i + 1
        while j < k and TB[order[j]] == b:  # of equal slopes only the highest
            if TA[order[j]] > a:
                a = TA[order[j]]
            j += 1
        i = j
        while True:
            pa = SEG[inst, h - 1, 1]
            pb = SEG[inst, h - 1, 2]
            x = (pa - a) / (b - pb)
            if h > 1 and x <= SEG[inst, h - 1, 0]:
                h -= 1
                continue
            SEG[inst, h, 0] = x
            SEG[inst, h, 1] = a
            SEG[inst, h, 2] = b
            h += 1
            break
    for i in range(h):
        SEG[inst, i, 1] = const + SEG[inst, i, 1]
    return h


# -- the context-dependent ops of a prefill rank (step._compile_context_ops, as a loop) ----------------------------


@njit(cache=True)
def _context_time(t, p, pairs, ctx, d, dk, CXG, CXL, CXAO, CXAF, CXAC, CXBO, CXBF, CXBC, FEAT):
    FEAT[0] = 1.0
    FEAT[1] = float(p + d)
    FEAT[2] = float(p)
    FEAT[3] = pairs
    FEAT[4] = float(ctx)
    FEAT[5] = float(d)
    FEAT[6] = float(dk)
    for i in range(CXG.shape[0]):
        if FEAT[CXG[i]] != 0.0:
            a = 0.0
            for j in range(CXAO[i], CXAO[i + 1]):
                a = a + CXAC[j] * FEAT[CXAF[j]]
            b = 0.0
            for j in range(CXBO[i], CXBO[i + 1]):
                b = b + CXBC[j] * FEAT[CXBF[j]]
            t += (a if a > b else b) + CXL[i]
    return t


# -- the EP group's seconds (cost.group.GroupCost.time, roofline branch, the same float operations) ---------------

# GP[...]: GroupCost's constants as float64 (group_params)
(GP_ON, GP_NE, GP_EP, GP_IMB, GP_MOM, GP_MEAN, GP_VAR, GP_EMAX, GP_CAP, GP_K, GP_TP, GP_MOETP, GP_CNVL0, GP_CSO0,
 GP_CNVL1, GP_CSO1, GP_NA2A, GP_A2A0, GP_A2A1, GP_INVA2A, GP_INVSO, GP_SOLAT, GP_NVLLAT, GP_EXPERTS, GP_SAT,
 GP_NMAT, GP_W, GP_FFN, GP_PARAMS, GP_WBYTES, GP_ACTPAIR, GP_W4A16, GP_FRATE, GP_MRATE, GP_INVF, GP_INVM, GP_OPLAT,
 GP_AR, GP_ARF, GP_INVAR, GP_ACTB) = range(41)
NGP = 41


@njit(cache=True)
def _group_seconds(GP, GC, total, busiest, prefill):
    """GroupCost.time(total, busiest, prefill) for ``total`` > 0 from its constants ``GP`` and busiest-rank curve
    ``GC``: every product and quotient in the reference's order (tests/test_engine_compiled.py checks ==)."""
    n = GP[GP_NE]
    if n == 0.0:
        return 0.0
    ep = GP[GP_EP]
    imbalance = GP[GP_IMB]
    if GP[GP_MOM] != 0.0:
        r = 1.0 + math.sqrt(GP[GP_VAR] / total) / GP[GP_MEAN] * GP[GP_EMAX]
        imbalance = imbalance * (r if r <= GP[GP_CAP] else GP[GP_CAP])
    else:
        imbalance = 1.0
    pairs = total * GP[GP_K] / ep * imbalance
    t = 0.0
    na2a = int(GP[GP_NA2A])
    if na2a:
        c_nvl = GP[GP_CNVL1] if prefill else GP[GP_CNVL0]
        c_so = GP[GP_CSO1] if prefill else GP[GP_CSO0]
        send = busiest / GP[GP_TP] * GP[GP_MOETP]
        recv = total / ep * imbalance
        x = recv if recv > send else send
        for j in range(na2a):
            b = GP[GP_A2A0 + j]
            nvl = x * c_nvl * b
            so = x * c_so * b
            if nvl == 0.0 and so == 0.0:
                continue
            tn = nvl * GP[GP_INVA2A]
            ts = so * GP[GP_INVSO]
            if ts > 0.0:
                s = ((tn if tn >= ts else ts) + GP[GP_SOLAT]) * n
            else:
                s = (tn + GP[GP_NVLLAT]) * n
            t += s
    if GP[GP_EXPERTS] != 0.0:
        if total >= GC.shape[0] - 1:
            touched = GP[GP_SAT]
        else:
            lo = int(total)
            frac = total - lo
            touched = GC[lo] if frac == 0.0 else GC[lo] * (1.0 - frac) + GC[lo + 1] * frac
        moe_tp = GP[GP_MOETP]
        flops = 2.0 * pairs * GP[GP_NMAT] * GP[GP_W] * GP[GP_FFN] / moe_tp
        mem = touched * GP[GP_PARAMS] * GP[GP_WBYTES] / moe_tp + pairs * GP[GP_ACTPAIR]
        if flops != 0.0 or mem != 0.0:
            if GP[GP_W4A16] != 0.0:
                tc = flops / GP[GP_FRATE]
                tm = mem / GP[GP_MRATE]
            else:
                tc = flops * GP[GP_INVF]
                tm = mem * GP[GP_INVM]
            t += ((tc if tc >= tm else tm) + GP[GP_OPLAT]) * n
    if GP[GP_AR] != 0.0:
        nvl = GP[GP_ARF] * (pairs if ep > 1.0 else total) * GP[GP_W] * GP[GP_ACTB]
        if nvl != 0.0:
            t += (nvl * GP[GP_INVAR] + GP[GP_NVLLAT]) * n
    return t


def group_params(gc) -> tuple[np.ndarray, np.ndarray]:
    """GroupCost ``gc``'s constants for :func:`_group_seconds` (GP, GC); ``GP[GP_ON] == 0`` where the kernel cannot
    compute it (measured all-to-all or grouped-GEMM tables, expert popularity skew, the normal approximation of the
    busiest rank): then the EP-group seconds come from the step cost on a miss, as the other tables do."""
    from latentmoe_sim.cost.ops import ACT_BYTES
    from latentmoe_sim.cost.routing import _busiest_curve

    GP = np.zeros(NGP)
    GC = np.zeros(1)
    if not gc.nE:
        GP[GP_ON] = 1.0  # no MoE block: 0 s
        return GP, GC
    if gc.a2a_measured or gc.moe_table or (gc.experts and gc._curve is False) or len(gc.a2a_bytes) > 2:
        return GP, GC
    if gc.experts and gc._curve is None:
        gc._curve = _busiest_curve(gc.slots, gc.K, gc.ep).tolist()  # what GroupCost.time fills on its first call
    if gc.experts:
        GC = np.array(gc._curve, dtype=np.float64)
    GP[GP_ON], GP[GP_NE], GP[GP_EP], GP[GP_IMB], GP[GP_K] = 1.0, gc.nE, gc.ep, gc.imbalance, gc.K
    if gc.moments is not None:
        GP[GP_MOM] = 1.0
        GP[GP_MEAN], GP[GP_VAR], GP[GP_EMAX], GP[GP_CAP] = gc.moments
    GP[GP_TP], GP[GP_MOETP] = gc.tp, gc.moe_tp
    GP[GP_CNVL0], GP[GP_CSO0] = gc.copies[False]
    GP[GP_CNVL1], GP[GP_CSO1] = gc.copies[True]
    GP[GP_NA2A] = len(gc.a2a_bytes)
    for j, b in enumerate(gc.a2a_bytes):
        GP[GP_A2A0 + j] = b
    GP[GP_INVA2A], GP[GP_INVSO], GP[GP_SOLAT], GP[GP_NVLLAT] = gc.inv_a2a, gc.inv_so, gc.so_lat, gc.nvl_lat
    GP[GP_EXPERTS] = float(gc.experts)
    GP[GP_SAT] = float(gc.slots // gc.ep)
    GP[GP_NMAT], GP[GP_W], GP[GP_FFN] = gc.n_mat, gc.w, gc.ffn
    GP[GP_PARAMS], GP[GP_WBYTES], GP[GP_ACTPAIR] = gc.params, gc.wbytes, gc.act_pair
    if gc.w4a16:
        GP[GP_W4A16], GP[GP_FRATE], GP[GP_MRATE] = 1.0, gc.flops_rate, gc.mem_rate
    else:
        GP[GP_INVF], GP[GP_INVM] = gc.inv_flops, gc.inv_mem
    GP[GP_OPLAT] = gc.op_lat
    GP[GP_AR] = float(gc.allreduce)
    GP[GP_ARF], GP[GP_INVAR], GP[GP_ACTB] = gc.ar_factor, gc.inv_ar, ACT_BYTES
    return GP, GC


# -- small pieces the event loop shares (compiled_loop.py) ----------------------------------------------------


@njit(cache=True)
def _most_put(G, PMOST, PMD, nd, kv):
    cur = PMOST[nd]
    if cur < 0:
        PMD[G[G_PMOSTN]] = nd
        G[G_PMOSTN] += 1
        PMOST[nd] = kv
    elif kv > cur:
        PMOST[nd] = kv


@njit(cache=True)
def _add_miss(G, MISS, kind, a, b, c):
    for i in range(G[G_MISSN]):
        if MISS[i, 0] == kind and MISS[i, 1] == a and MISS[i, 2] == b and MISS[i, 3] == c:
            return
    k = G[G_MISSN]
    MISS[k, 0] = kind
    MISS[k, 1] = a
    MISS[k, 2] = b
    MISS[k, 3] = c
    G[G_MISSN] = k + 1


@njit(cache=True)
def _new_table():
    return Dict.empty(key_type=types.int64, value_type=types.float64)


@njit(cache=True)
def _table_clear(table):
    table.clear()


@njit(cache=True)
def _table_put(table, key, value):
    """table[key] = value from Python through a cached kernel function (a typed Dict's own Python-side methods
    are compiled on their first use in every process, about a second)."""
    table[key] = value


# -- the driver ----------------------------------------------------------------------------------------------------


class Unsupported(Exception):
    """The run needs something the compiled engine does not mirror; the caller runs the Python engine."""


class _Tables:
    """The side tables the kernel reads, kept per step cost (warm across operating points, as the step cost's
    own memos are): lines per decode count, token-dependent seconds, EP-group seconds."""

    #: entries put into the two dicts before both are emptied (the step cost's memos clear at 65,536 each;
    #: token keys are bounded by budget x seats, EP-group keys of measured or skewed costs are not)
    MAX_PUTS = 1 << 20

    def __init__(self, sc):
        self.puts = 0
        self.lines_n = np.full(1, -1, np.int64)
        self.lines_a = np.zeros((1, LMAX))
        self.lines_b = np.zeros((1, LMAX))
        self.tok = _new_table()
        self.grp = _new_table()
        cx = sc._context_ops
        gates = np.array([g for g, _, _, _ in cx], np.int64)
        lats = np.array([lat for _, lat, _, _ in cx], np.float64)

        def csr(rows):
            off = np.zeros(len(rows) + 1, np.int64)
            for i, r in enumerate(rows):
                off[i + 1] = off[i] + len(r)
            return (off, np.array([f for r in rows for f, _ in r], np.int64),
                    np.array([c for r in rows for _, c in r], np.float64))

        ao, af, ac = csr([a for _, _, a, _ in cx])
        bo, bf, bc = csr([b for _, _, _, b in cx])
        self.cx = (gates, lats, ao, af, ac, bo, bf, bc) + group_params(sc._group)

    def ensure_lines(self, d_max: int) -> None:
        if self.lines_n.shape[0] <= d_max:
            n = d_max + 1
            ln = np.full(n, -1, np.int64)
            la, lb = np.zeros((n, LMAX)), np.zeros((n, LMAX))
            m = self.lines_n.shape[0]
            ln[:m], la[:m], lb[:m] = self.lines_n, self.lines_a, self.lines_b
            self.lines_n, self.lines_a, self.lines_b = ln, la, lb


_TABLES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def warm_up() -> float:
    """Compile the engine's kernel (:mod:`.compiled_loop`), or load it from numba's cache, now; returns the
    seconds it took."""
    from . import compiled_loop

    return compiled_loop.warm_up()


def simulate(cost, num_instances: int, inputs: np.ndarray, outputs: np.ndarray, arrivals, closed_loop, *,
             max_batch_tokens: int, max_seqs: int, block_size: int, round_robin: bool):
    """Aggregated serving in the kernel (:func:`.compiled_loop.simulate_aggregated`): (request columns,
    sim_end_s, steps, timers). ``arrivals``: open-loop arrival times (None for a closed loop);
    ``closed_loop``: the spec's ClosedLoop or None. Raises :class:`Unsupported` when the run needs something
    the kernel does not mirror."""
    from . import compiled_loop

    if not supported(cost.step_cost):
        raise Unsupported("step cost")
    return compiled_loop.simulate_aggregated(cost, num_instances, inputs, outputs, arrivals, closed_loop,
                                             max_batch_tokens=max_batch_tokens, max_seqs=max_seqs,
                                             block_size=block_size, round_robin=round_robin)


_NOTIFIED: set = set()


def notify_if_cold(kernel, name: str = "engine") -> None:
    """Once per process and kernel: when numba's cache does not hold the kernel yet (its first use on this
    machine), say on stderr that it is being compiled, so that a first run is not a silent half minute."""
    key = id(kernel)
    if key in _NOTIFIED:
        return
    _NOTIFIED.add(key)
    if not cache_is_warm(kernel):
        import sys

        print(f"lmsim: compiling the {name} (first use on this machine, about half a minute; cached for later "
              "runs; engine='python' skips it)", file=sys.stderr, flush=True)


def cache_is_warm(kernel=None) -> bool:
    """Whether numba's on-disk cache already holds the kernel (default: the event loop of
    :mod:`.compiled_loop`) (a best guess: its index file exists)."""
    if kernel is None:
        from . import compiled_loop

        kernel = compiled_loop._run
    try:
        return os.path.exists(kernel._cache._cache_file._index_path)
    except Exception:  # numba internals moved: assume cold, which only costs a message
        return False


def run_if_supported(run, step_costs: dict, *, required: bool, step_by_step: bool, clock: str,
                     adp_balance_iters=None):
    """``run()`` (the simulation on the compiled engine) where the kernel mirrors it, else None (the caller then
    runs the Python engine; ``required``, ``engine="compiled"``: an InputError that says why). ``step_costs``:
    each pool's step cost by name ("step cost", "prefill step cost", ...). ``run`` may raise
    :class:`Unsupported` when the run turns out to need something the kernel does not mirror."""
    why = None
    if not AVAILABLE:
        why = "numba is not installed"
    else:
        for name, sc in step_costs.items():
            if not supported(sc):
                why = f"the {name} ({type(sc).__name__}) is not a roofline CompiledStepCost"
                break
    if why is None:
        if step_by_step:
            why = "step_by_step is the Python reference mode"
        elif adp_balance_iters is not None:
            why = "attention-DP balance is not compiled"
        elif clock != "heap":
            why = f"the {clock} clock runs on the Python engine"
    if why is None:
        try:
            return run()
        except Unsupported as exc:
            why = str(exc)
    if required:
        raise InputError(f"engine: 'compiled' cannot run this simulation: {why}")
    return None


def supported(step_cost) -> bool:
    """Whether :func:`simulate` can run this step cost (a roofline CompiledStepCost) on this machine."""
    if not AVAILABLE:
        return False
    from latentmoe_sim.cost.step import CompiledStepCost

    return type(step_cost) is CompiledStepCost and bool(step_cost.grouped)


def _fill(sc, tables: _Tables, misses: np.ndarray) -> None:
    """Ask the step cost for the entries the kernel missed (the same calls, with the same argument types, as
    the Python engine's ``step_time_grouped`` and ``decode_stretch_grouped``)."""
    if tables.puts >= tables.MAX_PUTS:
        # bounded memory on long sweeps: start both dicts afresh (a plan left pending re-checks its entries on
        # resume, so one emptied here is asked for again)
        _table_clear(tables.tok)
        _table_clear(tables.grp)
        tables.puts = 0
    tables.puts += len(misses)
    for kind, a, b, c in misses.tolist():
        if kind == M_LINES:
            lines = sc._lines_memo.get(a) or sc._decode_lines(a)
            if len(lines) > LMAX:
                raise Unsupported(f"{len(lines)} envelope pieces for {a} decodes")
            for j, (la, lb) in enumerate(lines):
                tables.lines_a[a, j] = la
                tables.lines_b[a, j] = lb
            tables.lines_n[a] = len(lines)
        elif kind == M_TOKEN:
            t = sc._token_memo.get((a, b))
            _table_put(tables.tok, _token_key(a, b), sc._token_time(a, b) if t is None else t)
        elif kind == M_GROUP_STEP:
            _table_put(tables.grp, _group_key(a, b, c), sc.group_time(a, b, bool(c)))
        else:
            _table_put(tables.grp, _group_key(a, b, 0), sc.group_time(float(a), float(b)))

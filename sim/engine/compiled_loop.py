"""The compiled engine's event loop (numba): the same simulation as the Python engine's aggregated and
disaggregated serving (:mod:`.aggregated`, :mod:`.disaggregated` and the instances, scheduler, KV pools,
routers and links they drive), decision for decision and float for float.

It is written once for both modes: aggregated serving is the kernel with no decode pool, where the instances
of pool 0 prefill and decode (as the Python engine's one ``Instance`` class serves all three roles). It uses
the pieces of :mod:`.compiled` that take their configuration as arguments (the clock heap, the finish heap,
the rank queues, the KV pool, decode stretches, the context-dependent ops, the EP group's seconds, the side
tables and their miss-and-resume protocol) and writes out the rest with per-instance configuration:

* **instances** ``0 .. P-1`` are the prefill pool, ``P .. P+D-1`` the decode pool; each instance has its own
  ranks (a contiguous range), attention-DP width, token budget, seats and KV capacity, and each pool its own
  step cost, hence its own side tables (``TOK0, GRP0, X0``: prefill, ``TOK1, GRP1, X1``: decode; the same
  tables when both pools share a step cost);
* a **prefill-only** instance (pool 0 when there is a decode pool) hands a finished prefill over instead of decoding it (``Instance
  ._prefill_complete``: the request leaves the rank's running set and the instance's load but keeps its KV
  blocks, phase HELD, and a ``(TRANSFER, id)`` action is deferred);
* the **deferred actions** of one instant run in key order: every ``(INJECT, id)`` (closed-loop sends, by
  the id of the finished request) before every ``(TRANSFER, id)`` (by request id), as ``Deferred._flush``
  sorts them; here a key is ``id`` for an injection and ``N + id`` for a transfer, sorted as integers;
* a transfer picks a decode instance (the decode pool's own router), adds to its load and starts on that
  instance's **ingress link** (:class:`.disaggregated.Link`: processor sharing at ``min(cap, bandwidth / n)``
  with a virtual byte clock, a heap of ``(virtual finish, start seq)``, one live drain timer whose
  superseded predecessors fire and are ignored, then a landing timer ``latency`` later, or a landing at once
  when the latency is 0);
* a **landing** releases the prefill rank's blocks (``Instance.release``, which wakes an idle prefill
  instance whose rank has a queue), stamps ``kv_transfer_s``, and submits the request to its decode
  instance with nothing to prefill; that instance's inbox is kept sorted by ``(submit time, id)``, as
  ``Instance._drain_inbox`` sorts it (landings at one instant need not come in id order);
* a decode rank **admits a landed request** as a decode (``Rank.plan_step``'s ``target == 0`` branch:
  ``ceil((P + g) / block_size)`` blocks, one token of budget) and stamps its first token at the step's
  start (``Rank.seated``).

Each kernel helper takes from the state tuple only the arrays it uses: numba increments and decrements the
reference count of every array it unpacks (atomic operations), which ``perf`` showed to be half the CPU of a
warm point when every helper unpacked the whole tuple.

:func:`simulate` is the driver, called by :func:`.disaggregated.simulate_disaggregated` (``engine=``), and
:func:`simulate_aggregated` the aggregated one (through :func:`.compiled.simulate`);
``tests/test_engine_compiled.py`` and ``tests/test_engine_compiled_disagg.py`` compare their records with the
Python engine's, column by column.
"""

from __future__ import annotations

import numpy as np

from . import compiled

try:
    from numba.core.errors import NumbaError
except ImportError:  # pragma: no cover - without numba the Python engine runs everything
    NumbaError = Exception

from .compiled import (
    AVAILABLE, BETWEEN, COMPLETE, DECODE, DONE, F_ARR, F_FIN, F_FIRST, G_ARMED, G_CLEN, G_DEFN, G_ERR, G_ERRARG,
    G_MISSN, G_NEXTARR, G_NREQ, G_PBUSY, G_PCHN, G_PIDLE, G_PINST, G_PKIND, G_PMOSTN, G_PN, G_PTOTAL, G_REMAIN,
    G_RR, G_SENT, G_STARTED, G_TIMERS, GF_NOW, GP_ON, HELD, I_C, I_HLEN, I_IHEAD, I_ITAIL, I_LOAD, I_N, I_NCH,
    I_NSEG, I_PLEFT, I_SEQ, I_STATE, I_STEPS, I_TIMER, IDLE, IF_END, IF_T0, K_BLOCKED, K_COUNT, K_FREE,
    K_KVOFF, K_NDEC, K_PARTIAL, K_RUNS, K_SYNCED, K_UHEAD, K_ULEN, K_UTAIL, K_WHEAD, K_WLEN, K_WTAIL, LMAX,
    M_GROUP_STEP, M_GROUP_STRETCH, M_LINES, M_TOKEN, NG, NGP, NI_, njit, NK, NQ, PK_IDLE, PK_NONE, PK_STEP,
    PK_STRETCH, PREFILL, Q_BLOCKS, Q_GEN, Q_IN, Q_INEXT, Q_INST, Q_OUT, Q_PDONE, Q_PHASE, Q_PRE, Q_PTGT, Q_RANK,
    Q_SEQ, Q_WNEXT, ROUTE, RUNS_INF, RUNS_UNKNOWN, S_BUG, S_DONE, S_MISS, S_STALL, SCHEDULE, STEP, STRETCH,
    T_ARRIVE, T_FLUSH, T_PLAN, T_START, T_STEPEND, T_STRETCHEND, T_THINK, TRANSFER, WAITING, _add_miss,
    _allocate_with_preemption, _at, _blocks_for, _build_stretch, _changed, _context_time, _elapsed, _fill,
    _group_key, _group_seconds, _head_fits, _hpop, _most_put, _new_table, _pop, _refresh, _start_decode,
    _steps_within, _stop_decode, _sync, _table_put, _TABLES, _Tables, _token_key, _u_append, _u_remove, _w_append,
    _w_popleft,
)

# -- what this kernel adds to the layout of compiled.py ----------------------------------------------------------

# requests: one more int64 column (the prefill instance) and three more float64 columns
Q_PINST = NQ
NQD = NQ + 1
F_PEND, F_KVT, F_SUB = 3, 4, 5  # prefill end, KV transfer seconds, time submitted to the current inbox
NFD = 6
# per-instance configuration, int64 IC[inst, ...] and float64 ICF[inst, ...]
IC_DP, IC_R0, IC_SEATS, IC_MAXTOK, IC_POOL = range(5)
NIC = 5
ICF_OVERHEAD, ICF_IDLE = range(2)
# run-wide configuration, int64 CFG[...] and float64 CFGF[...]
D_N, D_NP, D_ND, D_BS, D_CLOSED, D_CLIENTS, D_RR = range(7)
ND_ = 7
DF_THINK, DF_RAMP, DF_BW, DF_CAP, DF_LAT, DF_KVB, DF_SBS = range(7)
NDF = 7
# the decode router's round-robin pointer (the prefill router's is G_RR)
G_RRD = NG
NGD = NG + 1
# links: int64 LI[link, ...], float64 LF[link, ...]
L_LEN, L_SEQ, L_ARMED = range(3)
LF_VIRTUAL, LF_T = range(2)
# timer kinds beyond compiled.py's seven
T_DRAIN, T_LAND = 7, 8


# -- the ingress links (disaggregated.Link) ------------------------------------------------------------------------


@njit(cache=True)
def _l_less(LHT, LHQ, k, a, b):
    if LHT[k, a] != LHT[k, b]:
        return LHT[k, a] < LHT[k, b]
    return LHQ[k, a, 0] < LHQ[k, b, 0]


@njit(cache=True)
def _l_push(LI, LHT, LHQ, k, tag, seq, q):
    i = LI[k, L_LEN]
    LI[k, L_LEN] = i + 1
    while i > 0:
        p = (i - 1) >> 1
        if LHT[k, p] < tag or (LHT[k, p] == tag and LHQ[k, p, 0] < seq):
            break
        LHT[k, i] = LHT[k, p]
        LHQ[k, i, 0] = LHQ[k, p, 0]
        LHQ[k, i, 1] = LHQ[k, p, 1]
        i = p
    LHT[k, i] = tag
    LHQ[k, i, 0] = seq
    LHQ[k, i, 1] = q


@njit(cache=True)
def _l_pop(LI, LHT, LHQ, k):
    """Pop the first transfer of link ``k``; returns its request."""
    q = LHQ[k, 0, 1]
    n = LI[k, L_LEN] - 1
    LI[k, L_LEN] = n
    if n > 0:
        LHT[k, 0] = LHT[k, n]
        LHQ[k, 0, 0] = LHQ[k, n, 0]
        LHQ[k, 0, 1] = LHQ[k, n, 1]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and _l_less(LHT, LHQ, k, c + 1, c):
                c += 1
            if _l_less(LHT, LHQ, k, c, i):
                t = LHT[k, i]
                LHT[k, i] = LHT[k, c]
                LHT[k, c] = t
                for j in range(2):
                    s = LHQ[k, i, j]
                    LHQ[k, i, j] = LHQ[k, c, j]
                    LHQ[k, c, j] = s
                i = c
            else:
                break
    return q


@njit(cache=True)
def _l_rate(LI, CFGF, k):
    """Link._rate: an equal share of the ingress, at most the per-transfer cap."""
    share = CFGF[DF_BW] / LI[k, L_LEN]
    cap = CFGF[DF_CAP]
    return share if share < cap else cap


@njit(cache=True)
def _l_arm(G, GF, CT, CA, CFGF, LI, LF, LHT, k):
    """Link._arm: the timer of the next transfer to drain (the previous one, if any, is superseded)."""
    if LI[k, L_LEN] == 0:
        LI[k, L_ARMED] = -1
        return
    dt = (LHT[k, 0] - LF[k, LF_VIRTUAL]) / _l_rate(LI, CFGF, k)
    LI[k, L_ARMED] = _at(G, GF, CT, CA, dt if dt > 0.0 else 0.0, COMPLETE, T_DRAIN, k)


@njit(cache=True)
def _l_start(G, GF, CT, CA, CFGF, LI, LF, LHT, LHQ, k, q, nbytes):
    """Link.start: advance the virtual clock, queue the transfer by its virtual finish, re-arm."""
    now = GF[GF_NOW]
    if LI[k, L_LEN] > 0:
        LF[k, LF_VIRTUAL] += (now - LF[k, LF_T]) * _l_rate(LI, CFGF, k)
    LF[k, LF_T] = now
    seq = LI[k, L_SEQ]
    LI[k, L_SEQ] = seq + 1
    _l_push(LI, LHT, LHQ, k, LF[k, LF_VIRTUAL] + nbytes, seq, q)
    _l_arm(G, GF, CT, CA, CFGF, LI, LF, LHT, k)


# -- the state bundle: compiled.py's arrays, less its cost tables, plus the per-instance configuration and links --


@njit(cache=True, inline="always")
def _most_clear(S):
    G = S[11]
    PMOST = S[21]
    PMD = S[22]
    for i in range(G[G_PMOSTN]):
        PMOST[PMD[i]] = -1
    G[G_PMOSTN] = 0


@njit(cache=True)
def _plan_rank(RQ, RF, RK, DUE, IN, HEAP, CH, BUF, bs, maxtok, seats, r, inst, c, now):
    """Rank.plan_step (admit=True), both branches of admission: a prompt to prefill, or (disaggregated
    decode) a request whose KV arrived, which decodes from this step on and gets its first token now (the
    instance's ``_deliver_seated`` runs right after this rank's planning, at the same instant)."""
    preempted = False
    nd = RK[r, K_NDEC]
    if nd:
        _sync(RK, DUE, r, bs, c, nd)
        need = DUE[r, c % bs]
        if need <= RK[r, K_FREE]:
            RK[r, K_FREE] -= need
        else:
            preempted = _allocate_with_preemption(RQ, RK, DUE, bs, r, c, BUF) and RK[r, K_ULEN] > 0
    RK[r, K_SYNCED] = c + 1
    budget = maxtok - RK[r, K_NDEC]
    tokens = 0
    pairs = 0.0
    ctx = 0
    q = RK[r, K_PARTIAL]
    nch = IN[inst, I_NCH]
    if q >= 0:
        off = RQ[q, Q_PDONE]
        chunk = min(RQ[q, Q_PTGT] - off, budget)
        CH[inst, nch, 0] = r
        CH[inst, nch, 1] = q
        CH[inst, nch, 2] = chunk
        nch += 1
        budget -= chunk
        tokens += chunk
        pairs += chunk * (off + (chunk + 1) / 2.0)
        ctx += off + chunk
        if off + chunk == RQ[q, Q_PTGT]:
            RK[r, K_PARTIAL] = -1
    RK[r, K_BLOCKED] = 0
    if preempted:
        IN[inst, I_NCH] = nch
        _refresh(RK, DUE, r, bs, RK[r, K_NDEC])
        return tokens, pairs, ctx
    admitted = False
    while RK[r, K_WLEN] > 0 and budget > 0:
        if RK[r, K_ULEN] >= seats:
            RK[r, K_BLOCKED] = 1 if RK[r, K_PARTIAL] < 0 else 0
            break
        q = RK[r, K_WHEAD]
        target = RQ[q, Q_PTGT]
        need = _blocks_for(RQ[q, Q_IN] + RQ[q, Q_GEN], bs)
        if need > RK[r, K_FREE]:
            RK[r, K_BLOCKED] = 1 if RK[r, K_PARTIAL] < 0 else 0
            break
        _w_popleft(RQ, RK, r)
        admitted = True
        RK[r, K_FREE] -= need
        _u_append(RQ, RK, r, q)
        RQ[q, Q_SEQ] = IN[inst, I_SEQ]
        IN[inst, I_SEQ] += 1
        if target:
            RQ[q, Q_PHASE] = PREFILL
            RQ[q, Q_BLOCKS] = need
            chunk = min(target, budget)
            CH[inst, nch, 0] = r
            CH[inst, nch, 1] = q
            CH[inst, nch, 2] = chunk
            nch += 1
            budget -= chunk
            tokens += chunk
            pairs += chunk * ((chunk + 1) / 2.0)
            ctx += chunk
            if chunk < target:
                RK[r, K_PARTIAL] = q
        else:  # KV computed elsewhere: decode from this step on
            g = RQ[q, Q_GEN]
            _start_decode(RQ, RK, DUE, IN, HEAP, bs, r, inst, q, RQ[q, Q_IN] + g - 1, g, c)
            RF[q, F_FIRST] = now  # Rank.seated -> Instance._deliver_seated
            budget -= 1
    IN[inst, I_NCH] = nch
    if admitted or RK[r, K_RUNS] == RUNS_UNKNOWN:
        _refresh(RK, DUE, r, bs, RK[r, K_NDEC])
    return tokens, pairs, ctx


@njit(cache=True, inline="always")
def _drain_inbox(S, inst, c):
    RQ = S[0]
    RK = S[2]
    DUE = S[3]
    IN = S[4]
    CFG = S[13]
    FED = S[19]
    IC = S[32]
    dp, r0, seats, bs = IC[inst, IC_DP], IC[inst, IC_R0], IC[inst, IC_SEATS], CFG[D_BS]
    nfed = 0
    q = IN[inst, I_IHEAD]
    while q >= 0:  # kept in (time, id) order by _submit: the Python engine's sort
        r = r0
        for rr in range(r0 + 1, r0 + dp):
            if RK[rr, K_COUNT] < RK[r, K_COUNT]:
                r = rr
        RK[r, K_COUNT] += 1
        RQ[q, Q_RANK] = r
        _w_append(RQ, RK, r, q)
        FED[nfed] = r
        nfed += 1
        q = RQ[q, Q_INEXT]
    IN[inst, I_IHEAD] = -1
    IN[inst, I_ITAIL] = -1
    for i in range(nfed):
        r = FED[i]
        if not RK[r, K_BLOCKED]:
            nd = RK[r, K_NDEC]
            if nd:
                _sync(RK, DUE, r, bs, c, nd)
                if _head_fits(RQ, RK, r, RK[r, K_FREE] - DUE[r, c % bs], seats, bs):
                    return True
            elif _head_fits(RQ, RK, r, RK[r, K_FREE], seats, bs):
                return True
    return False


@njit(cache=True, inline="always")
def _stretch_steps(S, inst, c):
    """Instance._stretch_steps + _stretch_summary (held=False): fills the pending summary; returns n."""
    RQ = S[0]
    RK = S[2]
    DUE = S[3]
    IN = S[4]
    HEAP = S[6]
    G = S[11]
    CFG = S[13]
    PMOST = S[21]
    PMD = S[22]
    IC = S[32]
    HK = HEAP[inst]
    while IN[inst, I_HLEN] > 0:
        q = HK[0, 2]
        if RQ[q, Q_PHASE] == DECODE and RQ[q, Q_SEQ] == HK[0, 1]:
            break
        _hpop(IN, HEAP, inst)
    if IN[inst, I_HLEN] == 0:
        return 0
    n = HK[0, 0] - c
    if n < 2:
        return 0
    dp, r0, seats, bs = IC[inst, IC_DP], IC[inst, IC_R0], IC[inst, IC_SEATS], CFG[D_BS]
    total = 0
    busiest = 0
    c1 = c + 1
    for r in range(r0, r0 + dp):
        nd = RK[r, K_NDEC]
        if nd:
            fit = RK[r, K_RUNS] - c
            if fit < n:
                if RK[r, K_RUNS] == RUNS_UNKNOWN:
                    _refresh(RK, DUE, r, bs, nd)
                    fit = RK[r, K_RUNS] - c
                if fit < n:
                    if fit < 2:
                        return 0
                    n = fit
            if RK[r, K_WLEN] > 0 and not RK[r, K_BLOCKED]:
                _sync(RK, DUE, r, bs, c, nd)
                if _head_fits(RQ, RK, r, RK[r, K_FREE] - DUE[r, c % bs], seats, bs):
                    return 0
            _most_put(G, PMOST, PMD, nd, RK[r, K_KVOFF] + nd * c1)
            total += nd
            if nd > busiest:
                busiest = nd
        elif RK[r, K_WLEN] > 0 and not RK[r, K_BLOCKED] and _head_fits(RQ, RK, r, RK[r, K_FREE], seats, bs):
            return 0
    G[G_PTOTAL] = total
    G[G_PBUSY] = busiest
    return n


@njit(cache=True, inline="always")
def _plan_step(S, inst, c):
    """Instance._plan_step_grouped (hold=False): plans every rank; fills the pending summary; returns the kind."""
    RQ = S[0]
    RF = S[1]
    RK = S[2]
    DUE = S[3]
    IN = S[4]
    HEAP = S[6]
    CH = S[7]
    G = S[11]
    GF = S[12]
    CFG = S[13]
    BUF = S[20]
    PMOST = S[21]
    PMD = S[22]
    PCH = S[23]
    PCHF = S[24]
    IC = S[32]
    IN[inst, I_NCH] = 0
    G[G_PCHN] = 0
    total = 0
    busiest = 0
    busy = False
    idle = False
    pleft = False
    dp, r0, seats, maxtok, bs = IC[inst, IC_DP], IC[inst, IC_R0], IC[inst, IC_SEATS], IC[inst, IC_MAXTOK], CFG[D_BS]
    now = GF[GF_NOW]
    for r in range(r0, r0 + dp):
        nd = RK[r, K_NDEC]
        if RK[r, K_PARTIAL] < 0 and (RK[r, K_WLEN] == 0 or RK[r, K_BLOCKED]):
            if not nd:
                idle = True
                continue
            if c < RK[r, K_RUNS]:
                busy = True
                _most_put(G, PMOST, PMD, nd, RK[r, K_KVOFF] + nd * (c + 1))
                total += nd
                if nd > busiest:
                    busiest = nd
                continue
        tokens, pairs, ctx = _plan_rank(RQ, RF, RK, DUE, IN, HEAP, CH, BUF, bs, maxtok, seats, r, inst, c, now)
        if RK[r, K_PARTIAL] >= 0:
            pleft = True
        nd = RK[r, K_NDEC]
        t = tokens + nd
        total += t
        if t > busiest:
            busiest = t
        if tokens:
            busy = True
            k = G[G_PCHN]
            PCH[k, 0] = tokens
            PCH[k, 1] = ctx
            PCH[k, 2] = nd
            PCH[k, 3] = RK[r, K_KVOFF] + nd * (c + 1) if nd else 0
            PCHF[k] = pairs
            G[G_PCHN] = k + 1
        elif nd:
            busy = True
            _most_put(G, PMOST, PMD, nd, RK[r, K_KVOFF] + nd * (c + 1))
        else:
            idle = True
    IN[inst, I_PLEFT] = 1 if pleft else 0
    if not busy:
        return PK_IDLE
    G[G_PTOTAL] = total
    G[G_PBUSY] = busiest
    G[G_PIDLE] = 1 if idle else 0
    return PK_STEP


@njit(cache=True, inline="always")
def _plan(S, inst):
    """Instance._plan (grouped, no ADP balance): leaves the planned step or stretch pending for _finish_plan."""
    IN = S[4]
    G = S[11]
    c = IN[inst, I_C]
    admits = False
    if IN[inst, I_IHEAD] >= 0:
        admits = _drain_inbox(S, inst, c)
    G[G_PINST] = inst
    if IN[inst, I_HLEN] > 0 and not IN[inst, I_PLEFT] and not admits:  # a prefill instance's heap stays empty
        n = _stretch_steps(S, inst, c)
        if n >= 2:
            G[G_PN] = n
            G[G_PKIND] = PK_STRETCH
            return
        _most_clear(S)
    G[G_PKIND] = _plan_step(S, inst, c)


@njit(cache=True, inline="always")
def _finish_plan_pool(S, TOK, GRP, X):
    """compiled._finish_plan with the pending instance's pool tables (``TOK``, ``GRP``, ``X``) and its own
    overhead and idle time."""
    IN = S[4]
    INF = S[5]
    SEG = S[8]
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    PMOST = S[21]
    PMD = S[22]
    PCH = S[23]
    PCHF = S[24]
    MISS = S[25]
    TA = S[26]
    TB = S[27]
    LNA = S[28]
    LNB = S[29]
    FEAT = S[30]
    ICF = S[33]
    CX, LN, LA, LB = X
    CXG, CXL, CXAO, CXAF, CXAC, CXBO, CXBF, CXBC, GP, GC = CX
    kind = G[G_PKIND]
    inst = G[G_PINST]
    if kind == PK_IDLE:
        IN[inst, I_STATE] = IDLE
        _most_clear(S)
        G[G_PCHN] = 0
        G[G_PKIND] = PK_NONE
        return
    G[G_MISSN] = 0
    for i in range(G[G_PMOSTN]):
        d = PMD[i]
        if LN[d] < 0:
            _add_miss(G, MISS, M_LINES, d, 0, 0)
    total, busiest = G[G_PTOTAL], G[G_PBUSY]
    nch = G[G_PCHN] if kind == PK_STEP else 0
    for i in range(nch):
        if _token_key(PCH[i, 0], PCH[i, 2]) not in TOK:
            _add_miss(G, MISS, M_TOKEN, PCH[i, 0], PCH[i, 2], 0)
    prefill = 1 if nch > 0 else 0
    gkey = _group_key(total, busiest, prefill)
    own = GP[GP_ON] != 0.0  # the kernel computes the EP group's seconds itself
    if total > 0 and not own and gkey not in GRP:
        _add_miss(G, MISS, M_GROUP_STRETCH if kind == PK_STRETCH else M_GROUP_STEP, total, busiest, prefill)
    if G[G_MISSN]:
        return  # pending: the driver fills the tables and calls the kernel again
    if total <= 0:
        group = 0.0
    elif own:
        group = _group_seconds(GP, GC, float(total), float(busiest), prefill)
    else:
        group = GRP[gkey]
    now = GF[GF_NOW]
    overhead = ICF[inst, ICF_OVERHEAD]
    if kind == PK_STRETCH:
        m = 0
        for i in range(G[G_PMOSTN]):
            d = PMD[i]
            kv = PMOST[d]
            for j in range(LN[d]):
                a, b = LA[d, j], LB[d, j]
                LNA[m] = a + b * kv
                LNB[m] = b * d
                m += 1
        if m == 0:
            LNA[0] = 0.0
            LNB[0] = 0.0
            m = 1
        const = overhead + group
        nseg = _build_stretch(SEG, inst, const, LNA, LNB, m, TA, TB)
        IN[inst, I_NSEG] = nseg
        n = G[G_PN]
        INF[inst, IF_T0] = now
        IN[inst, I_N] = n
        end = now + _elapsed(SEG, inst, nseg, n)
        INF[inst, IF_END] = end
        IN[inst, I_STATE] = STRETCH
        IN[inst, I_TIMER] = _at(G, GF, CT, CA, end - now, COMPLETE, T_STRETCHEND, inst)
    else:
        slowest = ICF[inst, ICF_IDLE] if G[G_PIDLE] else 0.0
        for i in range(G[G_PMOSTN]):
            d = PMD[i]
            kv = PMOST[d]
            for j in range(LN[d]):
                t = LA[d, j] + LB[d, j] * kv
                if t > slowest:
                    slowest = t
        for i in range(nch):
            p, ctx, d, dk = PCH[i, 0], PCH[i, 1], PCH[i, 2], PCH[i, 3]
            t = _context_time(TOK[_token_key(p, d)], p, PCHF[i], ctx, d, dk,
                              CXG, CXL, CXAO, CXAF, CXAC, CXBO, CXBF, CXBC, FEAT)
            if t > slowest:
                slowest = t
        dt = overhead + slowest + group
        IN[inst, I_STATE] = STEP
        _at(G, GF, CT, CA, dt, COMPLETE, T_STEPEND, inst)
    _most_clear(S)
    G[G_PCHN] = 0
    G[G_PKIND] = PK_NONE


@njit(cache=True, inline="always")
def _finish_plan(S, TOK0, GRP0, X0, TOK1, GRP1, X1):
    IC, G = S[32], S[11]
    if IC[G[G_PINST], IC_POOL] == 0:
        TOK, GRP, X = TOK0, GRP0, X0
    else:
        TOK, GRP, X = TOK1, GRP1, X1
    _finish_plan_pool(S, TOK, GRP, X)  # one inlined copy: a call would pass the whole state


# -- requests in and out -----------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _new_request(S, arrival):
    RQ = S[0]
    RF = S[1]
    G = S[11]
    INPUTS = S[15]
    OUTPUTS = S[16]
    q = G[G_NREQ]
    G[G_NREQ] = q + 1
    RQ[q, Q_IN] = INPUTS[q]
    RQ[q, Q_OUT] = OUTPUTS[q]
    RQ[q, Q_PTGT] = INPUTS[q]
    RF[q, F_ARR] = arrival
    return q


@njit(cache=True, inline="always")
def _cut(S, inst):
    IN = S[4]
    INF = S[5]
    SEG = S[8]
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    now, t0, n, nseg = GF[GF_NOW], INF[inst, IF_T0], IN[inst, I_N], IN[inst, I_NSEG]
    k = _steps_within(SEG, inst, nseg, now - t0, n)
    if t0 + _elapsed(SEG, inst, nseg, k) < now:
        k += 1
    if k < n:
        IN[inst, I_N] = k
        end = t0 + _elapsed(SEG, inst, nseg, k)
        INF[inst, IF_END] = end
        IN[inst, I_TIMER] = _at(G, GF, CT, CA, max(end - now, 0.0), COMPLETE, T_STRETCHEND, inst)


@njit(cache=True, inline="always")
def _submit(S, inst, q):
    """Instance.submit: into the inbox, in (time, id) order; wake the instance or cut its stretch."""
    RQ = S[0]
    RF = S[1]
    IN = S[4]
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    now = GF[GF_NOW]
    RF[q, F_SUB] = now
    t = IN[inst, I_ITAIL]
    if t < 0:
        RQ[q, Q_INEXT] = -1
        IN[inst, I_IHEAD] = q
        IN[inst, I_ITAIL] = q
    elif RF[t, F_SUB] < now or t < q:  # the usual case: after the tail
        RQ[q, Q_INEXT] = -1
        RQ[t, Q_INEXT] = q
        IN[inst, I_ITAIL] = q
    else:  # a request of a larger id submitted earlier at this instant: insert before it
        prev = -1
        p = IN[inst, I_IHEAD]
        while p >= 0 and (RF[p, F_SUB] < now or p < q):
            prev = p
            p = RQ[p, Q_INEXT]
        RQ[q, Q_INEXT] = p
        if prev >= 0:
            RQ[prev, Q_INEXT] = q
        else:
            IN[inst, I_IHEAD] = q
    state = IN[inst, I_STATE]
    if state == IDLE:
        IN[inst, I_STATE] = BETWEEN
        _at(G, GF, CT, CA, 0.0, SCHEDULE, T_PLAN, inst)
    elif state == STRETCH:
        _cut(S, inst)


@njit(cache=True, inline="always")
def _route(S, q):
    """_Disaggregated.route: the prefill pool's router picks an instance."""
    RQ = S[0]
    IN = S[4]
    G = S[11]
    CFG = S[13]
    npre = CFG[D_NP]
    if npre == 1:
        inst = 0
    elif CFG[D_RR]:
        inst = G[G_RR]
        G[G_RR] = (inst + 1) % npre
    else:
        inst = 0
        for i in range(1, npre):
            if IN[i, I_LOAD] < IN[inst, I_LOAD]:
                inst = i
    IN[inst, I_LOAD] += 1
    RQ[q, Q_INST] = inst
    RQ[q, Q_PINST] = inst
    _submit(S, inst, q)


@njit(cache=True, inline="always")
def _start_transfer(S, q):
    """_Disaggregated._start_transfer: the decode pool's router picks an instance; the KV goes on its link."""
    RQ = S[0]
    IN = S[4]
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    CFG = S[13]
    CFGF = S[14]
    LI = S[34]
    LF = S[35]
    LHT = S[36]
    LHQ = S[37]
    npre, ndec = CFG[D_NP], CFG[D_ND]
    if ndec == 1:
        j = 0
    elif CFG[D_RR]:
        j = G[G_RRD]
        G[G_RRD] = (j + 1) % ndec
    else:
        j = 0
        for i in range(1, ndec):
            if IN[npre + i, I_LOAD] < IN[npre + j, I_LOAD]:
                j = i
    IN[npre + j, I_LOAD] += 1
    RQ[q, Q_INST] = npre + j
    RQ[q, Q_PHASE] = TRANSFER
    nbytes = RQ[q, Q_IN] * CFGF[DF_KVB] + CFGF[DF_SBS]
    _l_start(G, GF, CT, CA, CFGF, LI, LF, LHT, LHQ, j, q, nbytes)


@njit(cache=True, inline="always")
def _landed(S, q):
    """_Disaggregated._landed: the prefill rank releases the blocks (Instance.release), the request goes to
    its decode instance with nothing to prefill."""
    RQ = S[0]
    RF = S[1]
    RK = S[2]
    IN = S[4]
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    now = GF[GF_NOW]
    r = RQ[q, Q_RANK]  # still the prefill rank: a decode instance assigns one when it drains its inbox
    pinst = RQ[q, Q_PINST]
    blocks = RQ[q, Q_BLOCKS]
    RQ[q, Q_BLOCKS] = 0
    RK[r, K_FREE] += blocks
    _changed(RK, r)
    if IN[pinst, I_STATE] == IDLE and RK[r, K_WLEN] > 0:
        IN[pinst, I_STATE] = BETWEEN
        _at(G, GF, CT, CA, 0.0, SCHEDULE, T_PLAN, pinst)
    RF[q, F_KVT] = now - RF[q, F_PEND]
    RF[q, F_FIRST] = -1.0
    RQ[q, Q_PHASE] = WAITING
    RQ[q, Q_PTGT] = 0
    RQ[q, Q_PDONE] = 0
    _submit(S, RQ[q, Q_INST], q)


@njit(cache=True, inline="always")
def _drained(S, tid, k):
    """Link._drained: every transfer with the first virtual finish lands (now, or ``latency`` later)."""
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    CFGF = S[14]
    LI = S[34]
    LF = S[35]
    LHT = S[36]
    LHQ = S[37]
    if tid != LI[k, L_ARMED]:
        return  # superseded by a later start
    tag = LHT[k, 0]
    LF[k, LF_T] = GF[GF_NOW]
    LF[k, LF_VIRTUAL] = tag
    lat = CFGF[DF_LAT]
    while LI[k, L_LEN] > 0 and LHT[k, 0] <= tag:
        q = _l_pop(LI, LHT, LHQ, k)
        if lat > 0.0:
            _at(G, GF, CT, CA, lat, COMPLETE, T_LAND, q)
        else:
            _landed(S, q)
    _l_arm(G, GF, CT, CA, CFGF, LI, LF, LHT, k)


@njit(cache=True, inline="always")
def _defer(S, key):
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    DEF = S[18]
    DEF[G[G_DEFN]] = key
    G[G_DEFN] += 1
    if not G[G_ARMED]:
        G[G_ARMED] = 1
        _at(G, GF, CT, CA, 0.0, ROUTE, T_FLUSH, 0)


@njit(cache=True, inline="always")
def _source_finished(S, q):
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    CFG = S[13]
    CFGF = S[14]
    G[G_REMAIN] -= 1
    if CFG[D_CLOSED] and G[G_SENT] < CFG[D_N]:
        G[G_SENT] += 1
        if CFGF[DF_THINK] == 0.0:
            _defer(S, q)  # key (INJECT, q)
        else:
            _at(G, GF, CT, CA, CFGF[DF_THINK], ROUTE, T_THINK, q)


@njit(cache=True, inline="always")
def _finish(S, r, q, now, inst):
    RQ = S[0]
    RF = S[1]
    RK = S[2]
    IN = S[4]
    G = S[11]
    if RQ[q, Q_GEN] != RQ[q, Q_OUT]:
        G[G_ERR] = S_BUG
        G[G_ERRARG] = q
    _u_remove(RQ, RK, r, q)
    RK[r, K_COUNT] -= 1
    IN[inst, I_LOAD] -= 1
    RQ[q, Q_PHASE] = DONE
    RF[q, F_FIN] = now
    _source_finished(S, q)


@njit(cache=True, inline="always")
def _pop_finishes(S, inst, now, c):
    RQ = S[0]
    RK = S[2]
    DUE = S[3]
    IN = S[4]
    HEAP = S[6]
    CFG = S[13]
    bs = CFG[D_BS]
    HK = HEAP[inst]
    while IN[inst, I_HLEN] > 0 and HK[0, 0] <= c:
        seq = HK[0, 1]
        q = HK[0, 2]
        _hpop(IN, HEAP, inst)
        if RQ[q, Q_PHASE] != DECODE or RQ[q, Q_SEQ] != seq:
            continue
        r = RQ[q, Q_RANK]
        kv = _stop_decode(RQ, RK, DUE, bs, r, q, c)
        RK[r, K_FREE] += _blocks_for(kv, bs)
        _changed(RK, r)
        _finish(S, r, q, now, inst)


@njit(cache=True, inline="always")
def _end_step(S, inst):
    RQ = S[0]
    RF = S[1]
    RK = S[2]
    DUE = S[3]
    IN = S[4]
    HEAP = S[6]
    CH = S[7]
    GF = S[12]
    CFG = S[13]
    IC = S[32]
    now = GF[GF_NOW]
    c = IN[inst, I_C] + 1
    IN[inst, I_C] = c
    IN[inst, I_STEPS] += 1
    bs = CFG[D_BS]
    prefill_only = IC[inst, IC_POOL] == 0 and CFG[D_ND] > 0  # no decode pool: aggregated serving
    n = CFG[D_N]
    for i in range(IN[inst, I_NCH]):
        r, q, chunk = CH[inst, i, 0], CH[inst, i, 1], CH[inst, i, 2]
        done = RQ[q, Q_PDONE] + chunk
        RQ[q, Q_PDONE] = done
        if done == RQ[q, Q_PTGT]:
            # Instance._prefill_complete
            g = RQ[q, Q_GEN] + 1
            RQ[q, Q_GEN] = g
            if RF[q, F_FIRST] < 0.0:
                RF[q, F_FIRST] = now
            if g >= RQ[q, Q_OUT]:
                RK[r, K_FREE] += RQ[q, Q_BLOCKS]
                _changed(RK, r)
                _finish(S, r, q, now, inst)
            elif prefill_only:  # hand over: the rank keeps the blocks until the transfer lands
                _u_remove(RQ, RK, r, q)
                RK[r, K_COUNT] -= 1
                IN[inst, I_LOAD] -= 1
                RQ[q, Q_PHASE] = HELD
                RF[q, F_PEND] = now  # _Disaggregated.prefilled
                _defer(S, n + q)  # key (TRANSFER, q)
            else:
                _start_decode(RQ, RK, DUE, IN, HEAP, bs, r, inst, q, RQ[q, Q_PTGT], g, c)
                _changed(RK, r)
    IN[inst, I_NCH] = 0
    _pop_finishes(S, inst, now, c)


@njit(cache=True, inline="always")
def _next(S, inst):
    """Instance._next after a step or stretch was applied: go idle, plan after this instant's other timers, or
    plan now (returns the instance to plan now, else -1; the caller plans, so that the planning code is
    inlined in one place, as in compiled._run)."""
    IN = S[4]
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    if not IN[inst, I_LOAD]:
        IN[inst, I_STATE] = IDLE
        return -1
    if G[G_CLEN] > 0 and CT[0] <= GF[GF_NOW]:
        IN[inst, I_STATE] = BETWEEN
        _at(G, GF, CT, CA, 0.0, SCHEDULE, T_PLAN, inst)
        return -1
    return inst


@njit(cache=True)
def _run(S, TOK0, GRP0, X0, TOK1, GRP1, X1):
    """Run timers until every request has finished (S_DONE), or until a planned step needs a table entry
    that is not there (S_MISS: the plan stays pending in G, the misses in MISS, for the pool of the
    instance G[G_PINST]), or the engine stalls."""
    IN = S[4]
    CT = S[9]
    CA = S[10]
    G = S[11]
    GF = S[12]
    CFG = S[13]
    CFGF = S[14]
    ARRIVALS = S[17]
    DEF = S[18]
    POPBUF = S[31]
    n_req = CFG[D_N]
    while True:
        # a plan made by the last timer's callback (or pending since a miss) is finished before anything
        # else, as Instance._on_plan does within the callback
        if G[G_PKIND] != PK_NONE:
            _finish_plan(S, TOK0, GRP0, X0, TOK1, GRP1, X1)
            if G[G_PKIND] != PK_NONE:
                return S_MISS
        if G[G_ERR]:
            return G[G_ERR]
        if G[G_REMAIN] <= 0:
            return S_DONE
        if G[G_CLEN] == 0:
            return S_STALL
        now = _pop(G, CT, CA, POPBUF)
        GF[GF_NOW] = now
        tid, kind, arg = POPBUF[1], POPBUF[2], POPBUF[3]
        G[G_TIMERS] += 1
        plan = -1
        if kind == T_PLAN:
            plan = arg
        elif kind == T_STEPEND:
            _end_step(S, arg)
            plan = _next(S, arg)
        elif kind == T_STRETCHEND:
            if tid != IN[arg, I_TIMER]:
                continue  # superseded by a cut
            IN[arg, I_TIMER] = -1
            n, c = IN[arg, I_N], IN[arg, I_C]
            IN[arg, I_C] = c + n
            IN[arg, I_STEPS] += n
            _pop_finishes(S, arg, now, c + n)
            plan = _next(S, arg)
        elif kind == T_DRAIN:
            _drained(S, tid, arg)
        elif kind == T_LAND:
            _landed(S, arg)
        elif kind == T_ARRIVE:
            i = G[G_NEXTARR]
            first = i
            n = ARRIVALS.shape[0]
            while i < n:
                t = ARRIVALS[i]
                if t > now and i > first:
                    _at(G, GF, CT, CA, t - now, ROUTE, T_ARRIVE, 0)
                    break
                while i < n and ARRIVALS[i] == t:
                    q = _new_request(S, t)
                    _route(S, q)
                    i += 1
            G[G_NEXTARR] = i
        elif kind == T_FLUSH:
            # Deferred._flush: the actions in key order, injections (key = id of the finished request) before
            # transfers (key = n + id); none of them defers another
            m = G[G_DEFN]
            G[G_DEFN] = 0
            G[G_ARMED] = 0
            if m > 1 and CFG[D_ND]:  # only injections without a decode pool: each creates the next request
                DEF[:m].sort()  # whatever its key, so their order changes nothing
            for j in range(m):
                key = DEF[j]
                if key < n_req:
                    _route(S, _new_request(S, now))
                else:
                    _start_transfer(S, key - n_req)
        elif kind == T_THINK:
            _defer(S, arg)
        else:  # T_START: the closed loop's clients send their first requests
            clients = CFG[D_CLIENTS]
            ramp = CFGF[DF_RAMP]
            done = False
            if G[G_STARTED] == 0:
                G[G_SENT] = clients
                if ramp <= 0.0:
                    G[G_STARTED] = clients
                    for _ in range(clients):
                        _route(S, _new_request(S, now))
                    done = True
            if not done:
                k = G[G_STARTED]
                G[G_STARTED] = k + 1
                _route(S, _new_request(S, now))
                if k + 1 < clients:
                    _at(G, GF, CT, CA, (k + 1) * ramp / clients - now, ROUTE, T_START, 0)
        if plan >= 0:
            _plan(S, plan)  # leaves the plan pending: finished at the top of the loop


# -- the driver ----------------------------------------------------------------------------------------------------


def _tables(sc) -> _Tables:
    tables = _TABLES.get(sc)
    if tables is None:
        tables = _TABLES[sc] = _Tables(sc)
    return tables


def _pool_tables(tables: _Tables) -> tuple:
    """A pool's tables as the kernel takes them: ``TOK, GRP, (CX, LN, LA, LB)``. The typed dicts go as
    arguments of their own: numba types a tuple of arrays in C from its fingerprint, but a tuple holding a
    typed dict in Python (~0.3 ms a call, paid at every table miss)."""
    return tables.tok, tables.grp, (tables.cx, tables.lines_n, tables.lines_a, tables.lines_b)


def simulate_aggregated(cost, num_instances: int, inputs: np.ndarray, outputs: np.ndarray, arrivals, closed_loop, *,
                        max_batch_tokens: int, max_seqs: int, block_size: int, round_robin: bool):
    """Run aggregated serving in the kernel: ``num_instances`` instances of one pool that prefill and decode
    (the kernel with no decode pool). Returns (request columns, sim_end_s, steps, timers); raises
    :class:`.compiled.Unsupported` when the run needs something the kernel does not mirror."""
    cols, end_s, steps, timers = simulate(cost, num_instances, cost, 0, inputs, outputs, arrivals, closed_loop,
                                          prefill_batching=(max_batch_tokens, max_seqs),
                                          decode_batching=(max_batch_tokens, max_seqs), block_size=block_size,
                                          round_robin=round_robin, link=(1.0, 1.0, 0.0), kv_bytes_per_token=0.0,
                                          state_bytes_per_seq=0.0)
    del cols["prefill_instance"], cols["kv_transfer_s"]
    return cols, end_s, steps, timers


def simulate(prefill, num_prefill: int, decode, num_decode: int, inputs: np.ndarray, outputs: np.ndarray, arrivals,
             closed_loop, *, prefill_batching: tuple[int, int], decode_batching: tuple[int, int], block_size: int,
             round_robin: bool, link: tuple[float, float, float], kv_bytes_per_token: float,
             state_bytes_per_seq: float):
    """Run the disaggregated simulation in the kernel (``num_decode = 0``: aggregated serving on the prefill
    pool's instances, :func:`simulate_aggregated`). Returns (request columns, sim_end_s, steps, timers).

    ``link``: the Link's ``(bandwidth, cap, latency)`` as :class:`.disaggregated.Link` holds them (bandwidth
    and cap already defaulted and capped). The caller has checked that both step costs are supported
    (:func:`.compiled.supported`). Raises :class:`.compiled.Unsupported` when the run needs something the
    kernel does not mirror.
    """
    compiled.notify_if_cold(_run)
    scs = (prefill.step_cost, decode.step_cost)
    pools = []
    for cost, count, (max_tokens, max_seqs), sc in ((prefill, num_prefill, prefill_batching, scs[0]),
                                                    (decode, num_decode, decode_batching, scs[1])):
        seats = int(max_seqs if cost.max_seqs_by_memory is None else min(max_seqs, cost.max_seqs_by_memory))
        pools.append((int(count), int(cost.dp), seats, int(max_tokens), int(cost.kv_capacity_tokens), sc._overhead,
                      sc._idle_s))
    tabs = [_tables(sc) for sc in scs]
    for t, pool in zip(tabs, pools):  # decodes per rank never exceed its seats
        t.ensure_lines(pool[2])
    T0, T1 = _pool_tables(tabs[0]), _pool_tables(tabs[1])  # after both: one table set may serve both pools
    state = _state(pools, int(block_size), inputs, outputs, arrivals, closed_loop, round_robin, link,
                   kv_bytes_per_token, state_bytes_per_seq)
    RQ, RF, IN, G, GF, MISS, IC = state[0], state[1], state[4], state[11], state[12], state[25], state[32]
    args = (state, *T0, *T1)
    run = _run
    while True:  # each pass runs until done or until a planned step misses a table entry, which _fill adds
        if run is _run:
            try:  # the first call compiles the kernel, or loads it from numba's cache
                status = run(*args)
            except NumbaError as exc:  # a platform numba cannot compile for: the Python engine runs it
                raise compiled.Unsupported(f"numba could not compile the engine ({type(exc).__name__})") from exc
        else:
            status = run(*args)
        if status == S_DONE:
            break
        if status == S_MISS:
            p = int(IC[G[G_PINST], IC_POOL])
            _fill(scs[p], tabs[p], MISS[: G[G_MISSN]])
            if run is _run:
                run = _machine_code(_run, args)
            continue
        if status == S_STALL:
            raise RuntimeError(f"engine stalled at t={GF[0]:.6g} s with {int(G[G_REMAIN])} request(s) unfinished "
                               "and no timer left")
        if status == S_BUG:
            q = int(G[G_ERRARG])
            raise RuntimeError(f"engine bug: request {q} finished with {int(RQ[q, Q_GEN])} of "
                               f"{int(RQ[q, Q_OUT])} tokens")
        raise RuntimeError(f"compiled engine: internal table full (status {status})")
    cols = {
        "arrival_s": RF[:, F_ARR], "first_token_s": RF[:, F_FIRST], "finish_s": RF[:, F_FIN],
        "input_tokens": RQ[:, Q_IN], "output_tokens": RQ[:, Q_OUT], "preemptions": RQ[:, Q_PRE],
        "instance": RQ[:, Q_INST], "prefill_instance": RQ[:, Q_PINST], "kv_transfer_s": RF[:, F_KVT],
    }
    return cols, float(GF[0]), int(IN[:, I_STEPS].sum()), int(G[G_TIMERS])


def _machine_code(dispatcher, args: tuple):
    """The compiled function ``dispatcher`` runs for ``args``, to call without the dispatcher.

    The dispatcher types every argument on every call: about 12 us for the kernel's state of 38 arrays, which a
    point with cold side tables pays at every miss (thousands of times on a cold KV-pressure point: a third of
    its kernel time). The arguments of one run keep their types (the same arrays and tables throughout), so
    they are typed once here. Falls back to the dispatcher where numba's internals differ."""
    try:
        from numba import typeof

        return dispatcher.overloads[tuple(typeof(a) for a in args)].entry_point
    except Exception:  # pragma: no cover - numba internals moved
        return dispatcher


def _state(pools, bs, inputs, outputs, arrivals, closed_loop, round_robin, link, kv_bytes_per_token,
           state_bytes_per_seq) -> tuple:
    """The kernel's state arrays, the first timer (the source's) set. ``pools``: per pool (prefill, decode)
    ``(instances, dp, seats, max_batch_tokens, KV capacity tokens per rank, step overhead s, idle rank s)``."""
    n = int(inputs.shape[0])
    npre, ndec = pools[0][0], pools[1][0]
    ni = npre + ndec
    dps = [pool[1] for pool in pools]
    seats = [pool[2] for pool in pools]
    IC = np.zeros((ni, NIC), np.int64)
    ICF = np.zeros((ni, 2))
    RK = np.zeros((sum(pool[0] * pool[1] for pool in pools), NK), np.int64)
    r0 = 0
    for i in range(ni):
        p = 0 if i < npre else 1
        _, dp, s, max_tokens, kv_tokens, overhead_s, idle_s = pools[p]
        IC[i] = (dp, r0, s, max_tokens, p)
        ICF[i] = (overhead_s, idle_s)
        RK[r0:r0 + dp, K_FREE] = kv_tokens // bs
        r0 += dp
    dmax, dpmax = max(seats), max(dps)

    RQ = np.zeros((n, NQD), np.int64)
    RQ[:, Q_RANK] = -1
    RQ[:, Q_SEQ] = -1
    RQ[:, Q_INST] = -1
    RQ[:, Q_WNEXT:NQ] = -1
    RQ[:, Q_PINST] = -1
    RF = np.full((n, NFD), -1.0)
    RF[:, F_KVT] = 0.0
    RK[:, K_RUNS] = RUNS_INF
    RK[:, K_WHEAD] = RK[:, K_WTAIL] = RK[:, K_UHEAD] = RK[:, K_UTAIL] = RK[:, K_PARTIAL] = -1
    DUE = np.zeros((r0, bs), np.int64)
    IN = np.zeros((ni, NI_), np.int64)
    IN[:, I_TIMER] = -1
    IN[:, I_IHEAD] = IN[:, I_ITAIL] = -1
    INF = np.zeros((ni, 2))
    # only the instances that decode push finishes (a prefill-only instance hands its prefills over); in
    # aggregated serving (no decode pool) those are pool 0's
    dec = 1 if ndec else 0
    HEAP = np.zeros((ni, min(dps[dec] * seats[dec], n) + 1, 3), np.int64)
    CH = np.zeros((ni, max(min(d * (s + 1), n + d) for d, s in zip(dps, seats)) + 1, 3), np.int64)
    smax = dpmax * LMAX + 1
    SEG = np.zeros((ni, smax, 3))
    # live timers, at most: an arrival or think timer and a landing per request, a cut stretch's timer per
    # submit (two per request), a link's drain timer per start and per drain (superseded ones stay until they
    # fire), a few per instance (a full heap stops the run with an error, never silently)
    cap = 6 * n + 16 * ni + 64
    CT = np.zeros(cap)
    CA = np.zeros((cap, 4), np.int64)
    G = np.zeros(NGD, np.int64)
    G[G_REMAIN] = n
    GF = np.zeros(1)
    CFG = np.zeros(ND_, np.int64)
    CFG[D_N], CFG[D_NP], CFG[D_ND], CFG[D_BS], CFG[D_RR] = n, npre, ndec, bs, int(round_robin)
    CFGF = np.zeros(NDF)
    CFGF[DF_BW], CFGF[DF_CAP], CFGF[DF_LAT] = link
    CFGF[DF_KVB], CFGF[DF_SBS] = float(kv_bytes_per_token), float(state_bytes_per_seq)
    INPUTS = np.array(inputs, dtype=np.int64)
    OUTPUTS = np.array(outputs, dtype=np.int64)
    if closed_loop is not None:
        CFG[D_CLOSED] = 1
        CFG[D_CLIENTS] = min(int(closed_loop.concurrency), n)
        CFGF[DF_THINK] = float(closed_loop.think_time_s)
        CFGF[DF_RAMP] = float(getattr(closed_loop, "ramp_s", 0.0))
        ARRIVALS = np.zeros(0)
        first = (0.0, T_START)
    else:
        ARRIVALS = np.array(arrivals, dtype=np.float64)  # a writable copy: numba types read-only arrays apart
        first = (max(float(ARRIVALS[0]), 0.0) if ARRIVALS.size else 0.0, T_ARRIVE)
    DEF = np.zeros(2 * n + 1, np.int64)
    FED = np.zeros(n + 1, np.int64)
    BUF = np.zeros(dmax + 1, np.int64)
    PMOST = np.full(dmax + 1, -1, np.int64)
    PMD = np.zeros(dmax + 1, np.int64)
    PCH = np.zeros((dpmax + 1, 4), np.int64)
    PCHF = np.zeros(dpmax + 1)
    MISS = np.zeros((dmax + dpmax + 8, 4), np.int64)
    TA, TB, LNA, LNB = np.zeros(smax), np.zeros(smax), np.zeros(smax), np.zeros(smax)
    FEAT = np.zeros(7)
    POPBUF = np.zeros(4, np.int64)
    LI = np.zeros((ndec, 3), np.int64)
    LI[:, L_ARMED] = -1
    LF = np.zeros((ndec, 2))
    LHT = np.zeros((ndec, n + 1))
    LHQ = np.zeros((ndec, n + 1, 2), np.int64)
    _at(G, GF, CT, CA, first[0], ROUTE, first[1], 0)
    return (RQ, RF, RK, DUE, IN, INF, HEAP, CH, SEG, CT, CA, G, GF, CFG, CFGF, INPUTS, OUTPUTS, ARRIVALS, DEF, FED,
            BUF, PMOST, PMD, PCH, PCHF, MISS, TA, TB, LNA, LNB, FEAT, POPBUF, IC, ICF, LI, LF, LHT, LHQ)


def warm_up() -> float:
    """Compile the kernel, or load it from numba's on-disk cache, now; returns the seconds it took.

    A sweep calls this once in the driver before its workers start, so that on a machine where the cache is
    cold the kernel is compiled once (about 30 s) rather than by every worker at once; the workers then load
    it from the cache (well under a second each)."""
    import time

    t0 = time.perf_counter()
    if AVAILABLE:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
        cx = (empty_i, empty_f, np.zeros(1, np.int64), empty_i, empty_f, np.zeros(1, np.int64), empty_i, empty_f,
              np.zeros(NGP), np.zeros(1))
        tok = _new_table()
        _table_put(tok, 0, 0.0)
        t = (tok, _new_table(), (cx, np.full(2, -1, np.int64), np.zeros((2, LMAX)), np.zeros((2, LMAX))))
        pool = (1, 1, 1, 16, 16, 0.0, 0.0)
        state = _state([pool, pool], 1, np.ones(1, np.int64), np.ones(1, np.int64), np.zeros(1), None, False,
                       (1.0, 1.0, 0.0), 0.0, 0.0)
        state[11][G_REMAIN] = 0  # nothing to run: the call only compiles or loads
        _run(state, *t, *t)
    return time.perf_counter() - t0


def cache_is_warm() -> bool:
    """Whether numba's on-disk cache already holds the kernel (a best guess: its index file exists)."""
    return compiled.cache_is_warm(_run)

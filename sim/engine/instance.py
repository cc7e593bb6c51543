"""One serving instance: ``dp`` attention-DP ranks stepping together, driven by timers of the engine's clock.

An engine step batches work on every rank (:meth:`.scheduler.Rank.plan_step`) and lasts
``step_cost.step_time(loads)``: the ranks synchronise at every MoE layer, so the cost model charges the
slowest rank. The instance's life is a loop:

* **plan** (in the :data:`~.clock.SCHEDULE` phase): move the inbox into the ranks' queues, then either
  start a *decode stretch* or plan a single step; with nothing to do, sleep until a request comes;
* **wait** for the step or stretch to end (:data:`~.clock.COMPLETE` phase) and apply it: tokens,
  finished prefills, finished requests.

Decode stretches
----------------
When no rank has a prefill chunk to run or a waiting request it could admit, every step until the next
change is a pure decode step whose batch is fixed: rank ``r`` runs ``d_r`` decodes attending ``k_r + j d_r``
tokens of context at the ``j``-th step. The cost model sums such steps in closed form
(:class:`~latentmoe_sim.cost.stretch.DecodeStretch`), so the instance advances the whole run of steps as ONE
event. The stretch ends at the first of

(a) a request emitting its last token (the smallest remaining count, from a heap),
(b) a step at which some rank would need more KV blocks than it has free (:attr:`.kvcache.KVPool.runs_out`;
    that step is then run on its own, with preemption),
(c) an external event: a request routed to this instance (or a KV transfer landing). The stretch is cut
    to the steps that have started by then (:meth:`DecodeStretch.steps_within`): the request joins at the next step
    boundary, exactly as it would step by step.

Nothing else can change a pure-decode batch: admission cannot become possible while no request leaves
(free blocks only shrink, seats and budget stay), so the stretch is the same sequence of steps that the
step-by-step loop (``step_by_step=True``) would run, and its duration is their exact sum.
"""

from __future__ import annotations

import math
from heapq import heappop
from operator import attrgetter, itemgetter

from latentmoe_sim.cost.base import InstanceCost, RankLoad

from .clock import COMPLETE, SCHEDULE, Clock
from .kvcache import blocks_for
from .request import DECODE, DONE, HELD, Request
from .scheduler import Rank

# states of an instance's process
IDLE, STEP, STRETCH, BETWEEN = range(4)

_EMPTY = RankLoad()
_UNKNOWN = -math.inf  # KVPool.runs_out not known
_by_count = attrgetter("count")
_by_time_then_id = itemgetter(0, 1)


class Instance:
    """A serving instance (aggregated, or one side of a disaggregated pair).

    ``sim`` receives ``finished(request)`` when a request emits its last token and, for a prefill-only
    instance, ``prefilled(request, instance, rank)`` when a prompt's prefill completes (its KV blocks stay
    reserved until :meth:`release` is called).
    """

    def __init__(
        self,
        clock: Clock,
        index: int,
        cost: InstanceCost,
        sim,
        *,
        max_batch_tokens: int,
        max_seqs: int,
        block_size: int,
        prefill_only: bool = False,
        step_by_step: bool = False,
        adp_balance_iters: int | None = None,
    ):
        self.clock = clock
        self.id = index
        self.step_cost = cost.step_cost
        self.num_gpus = cost.num_gpus
        self.sim = sim
        self.block_size = block_size
        self.prefill_only = prefill_only
        self.step_by_step = step_by_step
        seats = max_seqs if cost.max_seqs_by_memory is None else min(max_seqs, cost.max_seqs_by_memory)
        self.ranks = [Rank(r, cost.kv_capacity_tokens, block_size, max_batch_tokens, seats) for r in range(cost.dp)]
        #: requests routed here and not yet gone (finished, or handed to a decode instance): the router's load
        self.load = 0
        #: engine steps run (a stretch of n steps counts n)
        self.steps = 0
        self.c = 0  # step counter: every running decode advances by one per step
        self._heap: list = []  # (counter at which it emits its last token, admission seq, request)
        self._seq = [0]  # admission counter (a list so that ranks can bump it)
        self._inbox: list = []  # (time, request id, request) routed here since the last plan
        self._chunks: list = []  # (rank, request, chunk) of the step in flight
        self._state = IDLE  # nothing to do until a request is submitted
        self._timer: int | None = None  # id of the live timer of the stretch in flight
        self._dt = 0.0
        self._stretch = None
        #: the step cost takes a step's summary instead of a load per rank (CompiledStepCost with roofline
        #: costs): the engine gathers the summary in its own pass over the ranks (the reference mode,
        #: step_by_step, always builds every rank's load)
        self._grouped = bool(getattr(self.step_cost, "grouped", False)) and not step_by_step
        self._partial_left = False  # the last single step left a prefill split across steps
        self._most: dict[int, int] = {}  # decode count -> largest attended KV at a stretch's first step
        self._total = self._busiest = 0  # decodes of all ranks and of the busiest rank in that stretch
        self._seqs: list[int] = []  # decodes per rank at the start of a stretch
        self._kvs: list[int] = []  # attended context per rank at its first step
        self._t0 = self._end = 0.0
        self._n = 0
        #: attention-DP balance (TensorRT-LLM ``attention_dp_config.enable_balance`` with ``timeout_iters``):
        #: new prefills start only in an iteration where every rank can start one, or once the iteration
        #: counter since the last release reaches the timeout, or when some rank has no decodes
        #: (:meth:`_adp_hold`); None: off. Only for aggregated instances of more than one rank.
        self._adp_T = adp_balance_iters if adp_balance_iters and cost.dp > 1 and not prefill_only else None
        self._adp_cnt = 0  # TensorRT-LLM's adp_ctx_waiting_iters_count
        self._adp_allgen = False  # every rank decoding during the stretch in flight

    # -- from outside ----------------------------------------------------------------------------------------

    def submit(self, req: Request) -> None:
        """A request routed to this instance now; it joins a rank at the next step boundary."""
        self._inbox.append((self.clock.now, req.id, req))
        state = self._state
        if state == IDLE:
            self._wake_up()
        elif state == STRETCH:
            self._cut()

    def release(self, rank: Rank, blocks: int) -> None:
        """Free ``blocks`` KV blocks that a finished prefill held on ``rank`` (its KV has left)."""
        rank.kv.free += blocks
        rank.changed()
        if self._state == IDLE and rank.waiting:
            self._wake_up()

    def _wake_up(self) -> None:
        self._state = BETWEEN
        self.clock.at(0.0, SCHEDULE, self._on_plan)

    def _cut(self) -> None:
        """Shorten the running stretch to the steps started by now (the new request joins after them).

        The stretch's timer is superseded by one at the new end (the old one fires and is ignored, which is
        cheaper than interrupting a process)."""
        now, t0, st, n = self.clock.now, self._t0, self._stretch, self._n
        k = st.steps_within(now - t0, n)
        if t0 + st.elapsed(k) < now:
            k += 1  # keep the step in progress at `now`
        if k < n:
            self._n = k
            end = self._end = t0 + st.elapsed(k)
            self._timer = self.clock.at(max(end - now, 0.0), COMPLETE, self._on_stretch_end)

    # -- the life of the instance: plan, run a step or a stretch, apply it, plan again ---------------------------
    # Written as timer callbacks rather than a coroutine: no generator to resume per step, and a cut stretch
    # only sets a new timer.

    def _on_plan(self, _event=None) -> None:
        kind = self._plan()
        if kind == IDLE:
            self._state = IDLE  # submit() or release() wakes it
        elif kind == STEP:
            self._state = STEP
            self.clock.at(self._dt, COMPLETE, self._on_step_end)
        else:
            self._state = STRETCH
            self._timer = self.clock.at(self._end - self.clock.now, COMPLETE, self._on_stretch_end)

    def _on_step_end(self, _event) -> None:
        self._end_step()
        self._next()

    def _on_stretch_end(self, timer: int) -> None:
        if timer != self._timer:
            return  # superseded by a cut
        self._timer = None
        self._end_stretch()
        self._next()

    def _next(self) -> None:
        if not self.load:  # no request here (none waiting, running or on its way): nothing to plan until
            self._state = IDLE  # submit() or release() wakes the instance, which plans in phase SCHEDULE
            return
        clock = self.clock
        if clock.peek() <= clock.now:  # more may happen at this instant: plan after it (phase SCHEDULE)
            self._state = BETWEEN
            clock.at(0.0, SCHEDULE, self._on_plan)
        else:
            self._on_plan()

    # -- attention-DP balance ----------------------------------------------------------------------------------

    def _adp_state(self, c: int) -> tuple[bool, bool, bool]:
        """(every rank can start a prefill now, some rank can, every rank is decoding) at counter ``c``; a
        rank with a prefill split across steps counts as starting one (TensorRT-LLM counts its chunk as a
        context request)."""
        every, some, allgen = True, False, True
        for rank in self.ranks:
            nd = rank.n_dec
            if not nd:
                allgen = False
            ready = rank.partial is not None
            if not ready and rank.waiting and not rank.blocked:
                kv = rank.kv
                if nd:
                    kv.sync(c, nd)
                    ready = rank.head_fits(kv.free - kv.due[c % kv.block_size])
                else:
                    ready = rank.head_fits(kv.free)
            if ready:
                some = True
            else:
                every = False
        return every, some, allgen

    def _adp_hold(self, every: bool, some: bool, allgen: bool) -> bool:
        """One iteration of TensorRT-LLM's attention-DP balance (``PyExecutor._balance_adp_requests``) on the
        ranks' :meth:`_adp_state`: context requests proceed when every rank has one (counter reset); otherwise
        the counter advances and they are held, unless it reached ``timeout_iters`` or some rank has no
        generation requests (then they proceed and the counter resets). Returns whether a ready prefill is
        held in this iteration."""
        if every:
            self._adp_cnt = 0
            return False
        cnt = self._adp_cnt + 1
        if cnt >= self._adp_T or not allgen:
            self._adp_cnt = 0
            return False
        self._adp_cnt = cnt
        return some

    def _plan(self) -> int:
        c = self.c
        admits = self._inbox and self._drain_inbox(c)
        ranks = self.ranks
        # attention-DP balance: a stretch may run while ready prefills are held, up to the iteration whose
        # counter reaches the timeout (that one releases them: a single step)
        held = cap = 0
        adp = self._adp_T is not None
        if adp:
            # planning a stretch changes no rank's readiness (it only drops stale heap entries and brings
            # the pools' free blocks up to counter c), so this state also serves a single step's _adp_hold
            every, some, allgen = self._adp_state(c)
            if some and not every and allgen:
                held = True
                cap = self._adp_T - 1 - self._adp_cnt
        # A stretch is impossible while a prefill is split across steps (only plan_step, in a single step,
        # continues or clears it) or when a rank just fed a request can admit it: skip the pass over the ranks.
        if not self.step_by_step and self._heap and not self._partial_left and not (admits and not held) \
                and not (held and cap < 2):
            n = self._stretch_steps(c, held)
            if held and n > cap:
                n = cap
            if n >= 2:
                if adp:
                    self._adp_allgen = allgen
                if self._grouped:
                    st = self.step_cost.decode_stretch_grouped(self._most, self._total, self._busiest)
                else:
                    st = self.step_cost.decode_stretch(self._seqs, self._kvs)
                self._stretch = st
                self._t0 = now = self.clock.now
                self._n = n
                self._end = now + st.elapsed(n)
                return STRETCH
        hold = adp and self._adp_hold(every, some, allgen)
        if self._grouped:
            return self._plan_step_grouped(c, hold)
        chunks = self._chunks = []
        loads = []
        busy = partial_left = False
        eager = self.step_by_step  # the reference: every busy rank plans every step and takes its blocks now
        for rank in ranks:
            nd = rank.n_dec
            if rank.partial is None and (not rank.waiting or hold or (rank.blocked and not eager)):
                # nothing to admit: an idle rank, or one that only decodes
                if not nd:
                    loads.append(_EMPTY)
                    continue
                if c < rank.kv.runs_out and not eager:  # its decode blocks are there (taken lazily; an
                    # unknown runs_out, -inf, sends the rank through plan_step, which recomputes it)
                    busy = True
                    loads.append(RankLoad(0, 0.0, 0, nd, rank.kv_off + nd * (c + 1)))
                    continue
            tokens, pairs, ctx = rank.plan_step(c, self._seq, self._heap, chunks, not hold)
            if rank.partial is not None:
                partial_left = True
            if rank.seated:
                self._deliver_seated(rank)
            nd = rank.n_dec
            if nd:
                busy = True
                loads.append(RankLoad(tokens, pairs, ctx, nd, rank.kv_off + nd * (c + 1)))
            elif tokens:
                busy = True
                loads.append(RankLoad(tokens, pairs, ctx, 0, 0))
            else:
                loads.append(_EMPTY)
        self._partial_left = partial_left
        if not busy:
            return IDLE
        self._dt = self.step_cost.step_time(loads)
        return STEP

    def _deliver_seated(self, rank) -> None:
        """Requests whose transferred KV was seated by this step's planning get their first token now
        (the wait for a decode seat counts in TTFT, as in aggregated mode: docs/ENGINE.md)."""
        now = self.clock.now
        for req in rank.seated:
            req.first_token_s = now
        rank.seated.clear()

    def _plan_step_grouped(self, c: int, hold: bool = False) -> int:
        """:meth:`_plan`'s single step when the step cost takes the step's summary
        (``step_time_grouped``): the same planning, but a decode-only rank only updates the largest KV of
        its decode count and the token totals, without a load of its own."""
        chunks = self._chunks = []
        loaded: list[RankLoad] = []  # ranks with a prefill chunk
        most: dict[int, int] = {}
        total = busiest = 0
        busy = idle = partial_left = False
        for rank in self.ranks:
            nd = rank.n_dec
            if rank.partial is None and (not rank.waiting or hold or rank.blocked):
                if not nd:
                    idle = True
                    continue
                if c < rank.kv.runs_out:  # decodes only, blocks there (see _plan)
                    busy = True
                    kv = rank.kv_off + nd * (c + 1)
                    if kv > most.get(nd, -1):
                        most[nd] = kv
                    total += nd
                    if nd > busiest:
                        busiest = nd
                    continue
            tokens, pairs, ctx = rank.plan_step(c, self._seq, self._heap, chunks, not hold)
            if rank.partial is not None:
                partial_left = True
            if rank.seated:
                self._deliver_seated(rank)
            nd = rank.n_dec
            t = tokens + nd
            total += t
            if t > busiest:
                busiest = t
            if tokens:
                busy = True
                loaded.append(RankLoad(tokens, pairs, ctx, nd, rank.kv_off + nd * (c + 1) if nd else 0))
            elif nd:
                busy = True
                kv = rank.kv_off + nd * (c + 1)
                if kv > most.get(nd, -1):
                    most[nd] = kv
            else:
                idle = True
        self._partial_left = partial_left
        if not busy:
            return IDLE
        self._dt = self.step_cost.step_time_grouped(most, loaded, idle, total, busiest)
        return STEP

    def _drain_inbox(self, c: int) -> bool:
        """Move the requests routed here into the ranks' queues; return whether a rank that got one could
        admit the head of its queue at counter ``c`` (then no stretch can start)."""
        inbox = self._inbox
        if len(inbox) > 1:
            inbox.sort(key=_by_time_then_id)
        ranks = self.ranks
        fed = []
        for _t, _id, req in inbox:
            rank = ranks[0] if len(ranks) == 1 else min(ranks, key=_by_count)
            rank.count += 1
            req.rank = rank
            rank.waiting.append(req)
            fed.append(rank)
        inbox.clear()
        for rank in fed:
            if not rank.blocked:
                kv, nd = rank.kv, rank.n_dec
                if nd:
                    kv.sync(c, nd)
                    if rank.head_fits(kv.free - kv.due[c % kv.block_size]):
                        return True
                elif rank.head_fits(kv.free):
                    return True
        return False

    def _stretch_steps(self, c: int, held: bool = False) -> int:
        """Steps of pure decode that can be advanced at once from counter ``c`` (0 or 1: none); ``held``: the
        ranks' ready prefills are held (attention-DP balance), so a rank that could admit does not end it.

        Also leaves each rank's decodes and attended context at step 0 in ``_seqs`` and ``_kvs``.
        """
        heap = self._heap
        while heap:
            _, seq, req = heap[0]
            if req.phase == DECODE and req.admit_seq == seq:
                break
            heappop(heap)  # stale: the request was preempted
        if not heap:
            return 0
        n = heap[0][0] - c  # (a) steps until the next request emits its last token
        if n < 2:
            return 0
        if self._grouped:
            return self._stretch_summary(c, n, held)
        seqs, kvs = self._seqs, self._kvs = [], []  # fresh lists: the step cost may keep them
        for rank in self.ranks:
            nd = rank.n_dec
            if rank.partial is not None:
                return 0
            if nd:
                kv = rank.kv
                if kv.runs_out == _UNKNOWN:
                    kv.refresh(nd)
                fit = kv.runs_out - c  # (b) steps before the pool runs out
                if fit < n:
                    if fit < 2:
                        return 0
                    n = fit
                if rank.waiting and not rank.blocked and not held:
                    kv.sync(c, nd)
                    if rank.head_fits(kv.free - kv.due[c % kv.block_size]):
                        return 0
                seqs.append(nd)
                kvs.append(rank.kv_off + nd * (c + 1))
            else:
                if rank.waiting and not rank.blocked and not held and rank.head_fits(rank.kv.free):
                    return 0
                seqs.append(0)
                kvs.append(0)
        return n

    def _stretch_summary(self, c: int, n: int, held: bool = False) -> int:
        """:meth:`_stretch_steps` over the ranks when the step cost takes a summary: leaves the largest
        attended KV at step 0 per decode count in ``_most`` and the decodes of all ranks and of the busiest
        in ``_total`` and ``_busiest``. No rank has a split prefill here: a rank with one is planned at every
        single step, which sets ``_partial_left``, and :meth:`_plan` tries no stretch while it is set."""
        most: dict[int, int] = {}
        get = most.get
        total = busiest = 0
        c1 = c + 1
        for rank in self.ranks:
            nd = rank.n_dec
            if nd:
                kv = rank.kv
                fit = kv.runs_out - c  # (b) steps before the pool runs out
                if fit < n:
                    if fit == _UNKNOWN:
                        kv.refresh(nd)
                        fit = kv.runs_out - c
                    if fit < n:
                        if fit < 2:
                            return 0
                        n = fit
                if rank.waiting and not rank.blocked and not held:
                    kv.sync(c, nd)
                    if rank.head_fits(kv.free - kv.due[c % kv.block_size]):
                        return 0
                k = rank.kv_off + nd * c1
                if k > get(nd, -1):
                    most[nd] = k
                total += nd
                if nd > busiest:
                    busiest = nd
            elif rank.waiting and not rank.blocked and not held and rank.head_fits(rank.kv.free):
                return 0
        self._most, self._total, self._busiest = most, total, busiest
        return n

    # -- applying a step or a stretch --------------------------------------------------------------------------

    def _end_step(self) -> None:
        now = self.clock.now
        c = self.c = self.c + 1
        self.steps += 1
        for rank, req, chunk in self._chunks:
            done = req.prefill_done = req.prefill_done + chunk
            if done == req.prefill_target:
                self._prefill_complete(rank, req, now, c)
        self._chunks = []
        self._pop_finishes(now, c)

    def _end_stretch(self) -> None:
        n, c = self._n, self.c  # the ranks take the decode blocks of these steps lazily (KVPool.sync)
        if self._adp_T is not None:
            # n iterations in which no rank could start a prefill, or ready ones were held (the stretch was
            # capped before the releasing iteration): the counter wraps at the timeout, stays 0 with an idle rank
            self._adp_cnt = (self._adp_cnt + n) % self._adp_T if self._adp_allgen else 0
        self.c = c + n
        self.steps += n
        self._stretch = None
        self._pop_finishes(self.clock.now, c + n)

    def _prefill_complete(self, rank: Rank, req: Request, now: float, c: int) -> None:
        g = req.generated = req.generated + 1  # the prefill emits one token
        if req.first_token_s < 0.0:
            req.first_token_s = now
        if g >= req.output_tokens:
            rank.kv.free += req.blocks
            rank.changed()
            self._finish(rank, req, now)
        elif self.prefill_only:
            del rank.running[req]
            rank.count -= 1
            self.load -= 1
            req.phase = HELD
            self.sim.prefilled(req, self, rank)
        else:
            rank.start_decode(req, req.prefill_target, g, c, self._heap)
            rank.changed()

    def _pop_finishes(self, now: float, c: int) -> None:
        heap, bs = self._heap, self.block_size
        while heap and heap[0][0] <= c:
            _, seq, req = heappop(heap)
            if req.phase != DECODE or req.admit_seq != seq:
                continue  # stale entry of a preempted request
            rank = req.rank
            kv = rank.stop_decode(req, c)  # first: it takes the blocks owed up to c from kv.free
            rank.kv.free += blocks_for(kv, bs)
            rank.changed()
            self._finish(rank, req, now)

    def _finish(self, rank: Rank, req: Request, now: float) -> None:
        if req.generated != req.output_tokens:  # cheap guard on the token accounting
            raise RuntimeError(
                f"engine bug: request {req.id} finished with {req.generated} of {req.output_tokens} tokens"
            )
        del rank.running[req]
        rank.count -= 1
        self.load -= 1
        req.phase = DONE
        req.finish_s = now
        self.sim.finished(req)

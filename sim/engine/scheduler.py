"""Chunked-prefill piggybacking on one attention-DP rank (Sarathi-Serve's stall-free batching, vLLM V1).

A rank has a FCFS waiting queue, a running set in admission order and a :class:`~.kvcache.KVPool`. Each
engine step, :meth:`Rank.plan_step` fills the batch under a token budget (``max_batch_tokens``) and a
sequence cap (``max_seqs``):

1. **Running decodes first**, one token each. A decode whose KV fills its last block takes a new one; if
   none is free, the most recently admitted running request is preempted (recompute: its blocks are
   freed and it goes to the *front* of the waiting queue), repeatedly, until the block is found or the
   request has preempted itself. Older requests thus always progress (vLLM V1's policy).
2. **The partially prefilled request** (at most one per rank) continues with a chunk of
   ``min(remaining prompt, leftover budget)`` tokens.
3. **New requests, FCFS**, while budget and seats remain and the head of the queue fits: its prompt's
   blocks are reserved at admission (``ceil((P + g) / block_size)``; a preempted request re-prefills its
   prompt and the ``g`` tokens it had generated), and its first chunk takes what is left of the budget.
   The queue is strictly FCFS: if the head does not fit, nobody behind it is admitted. No new request is
   admitted in a step in which the rank preempted (vLLM V1), unless the rank was left with nothing to run.

A request that arrives with its KV already computed (disaggregated decode) has nothing to prefill: it is
admitted as a decode, reserves ``ceil((P + 1) / block_size)`` blocks and takes one token of budget.

Decodes are kept as aggregates, not visited per step: the instance's step counter ``c`` advances once per
step, a decode's generated count and KV are ``g_base + c - c_base`` and ``kv_base + c - c_base``, the
rank keeps ``n_dec`` and ``kv_off = sum(kv_base - c_base)``, and the step's attended context is
``kv_off + n_dec * (c + 1)``. Finishes come from the instance's heap keyed by the counter value at which
each decode emits its last token.
"""

from __future__ import annotations

import math
from collections import deque
from heapq import heappush
from operator import attrgetter

from .kvcache import KVPool, blocks_for
from .request import DECODE, PREFILL, WAITING, Request

_by_admission = attrgetter("admit_seq")


class Rank:
    """One attention-DP rank of an instance: its queue, running set, KV pool and decode aggregates."""

    __slots__ = (
        "index",
        "kv",
        "waiting",
        "running",
        "partial",
        "n_dec",
        "kv_off",
        "count",
        "max_tokens",
        "seats",
        "dues",
        "blocked",
        "seated",
    )

    def __init__(self, index: int, capacity_tokens: int, block_size: int, max_tokens: int, seats: int):
        self.index = index
        self.kv = KVPool(capacity_tokens, block_size)
        self.waiting: deque[Request] = deque()
        #: admitted requests (prefilling or decoding) in admission order; a dict used as an ordered set
        self.running: dict[Request, None] = {}
        #: the request whose prefill is split across steps, if any (at most one: only the last request
        #: admitted or continued in a step can be cut short by the budget)
        self.partial: Request | None = None
        self.n_dec = 0
        self.kv_off = 0
        #: requests assigned to this rank and not finished (waiting + running): the rank's load
        self.count = 0
        self.max_tokens = max_tokens
        self.seats = seats
        #: dues[r]: the decoding requests that take a block at the steps with c % block_size == r
        #: (a dict used as a set), so that a preemption step visits only the decodes due a block
        self.dues: list[dict[Request, None]] = [{} for _ in range(block_size)]
        #: the head of the waiting queue cannot be admitted, and cannot become admissible until something
        #: changes on this rank (:meth:`changed`): free blocks only shrink while the decodes run, and seats
        #: and budget stay. A blocked rank with no partial prefill needs no planning while its blocks last.
        self.blocked = False
        #: requests whose KV was computed elsewhere (disaggregated) seated in the step being planned: the
        #: instance stamps their first token at the step's start (TTFT includes the wait for a seat)
        self.seated: list[Request] = []

    # -- the decode set ------------------------------------------------------------------------------------

    def start_decode(self, req: Request, kv: int, generated: int, c: int, heap: list) -> None:
        """``req`` decodes from counter ``c`` on, holding ``kv`` tokens of KV with ``generated`` tokens out.

        The caller then refreshes or invalidates :attr:`KVPool.runs_out`.
        """
        pool = self.kv
        pool.sync(c, self.n_dec)
        req.phase = DECODE
        req.kv_base, req.g_base, req.c_base = kv, generated, c
        self.n_dec += 1
        self.kv_off += kv - c
        r = (c - kv) % pool.block_size
        pool.due[r] += 1
        self.dues[r][req] = None
        heappush(heap, (c + req.output_tokens - generated, req.admit_seq, req))

    def stop_decode(self, req: Request, c: int) -> int:
        """Take ``req`` out of the decode set at counter ``c``; bring ``generated`` up to date; return its KV.

        The caller frees its blocks and refreshes or invalidates :attr:`KVPool.runs_out`.
        """
        pool = self.kv
        pool.sync(c, self.n_dec)
        steps = c - req.c_base
        req.generated = req.g_base + steps
        self.n_dec -= 1
        self.kv_off -= req.kv_base - req.c_base
        r = (req.c_base - req.kv_base) % pool.block_size
        pool.due[r] -= 1
        del self.dues[r][req]
        return req.kv_base + steps

    def changed(self) -> None:
        """A request left, finished its prefill or freed blocks here: recompute what was known."""
        self.kv.invalidate()
        self.blocked = False

    # -- admission and preemption --------------------------------------------------------------------------

    def head_fits(self, free: int) -> bool:
        """Whether the head of the waiting queue could be admitted with ``free`` blocks (seats permitting)."""
        if not self.waiting or len(self.running) >= self.seats:
            return False
        head = self.waiting[0]
        return blocks_for(head.input_tokens + head.generated, self.kv.block_size) <= free

    def evict(self, req: Request, c: int) -> None:
        """Preempt ``req`` by recompute: free its blocks and put it at the front of the waiting queue."""
        if req.phase == DECODE:
            kv = self.stop_decode(req, c)  # first: it takes the blocks owed up to c from kv.free
            self.kv.free += blocks_for(kv, self.kv.block_size)
        else:
            self.kv.free += req.blocks
            if self.partial is req:
                self.partial = None
        del self.running[req]
        req.phase = WAITING
        req.preemptions += 1
        req.prefill_target = req.input_tokens + req.generated
        req.prefill_done = 0
        req.blocks = 0
        self.waiting.appendleft(req)

    def _allocate_with_preemption(self, c: int) -> bool:
        """Give every decode due a block at counter ``c`` one, preempting the newest requests as needed.

        The decodes due a block are taken in admission order (older requests first); the others need
        nothing at this step. Returns whether any request was preempted.
        """
        kv = self.kv
        preempted = False
        running = self.running
        for req in sorted(self.dues[c % kv.block_size], key=_by_admission):
            if req.phase != DECODE:
                continue  # already preempted by an older request
            while kv.free == 0:
                victim = next(reversed(running))
                self.evict(victim, c)
                preempted = True
                if victim is req:
                    break
            if req.phase == DECODE:
                kv.free -= 1
        return preempted

    # -- one step ------------------------------------------------------------------------------------------

    def plan_step(self, c: int, seq: list, heap: list, chunks: list, admit: bool = True) -> tuple[int, float, int]:
        """Fill this rank's part of the step with counter ``c``.

        Appends ``(rank, request, chunk)`` for each prefill chunk to ``chunks``; ``seq`` is the instance's
        admission counter (a one-item list); returns the step's (prefill tokens, causal pairs, context
        tokens). The decodes are ``self.n_dec`` afterwards. ``admit=False``: no new request starts this step
        (the instance holds context requests, :class:`~.instance.Instance` ``adp_balance_iters``); a prefill
        already split across steps continues.
        """
        kv = self.kv
        preempted = False
        if self.n_dec:
            kv.sync(c, self.n_dec)
            need = kv.due[c % kv.block_size]
            if need <= kv.free:
                kv.free -= need
            else:
                # no admissions after a preemption, unless nothing is left to run
                preempted = self._allocate_with_preemption(c) and bool(self.running)
        kv.synced = c + 1  # this step's decode blocks are taken
        budget = self.max_tokens - self.n_dec
        tokens, pairs, ctx = 0, 0.0, 0
        req = self.partial
        if req is not None:
            off = req.prefill_done
            chunk = min(req.prefill_target - off, budget)
            chunks.append((self, req, chunk))
            budget -= chunk
            tokens += chunk
            pairs += chunk * (off + (chunk + 1) / 2.0)
            ctx += off + chunk
            if off + chunk == req.prefill_target:
                self.partial = None
        self.blocked = False
        if preempted:
            kv.refresh(self.n_dec)
            return tokens, pairs, ctx
        waiting, running, bs = self.waiting, self.running, kv.block_size
        admitted = False
        while admit and waiting and budget > 0:
            if len(running) >= self.seats:
                self.blocked = self.partial is None
                break
            req = waiting[0]
            target = req.prefill_target
            need = blocks_for(req.input_tokens + req.generated, bs)
            if need > kv.free:
                self.blocked = self.partial is None
                break
            waiting.popleft()
            admitted = True
            kv.free -= need
            running[req] = None
            req.admit_seq = seq[0]
            seq[0] += 1
            if target:
                req.phase = PREFILL
                req.blocks = need
                chunk = min(target, budget)
                chunks.append((self, req, chunk))
                budget -= chunk
                tokens += chunk
                pairs += chunk * ((chunk + 1) / 2.0)
                ctx += chunk
                if chunk < target:
                    self.partial = req
            else:  # KV computed elsewhere: decode from this step on
                self.start_decode(req, req.input_tokens + req.generated - 1, req.generated, c, heap)
                self.seated.append(req)
                budget -= 1
        if admitted or kv.runs_out == -math.inf:
            kv.refresh(self.n_dec)  # else: only this step's decode blocks were taken, as runs_out foresaw
        return tokens, pairs, ctx

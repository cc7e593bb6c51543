"""Disaggregated serving: a prefill pool, KV transfers over links, and a decode pool.

1. A request is routed to a **prefill instance**, which runs prefill-only steps: prompts batched FCFS up to
   ``prefill_max_batch_tokens`` per rank, a long prompt chunked across steps (same scheduler as aggregated
   serving, with no decodes). The prefill emits the first token. A one-token request finishes there.
2. Its KV, ``input_tokens * kv_bytes_per_token + state_bytes_per_seq`` bytes, then moves to a **decode
   instance** (router policy over the decode pool, at the instant the prefill ends) over the decode
   instance's **ingress link** (:class:`Link`). The prefill rank keeps the KV blocks until the transfer
   lands.
3. At the decode instance the request waits for its KV blocks (``ceil((P + 1) / block_size)``) and a seat,
   then decodes; a preempted request is recomputed there (prefill of prompt + generated tokens).

**TTFT includes the transfer and the wait for a decode seat**: ``first_token_s`` is when the decode
instance seats the request (its KV has landed and a rank admits it into the running batch), i.e. when the
decode side can deliver the first token with the rest of the stream (DistServe and Splitwise count
prefill queueing + prefill + transfer in TTFT). In aggregated serving the wait for a seat comes before the
prefill, so it is in TTFT too: both modes count it the same way, in TTFT, never in TPOT. The column
``kv_transfer_s`` is the time from the end of the prefill to the landing (link queueing, sharing and
latency included).

Link model
----------
A transfer between a prefill and a decode instance goes over NVLink when the two could sit in one NVLink
domain (``prefill GPUs + decode GPUs <= nvlink_domain_size``), else over the scale-out network. A
request's KV lives on one attention-DP rank and moves from that rank to one decode rank: each of the
``kv_shards_per_rank`` GPUs holding a distinct shard sends it over its own link, so one transfer runs at
most at the **rank pair's** bandwidth, ``per-GPU bandwidth x min(source shards, destination shards)``
(1 GPU's link for MLA, whose latent is replicated over TP). The decode instance's ``dp`` ranks receive in
parallel: the instance's ingress is ``dp`` rank pairs' worth, and transfers into one decode instance share
it equally, each capped at the pair bandwidth (with ``n`` transfers in flight each drains at
``min(pair, dp * pair / n)``; all transfers run at one rate, so the finish times stay exact). A virtual
clock counts the bytes each transfer has received, re-read whenever a transfer starts or ends. The last
byte lands ``latency`` seconds after it is sent. The prefill side's egress is not modelled as shared.
"""

from __future__ import annotations

import time
from heapq import heappop, heappush

import numpy as np
import polars as pl

from latentmoe_sim.cost.base import InstanceCost
from latentmoe_sim.errors import InputError

from .aggregated import (
    DEFAULT_BLOCK_SIZE,
    ENGINES,
    SimResult,
    check_batching,
    check_count,
    check_fits,
    check_instance,
    check_requests,
)
from .clock import COMPLETE, Clock, Deferred, make_clock, run_until_done
from .instance import Instance
from .request import TRANSFER, WAITING, Request, records_frame
from .router import Router
from .scheduler import Rank
from .source import TRANSFER as TRANSFER_KEY
from .source import Source

#: defaults for the prefill pool and the decode pool (sim/batching.py says where each comes from)
from ..batching import (DEFAULT_DECODE_MAX_BATCH_TOKENS, DEFAULT_DECODE_MAX_SEQS,  # noqa: E402
                        DEFAULT_PREFILL_MAX_BATCH_TOKENS, DEFAULT_PREFILL_MAX_SEQS)


def link_params(prefill: InstanceCost, decode: InstanceCost) -> tuple[float, float, float, str]:
    """``(ingress bytes/s, per-transfer cap bytes/s, latency s, kind)`` of the link into a decode instance.

    The cap is one rank pair's bandwidth (per-GPU bandwidth x the shards both ends hold), the ingress the
    decode instance's ``dp`` rank pairs. Both instance costs describe the same hardware; where their link
    figures differ, the slower bandwidth and the longer latency are used.
    """
    domain = min(prefill.nvlink_domain_size, decode.nvlink_domain_size)
    if prefill.num_gpus + decode.num_gpus <= domain:
        per_gpu = min(prefill.nvlink_bandwidth_bytes_per_s, decode.nvlink_bandwidth_bytes_per_s)
        latency, kind = max(prefill.nvlink_latency_s, decode.nvlink_latency_s), "nvlink"
    else:
        per_gpu = min(prefill.scaleout_bandwidth_bytes_per_s, decode.scaleout_bandwidth_bytes_per_s)
        latency, kind = max(prefill.scaleout_latency_s, decode.scaleout_latency_s), "scale-out"
    pair = per_gpu * min(prefill.kv_shards_per_rank, decode.kv_shards_per_rank)
    return pair * decode.dp, pair, latency, kind


class Link:
    """The ingress link of one decode instance: processor sharing among transfers, each capped at ``cap``
    bytes/s (one rank pair), then a fixed latency.

    ``start(request, bytes)`` adds a transfer now; ``deliver(request)`` is called when its last byte has
    landed. The link is one chain of timer events: at any time at most one timer is live, set for the
    next transfer to drain; a start re-arms it (the previous timer is left to fire and is ignored, which
    is cheaper than cancelling it).
    """

    __slots__ = ("clock", "bandwidth", "cap", "latency", "deliver", "_heap", "_virtual", "_t", "_seq", "_armed")

    def __init__(self, clock: Clock, bandwidth: float, latency: float, deliver, cap: float | None = None):
        self.clock = clock
        self.bandwidth = bandwidth
        self.cap = bandwidth if cap is None else min(cap, bandwidth)
        self.latency = latency
        self.deliver = deliver
        self._heap: list = []  # (virtual finish, start seq, request)
        self._virtual = 0.0  # bytes each transfer in flight has received since the link was created
        self._t = 0.0  # time _virtual was last brought up to date
        self._seq = 0
        self._armed: int | None = None  # id of the live timer

    def _advance(self, now: float) -> None:
        if self._heap:
            self._virtual += (now - self._t) * self._rate()
        self._t = now

    def _rate(self) -> float:
        """Bytes/s each transfer in flight receives: an equal share of the link, at most the cap."""
        share = self.bandwidth / len(self._heap)
        return share if share < self.cap else self.cap

    def start(self, req: Request, nbytes: float) -> None:
        self._advance(self.clock.now)
        heappush(self._heap, (self._virtual + nbytes, self._seq, req))
        self._seq += 1
        self._arm()

    def _arm(self) -> None:
        heap = self._heap
        if not heap:
            self._armed = None
            return
        dt = (heap[0][0] - self._virtual) / self._rate()
        self._armed = self.clock.at(dt if dt > 0.0 else 0.0, COMPLETE, self._drained)

    def _drained(self, timer: int) -> None:
        if timer != self._armed:
            return  # superseded by a later start
        heap = self._heap
        tag = heap[0][0]
        self._advance(self.clock.now)
        self._virtual = tag  # exactly the finish tag (no rounding drift)
        while heap and heap[0][0] <= tag:
            req = heappop(heap)[2]
            if self.latency > 0.0:
                self.clock.at(self.latency, COMPLETE, lambda _timer, req=req: self.deliver(req))
            else:
                self.deliver(req)
        self._arm()


def _checked_link(prefill: InstanceCost, decode: InstanceCost) -> tuple[float, float, float, str]:
    """:func:`link_params`, with the error for a link that cannot move the KV there is."""
    bandwidth, cap, latency, kind = link_params(prefill, decode)
    if bandwidth <= 0.0 and (float(prefill.kv_bytes_per_token) > 0.0 or float(prefill.state_bytes_per_seq) > 0.0):
        raise InputError(
            f"disaggregated KV transfer: the {kind} bandwidth per GPU of the instance costs is "
            f"{bandwidth!r} bytes/s; it must be > 0 to move KV from prefill to decode"
        )
    return bandwidth, cap, latency, kind


class _Disaggregated:
    def __init__(self, prefill, num_prefill, decode, num_decode, specs, *, prefill_batching, decode_batching,
                 block_size, router, step_by_step, clock="heap"):
        clock = self.clock = make_clock(clock)
        self.deferred = Deferred(clock)
        self.prefills = [
            Instance(clock, i, prefill, self, max_batch_tokens=prefill_batching[0], max_seqs=prefill_batching[1],
                     block_size=block_size, prefill_only=True, step_by_step=step_by_step)
            for i in range(num_prefill)
        ]
        self.decodes = [
            Instance(clock, num_prefill + j, decode, self, max_batch_tokens=decode_batching[0],
                     max_seqs=decode_batching[1], block_size=block_size, step_by_step=step_by_step)
            for j in range(num_decode)
        ]
        self.prefill_router = Router(self.prefills, router, "router")
        self.decode_router = Router(self.decodes, router, "router")
        bandwidth, cap, latency, self.link_kind = _checked_link(prefill, decode)
        self.kv_bytes_per_token = float(prefill.kv_bytes_per_token)
        self.state_bytes_per_seq = float(prefill.state_bytes_per_seq)
        self._num_prefill = num_prefill
        self.links = [Link(clock, bandwidth or 1.0, latency, self._landed, cap or 1.0) for _ in self.decodes]
        self._held: dict[Request, tuple[Instance, Rank]] = {}
        self.source = Source(clock, self.deferred, specs, self.route)

    def route(self, req: Request) -> None:
        inst = self.prefill_router.pick()
        inst.load += 1
        req.prefill_instance = req.instance = inst.id
        inst.submit(req)

    def prefilled(self, req: Request, inst: Instance, rank: Rank) -> None:
        req.prefill_end_s = self.clock.now
        self._held[req] = (inst, rank)
        self.deferred.defer((TRANSFER_KEY, req.id), self._start_transfer, req)

    def _start_transfer(self, req: Request) -> None:
        dec = self.decode_router.pick()
        dec.load += 1
        req.instance = dec.id
        req.phase = TRANSFER
        nbytes = req.input_tokens * self.kv_bytes_per_token + self.state_bytes_per_seq
        self.links[dec.id - self._num_prefill].start(req, nbytes)

    def _landed(self, req: Request) -> None:
        now = self.clock.now
        inst, rank = self._held.pop(req)
        blocks, req.blocks = req.blocks, 0
        inst.release(rank, blocks)
        req.kv_transfer_s = now - req.prefill_end_s
        req.first_token_s = -1.0  # stamped when a decode rank seats it (Rank.seated)
        req.phase = WAITING
        req.prefill_target = 0  # nothing to prefill: the KV is here
        req.prefill_done = 0
        self.decodes[req.instance - self._num_prefill].submit(req)

    def finished(self, req: Request) -> None:
        self.source.finished(req)


def _simulate_compiled(prefill, num_prefill, decode, num_decode, requests, inputs, outputs, cpu0, required, *,
                       prefill_batching, decode_batching, block_size, router, step_by_step, clock) -> SimResult | None:
    """The run on the compiled engine (:mod:`.compiled_loop`), or None where it does not mirror the run (then
    the Python engine runs it; ``required``: raise instead)."""
    from . import compiled

    def run() -> SimResult:
        from . import compiled_loop

        Router([], router)  # the policy's check and error
        bandwidth, cap, latency, kind = _checked_link(prefill, decode)
        bandwidth = bandwidth or 1.0  # as _Disaggregated builds its Links
        cap = min(cap or 1.0, bandwidth)
        loop = getattr(requests, "closed_loop", None)
        cols, end_s, steps, timers = compiled_loop.simulate(
            prefill, num_prefill, decode, num_decode, inputs, outputs,
            None if loop is not None else np.asarray(requests.arrival_s), loop,
            prefill_batching=prefill_batching, decode_batching=decode_batching, block_size=block_size,
            round_robin=router == "round-robin", link=(bandwidth, cap, latency),
            kv_bytes_per_token=float(prefill.kv_bytes_per_token),
            state_bytes_per_seq=float(prefill.state_bytes_per_seq))
        records = pl.DataFrame({"request_id": np.arange(inputs.shape[0], dtype=np.int64), **cols})
        return SimResult(records=records, num_gpus=num_prefill * prefill.num_gpus + num_decode * decode.num_gpus,
                         sim_end_s=end_s, steps=steps, events=timers, cpu_s=time.process_time() - cpu0,
                         extra={"link": kind})

    return compiled.run_if_supported(run, {"prefill step cost": prefill.step_cost,
                                           "decode step cost": decode.step_cost},
                                     required=required, step_by_step=step_by_step, clock=clock)


def simulate_disaggregated(
    prefill: InstanceCost,
    num_prefill: int,
    decode: InstanceCost,
    num_decode: int,
    requests,
    *,
    prefill_max_batch_tokens: int = DEFAULT_PREFILL_MAX_BATCH_TOKENS,
    prefill_max_seqs: int = DEFAULT_PREFILL_MAX_SEQS,
    decode_max_batch_tokens: int = DEFAULT_DECODE_MAX_BATCH_TOKENS,
    decode_max_seqs: int = DEFAULT_DECODE_MAX_SEQS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    router: str = "least-loaded",
    step_by_step: bool = False,
    clock: str = "heap",
    engine: str = "auto",
) -> SimResult:
    """Serve ``requests`` on ``num_prefill`` prefill instances and ``num_decode`` decode instances.

    Each pool has its own :class:`InstanceCost` (its own parallel plan) and batching limits; ``router``
    applies to both pools. The records add ``prefill_instance`` and ``kv_transfer_s``; ``instance`` is the
    decode instance (numbered after the prefill instances: ``num_prefill + j``), or the prefill instance for
    a one-token request. See the module docstring for the transfer model and the TTFT convention.
    ``clock``: ``"heap"`` (default) or ``"simpy"`` (sim/engine/clock.py; identical records). ``engine``:
    ``"auto"`` (default: the compiled engine of :mod:`.compiled_loop` where it mirrors the run, else the
    Python engine), ``"python"`` or ``"compiled"`` (an error where it cannot run); both give identical records.
    """
    cpu0 = time.process_time()
    block_size = check_count(block_size, "block_size")
    num_prefill = check_count(num_prefill, "num_prefill")
    num_decode = check_count(num_decode, "num_decode")
    prefill_batching = check_batching(prefill_max_batch_tokens, prefill_max_seqs, "prefill_")
    decode_batching = check_batching(decode_max_batch_tokens, decode_max_seqs, "decode_")
    check_instance(prefill, block_size, "prefill instance")
    check_instance(decode, block_size, "decode instance")
    inputs, outputs = check_requests(requests)
    check_fits(inputs, prefill, block_size, "prefill instance", "prompt")
    # a one-token request never reaches the decode pool
    check_fits(np.where(outputs > 1, inputs + outputs - 1, 0), decode, block_size, "decode instance",
               "prompt plus output (less the last token)")

    if engine not in ENGINES:
        raise InputError(f"engine: must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "python":
        fast = _simulate_compiled(prefill, num_prefill, decode, num_decode, requests, inputs, outputs, cpu0,
                                  engine == "compiled", prefill_batching=prefill_batching,
                                  decode_batching=decode_batching, block_size=block_size, router=router,
                                  step_by_step=bool(step_by_step), clock=clock)
        if fast is not None:
            return fast
    sim = _Disaggregated(
        prefill, num_prefill, decode, num_decode, requests,
        prefill_batching=prefill_batching, decode_batching=decode_batching,
        block_size=block_size, router=router, step_by_step=bool(step_by_step), clock=clock,
    )
    source = sim.source
    events = run_until_done(sim.clock, source)
    return SimResult(
        records=records_frame(source.requests, disaggregated=True),
        num_gpus=num_prefill * prefill.num_gpus + num_decode * decode.num_gpus,
        sim_end_s=float(sim.clock.now),
        steps=sum(inst.steps for inst in sim.prefills + sim.decodes),
        events=events,
        cpu_s=time.process_time() - cpu0,
        extra={"link": sim.link_kind},
    )

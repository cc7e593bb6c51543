"""Aggregated serving: ``N`` identical instances behind a router, each running chunked-prefill piggybacking.

Every instance prefills and decodes (Sarathi-Serve / vLLM: decodes first, then prefill chunks, under one
token budget; see :mod:`.scheduler`). :func:`simulate_aggregated` is the entry point; it returns a
:class:`SimResult` with one record per request.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from latentmoe_sim.cost.base import InstanceCost
from latentmoe_sim.errors import DoesNotFit, InputError, require

from .clock import Deferred, make_clock, run_until_done
from .instance import Instance
from .request import Request, records_frame
from .router import Router
from .source import Source

#: vLLM's DEFAULT_MAX_NUM_BATCHED_TOKENS and DEFAULT_MAX_NUM_SEQS, and its default KV block size
DEFAULT_MAX_BATCH_TOKENS = 2048
DEFAULT_MAX_SEQS = 128
DEFAULT_BLOCK_SIZE = 16


@dataclass
class SimResult:
    """What one simulated run produced.

    ``records``: one row per request (see :mod:`latentmoe_sim.metrics`; disaggregated runs add
    ``prefill_instance`` and ``kv_transfer_s``). ``num_gpus``: GPUs of the whole deployment.
    ``sim_end_s``: simulated time when the last request finished. ``steps``: engine steps simulated over
    all instances (a stretch of n steps counts n). ``events``: timers run (:mod:`.clock`). ``cpu_s``: process
    CPU time the run took.
    """

    records: pl.DataFrame
    num_gpus: int
    sim_end_s: float
    steps: int
    events: int
    cpu_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def summary(self, **kw) -> dict:
        """:func:`latentmoe_sim.metrics.summarize` of the records (keyword arguments are passed on)."""
        from latentmoe_sim.metrics import summarize

        kw.setdefault("sim_end_s", self.sim_end_s)
        return summarize(self.records, self.num_gpus, **kw)


# -- input checks (shared with disaggregated.py) ---------------------------------------------------------------


def check_count(value, what: str, minimum: int = 1) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= minimum
    require(ok, f"{what}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_instance(cost: InstanceCost, block_size: int, what: str) -> None:
    require(
        hasattr(cost, "step_cost") and hasattr(cost, "kv_capacity_tokens"),
        f"{what}: expected an InstanceCost, got {type(cost).__name__}",
    )
    check_count(cost.dp, f"{what}.dp")
    check_count(cost.num_gpus, f"{what}.num_gpus")
    cost_dp = getattr(cost.step_cost, "dp", cost.dp)
    require(cost_dp == cost.dp, f"{what}: step_cost.dp ({cost_dp}) differs from dp ({cost.dp})")
    check_count(cost.kv_capacity_tokens, f"{what}.kv_capacity_tokens", minimum=0)
    require(
        cost.kv_capacity_tokens >= block_size,
        f"{what}.kv_capacity_tokens: {cost.kv_capacity_tokens} tokens per rank is less than one KV block "
        f"({block_size} tokens); the plan leaves no room for KV cache",
    )
    if cost.max_seqs_by_memory is not None:
        check_count(cost.max_seqs_by_memory, f"{what}.max_seqs_by_memory")


def check_batching(max_batch_tokens, max_seqs, what: str) -> tuple[int, int]:
    max_batch_tokens = check_count(max_batch_tokens, f"{what}max_batch_tokens")
    max_seqs = check_count(max_seqs, f"{what}max_seqs")
    require(
        max_seqs <= max_batch_tokens,
        f"{what}max_seqs ({max_seqs}) must be <= {what}max_batch_tokens ({max_batch_tokens}): every running "
        "request decodes one token per step within the token budget",
    )
    return max_batch_tokens, max_seqs


def check_requests(specs) -> tuple[np.ndarray, np.ndarray]:
    """Validate a RequestSpecs; return its (input_tokens, output_tokens) as int64 arrays."""
    for name in ("arrival_s", "input_tokens", "output_tokens"):
        require(hasattr(specs, name), f"requests: expected a RequestSpecs (missing {name})")
    inputs = np.asarray(specs.input_tokens)
    outputs = np.asarray(specs.output_tokens)
    arrivals = np.asarray(specs.arrival_s, dtype=np.float64)
    n = inputs.size
    require(n >= 1, "requests: no requests to simulate")
    require(inputs.shape == outputs.shape == arrivals.shape == (n,), "requests: arrays must be 1-D and of equal length")
    for name, arr in (("input_tokens", inputs), ("output_tokens", outputs)):
        require(np.issubdtype(arr.dtype, np.integer), f"requests.{name}: must be integers, got {arr.dtype}")
        if (arr < 1).any():
            i = int(np.argmax(arr < 1))
            raise InputError(f"requests.{name}: request {i} has {int(arr[i])} tokens; must be >= 1")
    loop = getattr(specs, "closed_loop", None)
    if loop is None:
        require(np.isfinite(arrivals).all(), "requests.arrival_s: open-loop arrival times must be finite")
        require(bool((arrivals >= 0).all()), "requests.arrival_s: arrival times must be >= 0")
        require(bool((np.diff(arrivals) >= 0).all()), "requests.arrival_s: arrival times must be sorted")
    else:
        check_count(loop.concurrency, "requests.closed_loop.concurrency")
        think = loop.think_time_s
        require(math.isfinite(think) and think >= 0, f"requests.closed_loop.think_time_s: must be >= 0, got {think!r}")
    return inputs.astype(np.int64), outputs.astype(np.int64)


def check_fits(tokens: np.ndarray, cost: InstanceCost, block_size: int, what: str, held: str) -> None:
    """Every request's ``tokens`` of KV must fit one rank of ``cost`` (else it could never finish)."""
    num_blocks = cost.kv_capacity_tokens // block_size
    blocks = -(-tokens // block_size)
    if blocks.size and int(blocks.max()) > num_blocks:
        i = int(np.argmax(blocks > num_blocks))
        raise DoesNotFit(
            f"request {i}: its {held} ({int(tokens[i])} tokens, {int(blocks[i])} KV blocks of {block_size}) "
            f"exceeds the KV capacity of one attention-DP rank of the {what} ({cost.kv_capacity_tokens} "
            f"tokens = {num_blocks} blocks); it could never run"
        )


# -- the simulation ---------------------------------------------------------------------------------------------


class _Aggregated:
    """The run's shared state: the instances, the router and the request source."""

    def __init__(self, cost, num_instances, specs, *, max_batch_tokens, max_seqs, block_size, router, step_by_step,
                 adp_balance_iters=None, clock="heap"):
        clock = self.clock = make_clock(clock)
        self.deferred = Deferred(clock)
        self.instances = [
            Instance(
                clock, i, cost, self,
                max_batch_tokens=max_batch_tokens, max_seqs=max_seqs, block_size=block_size,
                step_by_step=step_by_step, adp_balance_iters=adp_balance_iters,
            )
            for i in range(num_instances)
        ]
        self.router = Router(self.instances, router)
        self.source = Source(clock, self.deferred, specs, self.route)

    def route(self, req: Request) -> None:
        inst = self.router.pick()
        inst.load += 1
        req.instance = inst.id
        inst.submit(req)

    def finished(self, req: Request) -> None:
        self.source.finished(req)


#: the engines simulate_aggregated can run (``engine=``)
ENGINES = ("auto", "python", "compiled")


def _simulate_compiled(instance, num_instances, requests, inputs, outputs, cpu0, required, *, max_batch_tokens,
                       max_seqs, block_size, router, step_by_step, adp_balance_iters, clock) -> SimResult | None:
    """The run on the compiled engine (:mod:`.compiled`), or None where it does not mirror the run (then the
    Python engine runs it; ``required``: raise instead)."""
    from . import compiled

    def run() -> SimResult:
        Router([], router)  # the policy's check and error
        loop = getattr(requests, "closed_loop", None)
        cols, end_s, steps, timers = compiled.simulate(
            instance, num_instances, inputs, outputs, None if loop is not None else np.asarray(requests.arrival_s),
            loop, max_batch_tokens=max_batch_tokens, max_seqs=max_seqs, block_size=block_size,
            round_robin=router == "round-robin")
        records = pl.DataFrame({"request_id": np.arange(inputs.shape[0], dtype=np.int64), **cols})
        return SimResult(records=records, num_gpus=num_instances * instance.num_gpus, sim_end_s=end_s,
                         steps=steps, events=timers, cpu_s=time.process_time() - cpu0)

    return compiled.run_if_supported(run, {"step cost": instance.step_cost}, required=required,
                                     step_by_step=step_by_step, clock=clock, adp_balance_iters=adp_balance_iters)


def simulate_aggregated(
    instance: InstanceCost,
    num_instances: int,
    requests,
    *,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    max_seqs: int = DEFAULT_MAX_SEQS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    router: str = "least-loaded",
    step_by_step: bool = False,
    adp_balance_iters: int | None = None,
    clock: str = "heap",
    engine: str = "auto",
) -> SimResult:
    """Serve ``requests`` (a :class:`~latentmoe_sim.workloads.RequestSpecs`) on ``num_instances`` copies of
    ``instance`` behind a router, and return one record per request.

    ``max_batch_tokens`` is the per-rank token budget of a step, ``max_seqs`` the per-rank cap on running
    requests, ``block_size`` the KV page size in tokens, ``router`` ``"least-loaded"`` or ``"round-robin"``.
    ``step_by_step=True`` simulates one step per event instead of advancing decode stretches in one event
    (same results, slower; for checking). ``adp_balance_iters``: TensorRT-LLM's attention-DP balance
    (``attention_dp_config: enable_balance: true, timeout_iters: N``, ``batching_wait_iters: 0``): a new prefill
    starts only in an iteration where every attention-DP rank of the instance can start one, after ``N``
    iterations since the last release, or when some rank has no decodes (TensorRT-LLM tech blog 10, "ADP
    Balance Strategy"; ``PyExecutor._balance_adp_requests``); None: off (every rank admits when it can).
    ``clock``: ``"heap"`` (default) or ``"simpy"`` (the same timers as SimPy events; identical records,
    sim/engine/clock.py). ``engine``: ``"auto"`` (default: the compiled engine of :mod:`.compiled` where it
    mirrors the run, else the Python engine), ``"python"`` or ``"compiled"`` (an error where it cannot run);
    both give identical records.
    """
    cpu0 = time.process_time()
    block_size = check_count(block_size, "block_size")
    num_instances = check_count(num_instances, "num_instances")
    max_batch_tokens, max_seqs = check_batching(max_batch_tokens, max_seqs, "")
    check_instance(instance, block_size, "instance")
    inputs, outputs = check_requests(requests)
    check_fits(inputs + outputs - 1, instance, block_size, "instance", "prompt plus output (less the last token)")

    if engine not in ENGINES:
        raise InputError(f"engine: must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "python":
        fast = _simulate_compiled(instance, num_instances, requests, inputs, outputs, cpu0, engine == "compiled",
                                  max_batch_tokens=max_batch_tokens, max_seqs=max_seqs, block_size=block_size,
                                  router=router, step_by_step=bool(step_by_step), adp_balance_iters=adp_balance_iters,
                                  clock=clock)
        if fast is not None:
            return fast
    sim = _Aggregated(
        instance, num_instances, requests,
        max_batch_tokens=max_batch_tokens, max_seqs=max_seqs, block_size=block_size,
        router=router, step_by_step=bool(step_by_step),
        adp_balance_iters=None if adp_balance_iters is None else check_count(adp_balance_iters, "adp_balance_iters"),
        clock=clock,
    )
    source = sim.source
    events = run_until_done(sim.clock, source)
    return SimResult(
        records=records_frame(source.requests),
        num_gpus=num_instances * instance.num_gpus,
        sim_end_s=float(sim.clock.now),
        steps=sum(inst.steps for inst in sim.instances),
        events=events,
        cpu_s=time.process_time() - cpu0,
    )

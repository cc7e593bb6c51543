"""Pipeline parallelism with micro-batches in flight: a PP instance as ``pp`` independent virtual instances.

With ``pp`` stages, vLLM and SGLang keep ``pp`` micro-batches in flight: vLLM V0 runs one scheduler per
*virtual engine* (``pipeline_parallel_size`` of them) and adds a new request to the one with the fewest
unfinished sequences; SGLang's PP event loop keeps ``pp`` micro-batches circulating. In steady state each
stage works on a different micro-batch, and a micro-batch comes back to the first stage after one
traversal of all stages.

So one micro-batch advances by one engine step per traversal, ``cycle = sum over stages of its stage
time + (pp - 1) point-to-point sends`` = the full-model step time of *its own* batch, which is what
:class:`~latentmoe_sim.cost.model.CostModel` charges for a plan with ``pp > 1`` (every layer, plus the
``pp.p2p`` ops). The micro-batches interact only through the KV cache they share, and through the stage
slots when their sizes differ. This module therefore serves a PP instance as ``pp`` independent virtual
instances, each with the full-model step cost, ``1/pp`` of the GPUs (for the per-GPU figures) and a
static ``1/pp`` share of each rank's KV pool. The bubble is then what the engine sees: a virtual instance
with no work leaves its slot in every stage idle (low load), and nothing fills it.

Approximations (docs/MODELING.md §8): equal micro-batches (a heavier micro-batch delays the others at
the shared stages, not modelled); a static KV split (a real pool is shared dynamically, so this is
pessimistic for skewed loads); the pipeline fill at the start of a run is not modelled.
"""

from __future__ import annotations

from dataclasses import replace

from .base import InstanceCost


def pipeline_micro_batches(inst: InstanceCost, pp: int) -> tuple[InstanceCost, int]:
    """``(virtual instance, copies)``: serve each of ``copies`` = ``pp`` micro-batches of a PP instance as
    an independent instance with the full-model step cost, ``num_gpus / pp`` GPUs and ``1/pp`` of each
    rank's KV capacity (and of its memory-bound sequence cap). ``pp = 1``: the instance itself."""
    if pp <= 1:
        return inst, 1
    seqs = inst.max_seqs_by_memory
    virtual = replace(inst, num_gpus=inst.num_gpus // pp, kv_capacity_tokens=inst.kv_capacity_tokens // pp,
                      max_seqs_by_memory=None if seqs is None else max(1, seqs // pp))
    return virtual, pp

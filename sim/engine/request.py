"""One request's life in the engine, and the records it leaves behind.

A :class:`Request` is created when it arrives and is mutated in place until it finishes; the engine never
copies it. Its fields fall in three groups:

* what it asks for: ``input_tokens`` (prompt, P) and ``output_tokens`` (tokens to generate, >= 1);
* where it is: ``phase``, ``generated`` (output tokens produced so far), and the prefill in progress
  (``prefill_target`` tokens to compute, ``prefill_done`` of them computed, ``blocks`` reserved);
* what happened: ``first_token_s``, ``finish_s``, ``preemptions``, ``instance`` and, in disaggregated
  serving, ``prefill_instance`` and ``kv_transfer_s``.

Token accounting (the same in every mode): a prefill computes the KV of ``prefill_target`` tokens and emits
one output token. A decode step computes the KV of the last emitted token and emits the next one, attending
``input_tokens + generated`` tokens of context. So a request that has emitted ``g`` tokens holds the KV of
``P + g - 1`` tokens, and a preempted one (recompute) re-prefills ``P + g`` tokens and emits token ``g + 1``.

While a request decodes, its ``generated`` count is not updated every step: the rank's decode counter
advances instead, and ``generated = g_base + (counter - c_base)`` (see :mod:`.scheduler`). The fields are
brought up to date whenever the request leaves the decode set.
"""

from __future__ import annotations

import numpy as np
import polars as pl

# Phases
WAITING = 0  #: queued on a rank (or in an instance's inbox), no KV reserved
PREFILL = 1  #: admitted, prefill chunks in progress
DECODE = 2  #: admitted, emits one token per step
HELD = 3  #: disaggregated: prefill done, KV held by the prefill rank until its transfer lands
TRANSFER = 4  #: disaggregated: KV on the link to a decode instance
DONE = 5  #: every output token emitted


class Request:
    """A request in flight (see the module docstring for the token accounting)."""

    __slots__ = (
        "id",
        "arrival_s",
        "input_tokens",
        "output_tokens",
        "phase",
        "generated",
        "prefill_target",
        "prefill_done",
        "blocks",
        "rank",
        "admit_seq",
        "kv_base",
        "g_base",
        "c_base",
        "first_token_s",
        "finish_s",
        "preemptions",
        "instance",
        "prefill_instance",
        "prefill_end_s",
        "kv_transfer_s",
    )

    def __init__(self, request_id: int, arrival_s: float, input_tokens: int, output_tokens: int):
        self.id = request_id
        self.arrival_s = arrival_s
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.phase = WAITING
        self.generated = 0
        self.prefill_target = input_tokens
        self.prefill_done = 0
        self.blocks = 0
        self.rank = None
        self.admit_seq = -1
        self.kv_base = self.g_base = self.c_base = 0
        self.first_token_s = self.finish_s = -1.0
        self.preemptions = 0
        self.instance = -1
        self.prefill_instance = -1
        self.prefill_end_s = -1.0
        self.kv_transfer_s = 0.0

    def __repr__(self) -> str:
        return (
            f"Request({self.id}, P={self.input_tokens}, out={self.output_tokens}, phase={self.phase}, "
            f"generated={self.generated})"
        )


def records_frame(requests: list[Request], *, disaggregated: bool = False) -> pl.DataFrame:
    """The per-request records (one row per request, sorted by ``request_id``) as a polars DataFrame.

    Columns are those of :mod:`latentmoe_sim.metrics`; disaggregated runs add ``prefill_instance`` and
    ``kv_transfer_s`` (seconds from the end of the prefill to the KV landing at the decode instance).
    """
    reqs = sorted(requests, key=lambda r: r.id)
    cols = {
        "request_id": np.fromiter((r.id for r in reqs), np.int64, len(reqs)),
        "arrival_s": np.fromiter((r.arrival_s for r in reqs), np.float64, len(reqs)),
        "first_token_s": np.fromiter((r.first_token_s for r in reqs), np.float64, len(reqs)),
        "finish_s": np.fromiter((r.finish_s for r in reqs), np.float64, len(reqs)),
        "input_tokens": np.fromiter((r.input_tokens for r in reqs), np.int64, len(reqs)),
        "output_tokens": np.fromiter((r.output_tokens for r in reqs), np.int64, len(reqs)),
        "preemptions": np.fromiter((r.preemptions for r in reqs), np.int64, len(reqs)),
        "instance": np.fromiter((r.instance for r in reqs), np.int64, len(reqs)),
    }
    if disaggregated:
        cols["prefill_instance"] = np.fromiter((r.prefill_instance for r in reqs), np.int64, len(reqs))
        cols["kv_transfer_s"] = np.fromiter((r.kv_transfer_s for r in reqs), np.float64, len(reqs))
    return pl.DataFrame(cols)

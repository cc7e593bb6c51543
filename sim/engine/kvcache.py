"""The paged KV cache of one attention-DP rank: free blocks, and when the decodes need new ones.

KV is stored in blocks of ``block_size`` tokens (vLLM's paged attention; 16 by default). A request holding
the KV of ``kv`` tokens owns ``ceil(kv / block_size)`` blocks. Blocks are taken

* at admission: ``ceil((P + g) / block_size)`` for the whole prompt to (re)compute (``P`` prompt tokens,
  ``g`` tokens generated before a preemption), or ``ceil((P + 1) / block_size)`` for a request whose KV
  arrived from a prefill instance (its first decode step included);
* by a decode step, one block when the request's KV fills its last block exactly (``kv % block_size == 0``).

A decode's KV grows by one token per step, so the steps at which it needs a block are periodic. With a
rank-wide step counter ``c`` and a request that held ``kv_base`` tokens at counter ``c_base``, it needs a
block at every step with ``c % block_size == (c_base - kv_base) % block_size``. :class:`KVPool` keeps the
number of decodes per residue (``due``), which gives the blocks needed by any step, or any run of steps,
without visiting the requests.

The decodes' blocks are taken *lazily*: ``free`` is the count as of counter ``synced`` (the blocks of
steps before ``synced`` are taken, those of later steps not yet), and :meth:`sync` takes the blocks of
the steps up to a given counter in one O(block_size) sum. Nothing needs to visit a rank while it only
decodes, so a decode stretch costs nothing per rank. ``runs_out`` is the first counter at which the
decodes would find no free block (no decodes: never). Every change of ``free`` or of the decode set
either recomputes it (:meth:`refresh`) or marks it unknown (:meth:`invalidate`, ``-inf``: many requests
may finish on a rank at one instant, and one refresh afterwards is enough).
"""

from __future__ import annotations

import math


def blocks_for(tokens: int, block_size: int) -> int:
    """Blocks that hold ``tokens`` tokens of KV."""
    return -(-tokens // block_size)


class KVPool:
    """Free blocks of one rank, and its decodes counted by the step residue at which they take a block."""

    __slots__ = ("block_size", "num_blocks", "free", "due", "synced", "runs_out")

    def __init__(self, capacity_tokens: int, block_size: int):
        self.block_size = block_size
        self.num_blocks = capacity_tokens // block_size
        self.free = self.num_blocks
        #: due[r] = decodes that need a new block at each step whose counter c has c % block_size == r
        self.due = [0] * block_size
        #: the counter up to which the decodes' blocks have been taken from ``free``
        self.synced = 0
        #: the first counter at which the decodes would find no free block (math.inf: never)
        self.runs_out: float = math.inf

    def sync(self, c: int, n_dec: int) -> None:
        """Take the blocks the ``n_dec`` decodes need at the steps with counters ``synced .. c - 1``."""
        n = c - self.synced
        if n > 0:
            if n_dec:
                self.free -= self.blocks_over(self.synced, n, n_dec)
            self.synced = c

    def invalidate(self) -> None:
        """Mark :attr:`runs_out` unknown (``-inf``) until the next :meth:`refresh`."""
        self.runs_out = -math.inf

    def refresh(self, n_dec: int) -> None:
        """Recompute :attr:`runs_out` after a change of ``free`` or of the decode set."""
        if not n_dec:
            self.runs_out = math.inf
            return
        c0 = self.synced
        bs, free, due = self.block_size, self.free, self.due
        cycles = free // n_dec  # whole cycles of block_size steps take n_dec blocks each
        j, used = cycles * bs, cycles * n_dec
        while True:  # less than one cycle to go: some residue pushes the count over
            used += due[(c0 + j) % bs]
            if used > free:
                self.runs_out = c0 + j
                return
            j += 1

    def blocks_over(self, c: int, n: int, n_dec: int) -> int:
        """Blocks the ``n_dec`` decodes need over the ``n`` steps with counters ``c .. c + n - 1``."""
        bs = self.block_size
        cycles, rest = divmod(n, bs)
        total = cycles * n_dec
        if rest:
            due, start = self.due, c % bs
            end = start + rest
            total += sum(due[start:end]) if end <= bs else sum(due[start:]) + sum(due[: end - bs])
        return total

"""Single-pool measurement: one pool of a disaggregated system, fed from an ideal other side.

Published decode-pool and prefill-pool figures (DeepSeek's profile data, the SGLang large-scale EP blog,
InferenceX's per-pool numbers) each measure one pool while the other is over-provisioned. ``lmsim
simulate --mode decode-only`` and ``--mode prefill-only`` reproduce that directly:

* **decode-only**: requests arrive with their KV already in place (an ideal prefill pool and transfer), so
  admitting a request costs no time: the decode pool's step cost with every prefill feature removed
  (:class:`DecodeOnlyStepCost`). A step that would only prefill takes zero seconds; a mixed step costs its
  decodes. The KV blocks are still reserved at admission, so capacity and preemption are real. The first
  output token is emitted at admission (free), one token in ``output_len``.
* **prefill-only**: every request generates one token (the prefill's), so the pool never decodes; the
  figure is input tokens/s per prefill GPU.
"""

from __future__ import annotations

from typing import Sequence

from .base import RankLoad
from .stretch import DecodeStretch


class DecodeOnlyStepCost:
    """``inner`` with prefill made free (see the module docstring)."""

    def __init__(self, inner):
        self.inner = inner
        self.dp = inner.dp

    def step_time(self, loads: Sequence[RankLoad]) -> float:
        if not any(l[3] for l in loads):
            return 0.0
        return self.inner.step_time([RankLoad(0, 0.0, 0, l[3], l[4]) for l in loads])

    def decode_stretch(self, decode_seqs: Sequence[int], decode_kv_tokens: Sequence[int]) -> DecodeStretch:
        return self.inner.decode_stretch(decode_seqs, decode_kv_tokens)


__all__ = ["DecodeOnlyStepCost"]

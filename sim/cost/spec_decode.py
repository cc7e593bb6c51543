"""Multi-token prediction (MTP) and speculative decoding as a step cost.

With speculative decoding a decode step drafts ``k`` tokens per sequence, then verifies ``1 + k`` tokens in
one forward pass of the target model and keeps the accepted prefix plus one token of its own. DeepSeek-V3's
MTP module drafts with **one extra transformer layer per draft token**: a projection of
``[norm(h); norm(embed(t))]`` (``2h -> h``), one Transformer block, and the shared embedding and output head
(DeepSeek-V3 report, arXiv 2412.19437, §2.2; the HF checkpoint's layer 61; TensorRT-LLM's DeepSeek-R1 B200
blog runs it autoregressively for k = 3). Kimi-K2 ships no MTP layer; a drafter of the same shape
(EAGLE-style, one layer) is what this models for it.

Acceptance model
----------------
``acceptance[i]`` is the probability that draft ``i + 1`` is accepted given that drafts ``1..i`` were
(per-position conditional rates). A step then emits on average

    tau = 1 + sum_{i=1..k} prod_{j<=i} acceptance[j]   tokens per sequence

(the accepted prefix plus the target's own token; Leviathan et al. 2023, §3.1 with per-position rates).
Acceptance 1 gives ``k + 1``; acceptance 0 gives 1. A mean accepted length ``tau`` can be given instead
(``len:TAU``). Default rate: 0.85 at every position, the low end of the 85-90 % DeepSeek-V3 reports for its
second-token prediction (§5.4.3; SGLang measured ~1.9 accepted tokens per step with one draft, PR
sgl-project/sglang#3582). Later positions of a reused MTP layer are accepted less often (the DeepSeek MTP
module was trained for one position), so for k > 1 pass measured per-position rates. A check: TensorRT-LLM's
MTP blog (tech_blog2, "DeepSeek R1 MTP Implementation and Optimization") measures a 2.16x batch-1 speedup
with nextn = 3 on 8xB200 (DeepSeek-R1-FP4, attention TP8, MoE EP2, ISL/OSL 1K/2K). This cost model gives
2.16x at tau ~= 2.7 (``len:2.7``) and 2.53x at the default 0.85 per position (tau 3.19), so the default
overstates positions 2 and 3. TensorRT-LLM's default MTP path ("MTP Eagle") calls the same single MTP
module k times, which is the draft cost charged here.

How the engine sees it (no engine change)
-----------------------------------------
The engine counts one token per sequence per step. A speculative step emits ``tau``, so one engine step
stands for ``1 / tau`` of a real step: its duration is the real step's divided by ``tau``. KV then grows
one token per engine step, which is exactly the real KV growth per emitted token, and tokens are
conserved by construction (the engine still emits every output token of every request). Mixed steps
(prefill chunks plus decodes) pay the prefill part in full and the decode part's marginal cost divided by
``tau``: ``t = t(prefill only) + (t(all) - t(prefill only)) / tau``. This is a fluid (mean) model: the
spread of accepted lengths from step to step is not simulated, so TPOT percentiles are those of the mean.

Real step = verify (target model with ``1 + k`` query tokens per decoding sequence, see
:func:`~latentmoe_sim.cost.ops.rank_ops`) + ``k`` draft passes (the one-layer draft model on the decoding
sequences, without a second per-step overhead).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from ..errors import InputError
from .base import RankLoad
from .stretch import DecodeStretch

#: Default per-position acceptance rate: DeepSeek-V3 report §5.4.3, "the acceptance rate of the second token
#: prediction ranges between 85% and 90%" (low end taken).
DEFAULT_ACCEPTANCE = 0.85


@dataclass(frozen=True)
class SpecDecode:
    """``draft_tokens`` k >= 1 and per-position acceptance rates (length k, each in [0, 1])."""

    draft_tokens: int
    acceptance: tuple[float, ...]

    def __post_init__(self):
        if not isinstance(self.draft_tokens, int) or self.draft_tokens < 1:
            raise InputError(f"--mtp = {self.draft_tokens!r} must be an integer >= 1 (draft tokens per step)")
        if len(self.acceptance) != self.draft_tokens:
            raise InputError(f"--mtp-acceptance: {len(self.acceptance)} rates given for --mtp {self.draft_tokens} "
                             f"(give one rate, or one per draft position)")
        for a in self.acceptance:
            if not 0.0 <= a <= 1.0:
                raise InputError(f"--mtp-acceptance: rate {a} must be in [0, 1]")

    @property
    def tokens_per_step(self) -> float:
        """Mean tokens emitted per sequence per step, ``1 + sum_i prod_{j<=i} a_j`` (module docstring)."""
        tau, p = 1.0, 1.0
        for a in self.acceptance:
            p *= a
            tau += p
        return tau

    @property
    def query_tokens(self) -> int:
        """Tokens the verify pass runs per decoding sequence: 1 + k."""
        return 1 + self.draft_tokens

    @classmethod
    def parse(cls, draft_tokens: int, acceptance: str | float | None = None) -> "SpecDecode":
        """From the CLI/spec form: acceptance ``None`` (default rate), ``0.8`` (every position), ``0.9,0.7,0.5``
        (per position) or ``len:2.4`` (mean tokens per step; one rate a solving tau(a, a, ...) = 2.4)."""
        if not isinstance(draft_tokens, int) or draft_tokens < 1:
            raise InputError(f"--mtp = {draft_tokens!r} must be an integer >= 1 (draft tokens per step)")
        if acceptance is None:
            return cls(draft_tokens, (DEFAULT_ACCEPTANCE,) * draft_tokens)
        if isinstance(acceptance, (int, float)):
            return cls(draft_tokens, (float(acceptance),) * draft_tokens)
        text = str(acceptance).strip()
        try:
            if text.startswith("len:"):
                tau = float(text[4:])
                if not 1.0 <= tau <= draft_tokens + 1:
                    raise InputError(f"--mtp-acceptance {text}: mean tokens per step must be in [1, {draft_tokens + 1}] "
                                     f"for --mtp {draft_tokens}")
                return cls(draft_tokens, (_rate_for_length(tau, draft_tokens),) * draft_tokens)
            rates = tuple(float(x) for x in text.split(","))
        except ValueError:
            raise InputError(f"--mtp-acceptance {text!r}: expected a rate (0.85), rates per position (0.9,0.7) "
                             f"or a mean accepted length (len:2.4)") from None
        if len(rates) == 1:
            rates = rates * draft_tokens
        return cls(draft_tokens, rates)

    def describe(self) -> str:
        rates = ",".join(f"{a:g}" for a in self.acceptance)
        return f"MTP k={self.draft_tokens} (acceptance {rates}: {self.tokens_per_step:.2f} tokens/step)"


def _rate_for_length(tau: float, k: int) -> float:
    """The one per-position rate a with 1 + a + a^2 + ... + a^k = tau (bisection; tau in [1, k + 1])."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if sum(mid**i for i in range(k + 1)) < tau:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def draft_model(model):
    """The MTP draft module as a one-layer model: a copy of the model's last layer (DeepSeek-V3 §2.2: one
    Transformer block sharing the embedding and output head; for DeepSeek-V3 an MLA + MoE layer)."""
    return model.with_layers((model.layers[-1],), name=f"{model.name}-mtp-draft")


def draft_eh_proj_op(model, plan):
    """The draft's ``2h -> h`` projection of [hidden; embedding] (DeepSeek-V3 §2.2, ``M_k``), per draft pass.
    Replicated on every GPU of the rank (it is small), stored at the model's weight dtype."""
    from ..models.spec import dtype_bytes
    from .ops import F_D, _gemm

    h = model.hidden_size
    prec = model.precision
    return _gemm("mtp.eh_proj", "mtp", 1, {F_D: 1.0}, 2 * h, h, dtype_bytes(prec.class_weights("dense")),
                 prec.class_compute("dense"), gate=F_D)


class SpecDecodeStepCost:
    """A step cost for speculative decoding: ``verify`` is the target's step cost compiled with
    ``decode_query_tokens = 1 + k``; ``draft`` the one-layer draft's step cost with zero per-step overhead
    (one draft pass); see the module docstring for how the two combine."""

    def __init__(self, verify, draft, spec: SpecDecode):
        self.verify, self.draft, self.spec = verify, draft, spec
        self.dp = verify.dp
        self._q = spec.query_tokens
        self._k = spec.draft_tokens
        self._inv_tau = 1.0 / spec.tokens_per_step

    def real_step(self, loads: Sequence[RankLoad]) -> float:
        """Seconds of one real speculative step (verify 1 + k tokens per decode, k draft passes)."""
        q = self._q
        verify = self.verify.step_time([RankLoad(l[0], l[1], l[2], l[3] * q, l[4] * q) for l in loads])
        if not any(l[3] for l in loads):
            return verify
        return verify + self._k * self.draft.step_time([RankLoad(0, 0.0, 0, l[3], l[4]) for l in loads])

    def step_time(self, loads: Sequence[RankLoad]) -> float:
        real = self.real_step(loads)
        if not any(l[3] for l in loads):
            return real
        if not any(l[0] for l in loads):
            return real * self._inv_tau
        prefill = self.verify.step_time([RankLoad(l[0], l[1], l[2], 0, 0) for l in loads])
        return prefill + (real - prefill) * self._inv_tau

    def decode_stretch(self, decode_seqs: Sequence[int], decode_kv_tokens: Sequence[int]) -> DecodeStretch:
        # verify: q query tokens per sequence, q * kv pairs; growing by q * d per engine step = q * (kv + j d)
        q, k, s = self._q, self._k, self._inv_tau
        v = self.verify.decode_stretch([d * q for d in decode_seqs], [kv * q for kv in decode_kv_tokens]).lines
        dr = self.draft.decode_stretch(decode_seqs, decode_kv_tokens).lines
        # the sum of two upper envelopes is the envelope of all pairwise sums; a positive scale commutes with max
        return DecodeStretch(0.0, [((a1 + k * a2) * s, (b1 + k * b2) * s) for a1, b1 in v for a2, b2 in dr])


def build_spec_decode_cost(model, hw, plan, spec: SpecDecode, *, expert_imbalance: float = 1.0, verify_factory=None,
                           measured=None):
    """(verify step cost, draft step cost) compiled for ``spec``. ``verify_factory(decode_query_tokens)``
    builds the verify cost (so that two-batch overlap can wrap it); default: a plain compiled cost.
    ``measured``: measured op tables (sim/cost/measured.py), or None for the roofline."""
    from .model import CostModel
    from .step import CompiledStepCost

    if verify_factory is None:
        verify = CompiledStepCost(CostModel(model, hw, plan, expert_imbalance=expert_imbalance,
                                            decode_query_tokens=spec.query_tokens, measured=measured))
    else:
        verify = verify_factory(spec.query_tokens)
    draft_cm = CostModel(draft_model(model), replace(hw, step_overhead_s=0.0, seq_overhead_s=0.0), replace(plan, pp=1),
                         expert_imbalance=expert_imbalance, measured=measured)
    draft_cm.ops.append(draft_eh_proj_op(model, plan))
    return SpecDecodeStepCost(verify, CompiledStepCost(draft_cm), spec)


__all__ = ["DEFAULT_ACCEPTANCE", "SpecDecode", "SpecDecodeStepCost", "build_spec_decode_cost", "draft_model"]

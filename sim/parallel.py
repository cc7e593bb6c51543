"""Parallel plans: how one serving instance spreads a model over GPUs.

An instance has ``dp`` attention-data-parallel ranks, each a tensor-parallel group of ``tp`` GPUs, and
``pp`` pipeline stages; all ``tp * dp`` GPUs of a stage form one expert-parallel group of size ``ep``,
with ``moe_tp = tp * dp / ep`` GPUs sharing each expert slot (the AIConfigurator constraint
``gpus = tp * dp * pp = moe_tp * ep * pp``). GPUs are numbered rank-major and packed into NVLink
domains, so a collective leaves the domain exactly when its group is larger than the domain.

Redundant experts: the EP group may hold ``E + R`` expert slots, ``R`` of them copies of hot experts, so
that EP need not divide ``E`` (DeepSeek's EPLB: 32 redundant experts in prefill and decode, open-infra-index
day-6 overview; SGLang ``--ep-num-redundant-experts``). ``ep`` must divide ``E + R``; every slot holds a full
expert, so memory and weight traffic count the copies.

Attention DP and the tensors outside attention and the routed experts: each attention-DP rank holds its own
copy of a tensor *replicated* over DP (split over its ``tp`` GPUs only), or the tensor is *sharded over the
whole group* of ``tp * dp`` GPUs of a stage (each GPU holds ``1 / (tp * dp)``; the tokens of all ranks are
gathered for it). ``dp_sharded`` names the classes sharded over the group (:data:`DP_SHARDABLE`); the
defaults follow the frameworks (:data:`FRAMEWORK_DP_SHARDED`, docs/MODELING.md §3a):

* SGLang (``--enable-dp-attention``, DeepEP all-to-all): the embedding is replicated
  (``VocabParallelEmbedding(enable_tp=not is_dp_attention_enabled())``); the LM head is vocab-parallel over
  the whole TP group unless ``--enable-dp-lm-head`` (then over the attention-TP group: replicated over
  DP); the dense MLP layers are split over ``--moe-dense-tp-size``, default the whole TP group; the shared
  experts are replicated when the all-to-all backend is DeepEP (``tp_size=1``).
* TensorRT-LLM (``enable_attention_dp``): the dense MLP and the shared experts use DP instead of TP
  ("If using attention DP, the MLP also uses DP instead of TP", ``_compute_mlp_tp_size``,
  ``_compute_shared_expert_tp_size``: tp size 1); the LM head is replicated unless
  ``enable_lm_head_tp_in_adp`` (default False); the embedding is built without a TP mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InputError
from .hw import HwProfile


#: tensor classes that may be sharded over the whole tp*dp group under attention DP
DP_SHARDABLE = ("embedding", "lm_head", "shared_experts", "dense_ffn")
#: which classes each framework shards over the group by default (module docstring gives the sources)
FRAMEWORK_DP_SHARDED = {
    "sglang": frozenset({"lm_head", "dense_ffn"}),
    "trtllm": frozenset(),
}
#: the plan default: SGLang's (the project's dispatch conventions also follow SGLang + DeepEP)
DEFAULT_DP_SHARDED = FRAMEWORK_DP_SHARDED["sglang"]


def parse_dp_sharded(text: str, where: str = "--dp-sharded") -> frozenset:
    """A framework name (``sglang``, ``trtllm``), ``none``, ``all``, or a comma list of :data:`DP_SHARDABLE`."""
    t = text.strip().lower()
    if t in FRAMEWORK_DP_SHARDED:
        return FRAMEWORK_DP_SHARDED[t]
    if t in ("none", ""):
        return frozenset()
    if t == "all":
        return frozenset(DP_SHARDABLE)
    names = frozenset(x.strip() for x in t.split(","))
    bad = sorted(names - set(DP_SHARDABLE))
    if bad:
        raise InputError(f"{where}: {', '.join(bad)} unknown (allowed: {', '.join(FRAMEWORK_DP_SHARDED)}, none, all, "
                         f"or a comma list of {', '.join(DP_SHARDABLE)})")
    return names


@dataclass(frozen=True)
class ParallelPlan:
    """TP x attention-DP x PP GPUs per instance, EP over the tp*dp GPUs of a stage."""

    tp: int = 1
    dp: int = 1
    ep: int = 1
    pp: int = 1
    #: redundant expert slots R (copies of hot experts) on top of the model's routed experts
    redundant_experts: int = 0
    #: tensor classes sharded over the tp*dp group rather than replicated over DP (:data:`DP_SHARDABLE`)
    dp_sharded: frozenset = field(default=DEFAULT_DP_SHARDED)

    def shard(self, tensor_class: str) -> int:
        """GPUs one copy of ``tensor_class`` is split over: ``tp * dp`` if sharded over the group, else ``tp``."""
        return self.gpus_per_stage if tensor_class in self.dp_sharded else self.tp

    @property
    def gpus_per_stage(self) -> int:
        return self.tp * self.dp

    @property
    def num_gpus(self) -> int:
        """GPUs of one instance."""
        return self.tp * self.dp * self.pp

    def expert_slots(self, num_experts: int) -> int:
        """Expert slots over the EP group: the model's routed experts plus the redundant copies."""
        return num_experts + self.redundant_experts

    @property
    def moe_tp(self) -> int:
        """GPUs sharing one expert slot (tensor-parallel experts); 1 for pure EP."""
        return self.gpus_per_stage // self.ep

    def validate(self, num_experts: int | None, hw: HwProfile | None = None, max_gpus: int | None = None,
                 num_layers: int | None = None, where: str = "plan", flag_prefix: str = "") -> "ParallelPlan":
        """Reject a plan that cannot work, with the reason (flags named ``--{flag_prefix}tp`` etc.)."""
        f = "--" + flag_prefix
        for name in ("tp", "dp", "ep", "pp"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{where}: {f}{name} = {value!r} must be an integer >= 1")
        if self.gpus_per_stage % self.ep:
            raise InputError(f"{where}: {f}ep {self.ep} must divide tp*dp = {self.gpus_per_stage} (EP spans the GPUs of a stage)")
        bad = set(self.dp_sharded) - set(DP_SHARDABLE)
        if bad:
            raise InputError(f"{where}: dp_sharded {sorted(bad)} (allowed: {', '.join(DP_SHARDABLE)})")
        r = self.redundant_experts
        if not isinstance(r, int) or r < 0:
            raise InputError(f"{where}: {f}redundant-experts = {r!r} must be an integer >= 0")
        if num_experts is None and r:
            raise InputError(f"{where}: {f}redundant-experts {r} given but the model has no MoE layers")
        if num_experts is not None and (num_experts + r) % self.ep:
            extra = f" + {r} redundant" if r else ""
            raise InputError(f"{where}: {f}ep {self.ep} does not divide the {num_experts}{extra} expert slots "
                             f"(add redundant experts with {f}redundant-experts so that ep divides the slots)")
        if num_experts is None and self.ep != 1:
            raise InputError(f"{where}: {f}ep {self.ep} given but the model has no MoE layers")
        if num_layers is not None and self.pp > num_layers:
            raise InputError(f"{where}: {f}pp {self.pp} exceeds the model's {num_layers} layers")
        if max_gpus is not None and self.num_gpus > max_gpus:
            raise InputError(f"{where}: needs {self.num_gpus} GPUs (tp*dp*pp), more than the budget of {max_gpus}")
        if hw is not None and self.tp > hw.nvlink_domain_size:
            raise InputError(f"{where}: {f}tp {self.tp} exceeds the NVLink domain of {hw.nvlink_domain_size} GPUs ({hw.name})")
        return self

    # ---- placement on NVLink domains -------------------------------------------------------------
    @staticmethod
    def remote_fraction(group: int, domain: int) -> float:
        """Fraction of a GPU's peers in a group of ``group`` contiguous GPUs that sit outside its NVLink
        domain of ``domain`` GPUs (0 when the group fits in a domain)."""
        if group <= domain or group <= 1:
            return 0.0
        return (group - domain) / (group - 1)

    def placement(self, hw: HwProfile) -> dict:
        """Which collectives leave the NVLink domain (for `lmsim cost` and the docs)."""
        d = hw.nvlink_domain_size
        return {
            "tp_allreduce": "nvlink" if self.tp <= d else "scale-out",
            "ep_alltoall": "nvlink" if self.gpus_per_stage <= d else f"mixed ({self.remote_fraction(self.gpus_per_stage, d):.0%} of peers over scale-out)",
            "pp_p2p": "none" if self.pp == 1 else ("nvlink" if self.num_gpus <= d else "scale-out"),
            "nvlink_domain_size": d,
        }

    def describe(self) -> str:
        s = f"TP{self.tp} x DP{self.dp}"
        if self.pp > 1:
            s += f" x PP{self.pp}"
        red = f", +{self.redundant_experts} redundant experts" if self.redundant_experts else ""
        return s + f" (EP{self.ep}, MoE-TP{self.moe_tp}{red}) = {self.num_gpus} GPUs"

"""Hardware profiles: one GPU system (a GPU, its memory, its links) as SI numbers.

A profile is read from ``hwprofiles/<name>.yaml`` (bundled) or from any YAML path a user passes with
``--hw path.yaml``. Every value in the YAML carries its source. See ``hwprofiles/README.md`` for the schema.
All fields here are SI: FLOP/s, bytes, bytes/s, seconds; bandwidths are per GPU and per direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HwProfile:
    """One GPU system, in SI units. Bandwidths are per GPU, per direction."""

    name: str
    description: str
    #: dense (no 2:4 sparsity) tensor-core peak, FLOP/s, keyed by dtype: "bf16", "fp8", "fp4" (absent = unsupported)
    peak_flops: dict[str, float]
    #: HBM capacity per GPU, bytes (usable as reported by nvidia-smi where known)
    hbm_capacity_bytes: float
    #: HBM bandwidth per GPU, bytes/s
    hbm_bandwidth_bytes_per_s: float
    #: scale-up (NVLink) bandwidth per GPU per direction, bytes/s
    nvlink_bandwidth_bytes_per_s: float
    #: GPUs in one NVLink domain (8 for HGX, 72 for NVL72)
    nvlink_domain_size: int
    #: scale-out (InfiniBand/Ethernet NIC) bandwidth per GPU per direction, bytes/s
    scaleout_bandwidth_bytes_per_s: float
    #: fixed latency of one collective step inside the NVLink domain, seconds
    nvlink_latency_s: float
    #: fixed latency of one collective step across the scale-out network, seconds
    scaleout_latency_s: float
    #: fixed latency added to every memory-bound op (kernel launch + ramp), seconds
    mem_op_latency_s: float
    #: achievable fraction of dense peak for large GEMMs and attention (0, 1]
    compute_efficiency: float
    #: achievable fraction of HBM bandwidth for streaming ops (0, 1]
    memory_efficiency: float
    #: achievable fraction of link bandwidth for collectives (0, 1]
    comm_efficiency: float
    #: fixed per-engine-step overhead (scheduler, launch, sampling), seconds
    step_overhead_s: float
    #: HBM kept free per GPU by the runtime (CUDA context, NCCL buffers, fragmentation), bytes
    runtime_reserve_bytes: float
    #: GPU thermal design power, watts (for energy figures; 0 = unknown)
    tdp_w: float = 0.0
    #: per-engine-step cost per running (decoding) sequence of a rank, seconds, spent in series with the GPU
    #: work: the CPU side of scheduling, input preparation, sampling bookkeeping and output processing of an
    #: engine that does not overlap it with the next step (0: overlapped or negligible)
    seq_overhead_s: float = 0.0
    #: efficiencies of weight-only INT4 grouped GEMMs (W4A16, BF16 math: vLLM's Marlin MoE kernels) against the
    #: BF16 dense peak and the HBM bandwidth; 0 = not measured, the general efficiencies apply
    w4a16_compute_efficiency: float = 0.0
    w4a16_memory_efficiency: float = 0.0
    #: scale-up fabric: "switch" (NVLink/NVSwitch: every GPU reaches any peer at the full per-GPU bandwidth) or
    #: "full-mesh" (AMD Infinity Fabric/xGMI: one direct link per peer, so a collective among n GPUs of the
    #: domain gets (n - 1) links' bandwidth, at most the per-GPU aggregate)
    scaleup_fabric: str = "switch"
    #: full-mesh: bandwidth of the link to ONE peer, bytes/s per direction (0 for a switch)
    scaleup_peer_bandwidth_bytes_per_s: float = 0.0
    #: field name -> source string, for provenance display
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    # fabric-neutral names of the scale-up fields (the attributes keep their historical nvlink_* names)
    @property
    def scaleup_bandwidth_bytes_per_s(self) -> float:
        """Scale-up bandwidth per GPU per direction, all peers together (bytes/s)."""
        return self.nvlink_bandwidth_bytes_per_s

    @property
    def scaleup_domain_size(self) -> int:
        """GPUs in one scale-up domain (NVLink domain, xGMI hive)."""
        return self.nvlink_domain_size

    @property
    def scaleup_latency_s(self) -> float:
        return self.nvlink_latency_s

    def scaleup_bandwidth(self, group: int) -> float:
        """Bytes/s per direction one GPU gets for a collective among ``group`` GPUs of its scale-up domain.

        A switch gives every GPU its full bandwidth whatever the group; a full mesh has one link per peer, so
        only ``min(group, domain) - 1`` links carry the collective (a TP2 all-reduce on MI300X uses one
        xGMI link, an 8-GPU all-to-all all seven)."""
        if self.scaleup_fabric != "full-mesh" or group <= 0:
            return self.nvlink_bandwidth_bytes_per_s
        peers = max(1, min(group, self.nvlink_domain_size) - 1)
        return min(self.nvlink_bandwidth_bytes_per_s, peers * self.scaleup_peer_bandwidth_bytes_per_s)

    def flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``; raises InputError if the GPU has no tensor cores for it."""
        from .errors import InputError

        value = self.peak_flops.get(dtype)
        if not value:
            raise InputError(f"hardware {self.name}: no dense peak for dtype {dtype!r} (has: {', '.join(sorted(self.peak_flops))})")
        return value

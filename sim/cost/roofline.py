"""The one place where performance math lives: time of an op from a hardware profile.

A compute op takes ``max(FLOPs / (peak * compute_efficiency), bytes / (HBM bandwidth * memory_efficiency))
+ mem_op_latency``; a communication op takes ``bytes / (link bandwidth * comm_efficiency) + link latency``,
with NVLink and scale-out traffic on separate links running concurrently (the slower one bounds).
Efficiencies and latencies come from the profile (hwprofiles/*.yaml, each with its source).
"""

from __future__ import annotations

from ..hw import HwProfile


#: The op dtype of a weight-only INT4 grouped GEMM (INT4 weights dequantised to BF16 in the kernel, BF16 math)
W4A16 = "w4a16"


class Roofline:
    """Per-second rates of one hardware profile, precomputed."""

    def __init__(self, hw: HwProfile):
        self.hw = hw
        self.inv_mem = 1.0 / (hw.hbm_bandwidth_bytes_per_s * hw.memory_efficiency)
        self.inv_nvl = 1.0 / (hw.nvlink_bandwidth_bytes_per_s * hw.comm_efficiency)
        self.inv_so = 1.0 / (hw.scaleout_bandwidth_bytes_per_s * hw.comm_efficiency)
        self.op_latency = hw.mem_op_latency_s

    def inv_flops(self, dtype: str) -> float:
        """Seconds per FLOP at the achievable peak of ``dtype`` (falls back to the next wider dtype the GPU
        supports: FP4 math on a GPU without FP4 runs at its FP8 rate)."""
        for dt in {"fp4": ("fp4", "fp8", "bf16"), "fp8": ("fp8", "bf16")}.get(dtype, ("bf16",)):
            if self.hw.peak_flops.get(dt):
                return 1.0 / (self.hw.peak_flops[dt] * self.hw.compute_efficiency)
        return 1.0 / (self.hw.flops("bf16") * self.hw.compute_efficiency)

    def compute_time(self, flops: float, mem_bytes: float, dtype: str) -> tuple[float, str]:
        """(seconds, bound) of a compute/memory op; bound is 'compute' or 'memory'. ``dtype`` ``w4a16`` is a
        weight-only INT4 grouped GEMM (BF16 math) at the profile's W4A16 efficiencies where it has them."""
        if dtype == W4A16:
            hw = self.hw
            ce = hw.w4a16_compute_efficiency or hw.compute_efficiency
            me = hw.w4a16_memory_efficiency or hw.memory_efficiency
            tc, tm = flops / (hw.flops("bf16") * ce), mem_bytes / (hw.hbm_bandwidth_bytes_per_s * me)
            return (max(tc, tm) + self.op_latency, "compute" if tc >= tm else "memory")
        tc, tm = flops * self.inv_flops(dtype), mem_bytes * self.inv_mem
        return (max(tc, tm) + self.op_latency, "compute" if tc >= tm else "memory")

    def inv_scaleup(self, group: int = 0) -> float:
        """Seconds per byte over the scale-up fabric for a collective among ``group`` GPUs (0: unknown, the
        full per-GPU bandwidth). On a full mesh only the links to the group's peers carry it
        (:meth:`~latentmoe_sim.hw.HwProfile.scaleup_bandwidth`)."""
        if not group or self.hw.scaleup_fabric != "full-mesh":
            return self.inv_nvl
        return 1.0 / (self.hw.scaleup_bandwidth(group) * self.hw.comm_efficiency)

    def comm_time(self, nvlink_bytes: float, scaleout_bytes: float, group: int = 0) -> tuple[float, str]:
        """(seconds, bound) of a collective among ``group`` GPUs whose per-GPU traffic splits over the scale-up
        fabric (NVLink, Infinity Fabric) and scale-out."""
        tn, ts = nvlink_bytes * self.inv_scaleup(group), scaleout_bytes * self.inv_so
        if ts > 0.0:
            return (max(tn, ts) + self.hw.scaleout_latency_s, "comm:scale-out" if ts >= tn else "comm:nvlink")
        return (tn + self.hw.nvlink_latency_s, "comm:nvlink")

    def ridge_point(self, dtype: str) -> float:
        """FLOPs per byte at which a kernel turns compute-bound (peaks, no efficiencies)."""
        return self.hw.flops(dtype) / self.hw.hbm_bandwidth_bytes_per_s

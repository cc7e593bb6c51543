"""Speed of the serving engine: CPU time per simulated operating point, stretch mode vs step by step.

Two points, each with >= 500 requests completed after warm-up:

* decode-heavy, aggregated: closed loop, concurrency 64, ISL 1024, OSL 8192, one instance;
* prefill-heavy, disaggregated: closed loop, concurrency 64, ISL 8192, OSL 1024, two prefill instances and
  one decode instance.

The instance costs are Kimi-K2-1T from ``build_instance_cost`` (``--cost real``, the default when the cost
model is importable) or a LinearStepCost of the same magnitudes (``--cost linear``: ~20 ms decode steps),
which isolates the engine's own CPU time from the cost model's. CPU time is ``time.process_time``, best of
``--repeat`` runs. ``--profile`` prints the top of a cProfile of each point (stretch mode).

    python benchmarks/bench_engine.py [--cost real|linear] [--repeat 5] [--profile] [--open-loop]

``--open-loop`` runs the same two points with Poisson arrivals (0.25 and 2 requests/s): every arrival then
lands in a running decode stretch, which is cut, and the batch changes twice per request.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import dataclasses

import numpy as np

from latentmoe_sim.cost.base import InstanceCost, LinearStepCost
from latentmoe_sim.engine import simulate_aggregated, simulate_disaggregated
from latentmoe_sim.workloads import ClosedLoop, RequestSpecs

NUM_REQUESTS = 800  # the steady window (10 % warm-up, 10 % cool-down) keeps >= 500 measured requests


def closed_loop(isl: int, osl: int, n: int = NUM_REQUESTS, concurrency: int = 64) -> RequestSpecs:
    return RequestSpecs(np.full(n, np.nan), np.full(n, isl), np.full(n, osl), ClosedLoop(concurrency))


def linear_costs() -> tuple[InstanceCost, InstanceCost]:
    """Kimi-K2-like magnitudes: ~20 ms decode step at batch 8/rank and 3k context, ~0.35 s for an 8k prefill."""
    links = dict(
        kv_bytes_per_token=70272.0,
        nvlink_bandwidth_bytes_per_s=900e9 * 0.8,
        scaleout_bandwidth_bytes_per_s=50e9 * 0.8,
        nvlink_latency_s=3e-6,
        scaleout_latency_s=10e-6,
        nvlink_domain_size=72,
    )
    cost = LinearStepCost(fixed_s=0.015, per_token_s=4e-5, per_pair_s=1.0e-9, dp=8)
    inst = InstanceCost(cost, dp=8, num_gpus=8, kv_capacity_tokens=745_568, **links)
    return inst, inst


def real_costs() -> tuple[InstanceCost, InstanceCost]:
    from latentmoe_sim.cost import build_instance_cost
    from latentmoe_sim.hwprofile_io import load_hw
    from latentmoe_sim.models.catalog import load_model
    from latentmoe_sim.parallel import ParallelPlan

    model, hw = load_model("kimi-k2-1t"), load_hw("gb200_nvl72")
    prefill = build_instance_cost(model, hw, ParallelPlan(tp=1, dp=8, ep=8), max_batch_tokens=8192)
    decode = build_instance_cost(model, hw, ParallelPlan(tp=1, dp=8, ep=8))
    return prefill, decode


def poisson(isl: int, osl: int, rate: float, n: int = NUM_REQUESTS) -> RequestSpecs:
    from latentmoe_sim.workloads import Poisson

    arrivals = Poisson(rate).arrival_times(np.random.default_rng(1), n)
    return RequestSpecs(arrivals, np.full(n, isl), np.full(n, osl))


def points(prefill: InstanceCost, decode: InstanceCost, open_loop: bool = False):
    if open_loop:  # every arrival lands in a running stretch: the costly case (a cut and two new stretches)
        decode_heavy = poisson(1024, 8192, 0.25)
        prefill_heavy = poisson(8192, 1024, 2.0)
        return {
            "decode-heavy aggregated (Poisson 0.25/s, 1024/8192, 1 x 8 GPUs)": lambda step_by_step: simulate_aggregated(
                decode, 1, decode_heavy, step_by_step=step_by_step
            ),
            "prefill-heavy disaggregated (Poisson 2/s, 8192/1024, 2P + 1D x 8 GPUs)": lambda step_by_step: (
                simulate_disaggregated(prefill, 2, decode, 1, prefill_heavy, step_by_step=step_by_step)
            ),
        }
    decode_heavy = closed_loop(1024, 8192)
    prefill_heavy = closed_loop(8192, 1024)
    return {
        "decode-heavy aggregated (C=64, 1024/8192, 1 x 8 GPUs)": lambda step_by_step: simulate_aggregated(
            decode, 1, decode_heavy, step_by_step=step_by_step
        ),
        "prefill-heavy disaggregated (C=64, 8192/1024, 2P + 1D x 8 GPUs)": lambda step_by_step: simulate_disaggregated(
            prefill, 2, decode, 1, prefill_heavy, step_by_step=step_by_step
        ),
    }


class TimedStepCost:
    """Wraps a step cost and accumulates the CPU time spent inside it (to split engine from cost model)."""

    def __init__(self, inner, acc: dict):
        self.inner, self.dp, self.acc = inner, inner.dp, acc

    def step_time(self, loads):
        t0 = time.process_time()
        out = self.inner.step_time(loads)
        self.acc["step_time"] += time.process_time() - t0
        self.acc["step_time_calls"] += 1
        return out

    def decode_stretch(self, seqs, kvs):
        t0 = time.process_time()
        out = self.inner.decode_stretch(seqs, kvs)
        self.acc["decode_stretch"] += time.process_time() - t0
        self.acc["decode_stretch_calls"] += 1
        return out


def cost_split(prefill: InstanceCost, decode: InstanceCost, repeat: int, open_loop: bool) -> None:
    """CPU inside the cost model (step_time, decode_stretch) vs in the engine, per point (stretch mode)."""
    acc: dict = {}
    timed = [dataclasses.replace(c, step_cost=TimedStepCost(c.step_cost, acc)) for c in (prefill, decode)]
    for name, run in points(*timed, open_loop=open_loop).items():
        best = None
        for _ in range(repeat):
            acc.update(step_time=0.0, step_time_calls=0, decode_stretch=0.0, decode_stretch_calls=0)
            t0 = time.process_time()
            run(False)
            total = time.process_time() - t0
            if best is None or total < best[0]:
                best = (total, dict(acc))
        total, a = best
        engine = total - a["step_time"] - a["decode_stretch"]
        print(f"  {name.split(' (')[0]}: total {total * 1e3:.2f} ms = engine {engine * 1e3:.2f} ms"
              f" + step_time {a['step_time'] * 1e3:.2f} ms ({a['step_time_calls']} calls)"
              f" + decode_stretch {a['decode_stretch'] * 1e3:.2f} ms ({a['decode_stretch_calls']} calls)")


def best_cpu(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cost", choices=("real", "linear"), default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--open-loop", action="store_true", help="Poisson arrivals instead of the closed loop")
    args = ap.parse_args()
    kind = args.cost
    if kind is None:
        try:
            import latentmoe_sim.cost as c

            kind = "real" if hasattr(c, "build_instance_cost") else "linear"
        except ImportError:
            kind = "linear"
    prefill, decode = real_costs() if kind == "real" else linear_costs()
    print(f"instance costs: {kind}; CPU = time.process_time, best of {args.repeat}")
    for name, run in points(prefill, decode, args.open_loop).items():
        cpu, res = best_cpu(lambda: run(False), args.repeat)
        cpu_sbs, res_sbs = best_cpu(lambda: run(True), max(1, args.repeat // 2))
        s = res.summary()
        finish, finish_sbs = res.records["finish_s"].to_numpy(), res_sbs.records["finish_s"].to_numpy()
        same = np.allclose(finish, finish_sbs, rtol=1e-9, atol=0)
        print(f"\n{name}")
        print(f"  requests {res.records.height} (measured after warm-up {s['measured_requests']}), "
              f"simulated {res.sim_end_s:.1f} s, {res.steps} engine steps, {res.events} events")
        print(f"  stretch mode : {cpu * 1e3:8.2f} ms CPU  {res.steps / cpu:12,.0f} steps/s  "
              f"{res.records.height / cpu:10,.0f} requests/s")
        print(f"  step by step : {cpu_sbs * 1e3:8.2f} ms CPU  {res_sbs.steps / cpu_sbs:12,.0f} steps/s  "
              f"{res_sbs.records.height / cpu_sbs:10,.0f} requests/s  ({res_sbs.events} events)")
        print(f"  speed-up {cpu_sbs / cpu:.1f}x; same records: {same}; "
              f"tokens/s/GPU {s['output_tokens_per_s_per_gpu']:.1f}, TTFT p50 {s['ttft_p50_s']:.3f} s, "
              f"TPOT p50 {s['tpot_p50_s'] * 1e3:.2f} ms")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            run(False)
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(14)
            print("\n".join(out.getvalue().splitlines()[:40]))
    if args.profile:
        print("\nwhere the CPU goes (stretch mode; timing wrappers add a little):")
        cost_split(prefill, decode, args.repeat, args.open_loop)


if __name__ == "__main__":
    main()

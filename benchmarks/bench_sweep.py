"""Sweep speed: points/s of each executor on the quickstart and on a slice of Figure 7, the projected wall time
of the whole Figure 7 spec, and the sweep machinery's overhead per point.

    python benchmarks/bench_sweep.py [--workers 2] [--executors serial,process,ray] [--fig7-points 2000]
                                     [--skip-quickstart] [--json]

Each (spec, executor) pair runs into a fresh temporary folder (deleted afterwards). points/s counts every
point, including infeasible ones (they cost a memory check only). The projection is the fig7 point count
divided by the slice's points/s: the slice is an evenly strided sample of the whole spec (``--max-points``),
so its mix of cheap and expensive points is the spec's. Overhead per point = (executor wall time - the sum of
run_point wall times) / points, for the serial executor (no parallelism to hide it): batching, shard writes,
progress, store bookkeeping. A second figure is run_point's own cost outside the engine and the metrics
summary (row, id, workload, stopping rule), per point, in process. Absolute timings depend on the machine and its load; compare within one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench(spec_path: Path, executor: str, workers: int, max_points: int | None) -> dict:
    from latentmoe_sim.schema.experiment import load_experiment
    from latentmoe_sim.sweep import Store, expand, read_rows, run_sweep, take

    spec = load_experiment(str(spec_path))
    t0 = time.perf_counter()
    all_points = expand(spec)
    expand_s = time.perf_counter() - t0
    points = take(all_points, max_points)
    tmp = Path(tempfile.mkdtemp(prefix="lmsim-bench-"))
    try:
        res = run_sweep(points, Store(tmp / "out", spec.model_dump_json(), spec.name), executor=executor,
                        workers=workers, progress=False)
        rows = read_rows(tmp / "out")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    point_wall = float(rows["wall_s"].sum())
    out = {"spec": spec.name, "executor": executor, "workers": workers, "spec_points": len(all_points),
           "points": len(points), "wall_s": res["wall_s"], "points_per_s": len(points) / res["wall_s"],
           "expand_s": expand_s, "ok": int((rows["status"] == "ok").sum()),
           "sum_point_wall_s": point_wall}
    if executor == "serial":
        out["overhead_ms_per_point"] = 1e3 * (res["wall_s"] - point_wall) / len(points)
    return out


def run_point_overhead(spec_path: Path, n: int = 100) -> dict:
    """Milliseconds per point that run_point spends outside the engine and the metrics summary (building the
    point's row, id, workload, deployment lookups, stopping-rule checks), over the first ``n`` points, in process."""
    import latentmoe_sim.engine as engine
    from latentmoe_sim.engine.aggregated import SimResult
    from latentmoe_sim.point import run_point
    from latentmoe_sim.schema.experiment import load_experiment
    from latentmoe_sim.sweep import expand

    inside = [0.0]

    def timed(fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                inside[0] += time.perf_counter() - t
        return wrapper

    saved = (engine.simulate_aggregated, engine.simulate_disaggregated, SimResult.summary)
    engine.simulate_aggregated, engine.simulate_disaggregated = timed(saved[0]), timed(saved[1])
    SimResult.summary = timed(saved[2])
    try:
        points = [p for p in expand(load_experiment(str(spec_path)))][:n]
        for p in points[:5]:  # warm the caches and imports
            run_point(p)
        inside[0] = 0.0
        t0 = time.perf_counter()
        runs = sum(run_point(p).get("runs", 0) for p in points)
        total = time.perf_counter() - t0
    finally:
        engine.simulate_aggregated, engine.simulate_disaggregated, SimResult.summary = saved
    return {"points": len(points), "runs": runs, "total_s": total, "engine_and_summary_s": inside[0],
            "run_point_overhead_ms_per_point": 1e3 * (total - inside[0]) / len(points)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executors", default="serial,process,ray")
    ap.add_argument("--fig7-points", type=int, default=2000, help="size of the fig7 slice (0 skips it)")
    ap.add_argument("--skip-quickstart", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    runs = [] if args.skip_quickstart else [(ROOT / "experiments" / "quickstart.yaml", None)]
    if args.fig7_points:
        runs.append((ROOT / "experiments" / "fig7.yaml", args.fig7_points))
    for spec, n in runs:
        for ex in args.executors.split(","):
            r = bench(spec, ex, args.workers, n)
            if r["spec"] == "fig7":
                r["projected_fig7_wall_s"] = r["spec_points"] / r["points_per_s"]
            results.append(r)
            if not args.json:
                extra = f", projected fig7 ({r['spec_points']} points): {r['projected_fig7_wall_s'] / 3600:.1f} h" \
                    if "projected_fig7_wall_s" in r else ""
                ovh = f", overhead {r['overhead_ms_per_point']:.2f} ms/point" if "overhead_ms_per_point" in r else ""
                print(f"{r['spec']:10s} {ex:8s} x{args.workers}: {r['points']} points ({r['ok']} ok) in {r['wall_s']:.1f} s = "
                      f"{r['points_per_s']:.1f} points/s{ovh}{extra}", flush=True)
    if not args.skip_quickstart:
        ovh = run_point_overhead(ROOT / "experiments" / "quickstart.yaml")
        results.append(ovh)
        if not args.json:
            print(f"run_point outside engine + summary: {ovh['run_point_overhead_ms_per_point']:.2f} ms/point over "
                  f"{ovh['points']} quickstart points ({ovh['runs']} engine runs)")
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

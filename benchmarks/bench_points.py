"""Engine speed over a realistic, seeded spread of operating points, optionally against an older revision.

A frontier sweep runs the engine on hundreds of thousands of operating points, so what matters is the CPU
time of a *typical* point and of the slow tail, not of one easy point. This benchmark times a fixed spread
of points like those of a sweep: Kimi-K2-1T on GB200 NVL72 at FP4 (weights, activations and EP dispatch
in FP4, ``--precision fp4``), and

* **agg-fixed-closed / agg-lognormal-closed**: aggregated serving of decode-heavy requests (ISL 1024,
  OSL 8192) on one instance of DP8, DP16, DP32, DP64 or TP4 x DP4, closed loop at concurrency 1 to 4096;
* **agg-poisson**: the same plans under Poisson arrivals at 0.05 to 16 requests/s, fixed and lognormal
  lengths;
* **disagg-poisson / disagg-closed**: disaggregated serving of prefill-heavy requests (ISL 8192, OSL
  1024) as 1P+1D, 2P+1D and 4P+1D (DP8 instances), Poisson 0.25 to 16 requests/s or closed loop;
* **kv-pressure**: DP8 with ``max_seqs`` 256 or 512 per rank, so that the KV cache (about 1.6 M tokens per
  rank) overflows and requests are preempted by the thousands.

Lognormal lengths have ``sigma = 1`` around the same medians, clipped to 16 K prompt and 32 K output tokens
(8 K output for prefill-heavy). Each point serves ``max(1000, 3 C)`` requests (``C`` the concurrency), or
1000 in open loop, from a fixed seed, so every run sees the same requests.

**What is timed**: per point, the process CPU time (``time.process_time``) of generating the workload,
simulating it and summarising the records (:meth:`SimResult.summary`), as a sweep would. Instance costs are
built once per plan and reused across points, as a sweep reuses them. Each engine runs in its own worker
process, which first simulates one tiny aggregated and one tiny disaggregated point so that imports (polars,
NumPy, the engine, a compiled kernel loaded from numba's cache) are not charged to the first point. Each point's figure is the best of ``--rounds`` rounds.

**Against an older revision** (``--against REV``): the revision is checked out as a temporary ``git
worktree`` and driven by a second worker over the same points. The two workers alternate point by point
(and who goes first alternates too), so both see the same machine load; the ratios, old CPU / new CPU, are
then meaningful even on a busy machine where absolute times are not. The records of both engines are
compared by a digest (equal unless the models changed in between).

    python benchmarks/bench_points.py                     # the full spread, this checkout
    python benchmarks/bench_points.py --quick             # a quarter of the points (a few minutes)
    python benchmarks/bench_points.py --against aa78c1e   # ... and the engine at aa78c1e, with ratios
    python benchmarks/bench_points.py --profile kv-pressure  # cProfile of one kind's points (this checkout)
    python benchmarks/bench_points.py --profile agg-poisson --cold --quick  # ... each point with fresh costs
    python benchmarks/bench_points.py --list              # the points

**Cold** (``--cold``): every point starts from freshly built instance costs (built before the timer
starts, so not charged), i.e. with every memo of the step cost empty (EP-group costs, decode lines,
token-dependent op sums, measured efficiencies), as a sweep worker meeting a new plan or a new process
would. Only process-wide caches keyed on the model's routing constants (the busiest-rank curves of
:mod:`latentmoe_sim.cost.routing`, a few per model) stay warm. Best of ``--rounds`` then means best of
``--rounds`` cold runs. Without ``--cold`` costs are built once per plan and reused, so after the first
round every memo is warm (the figures of a long sweep over one plan).

    python benchmarks/bench_points.py --quick --cold --against aa78c1e   # cold points, with ratios
    python benchmarks/bench_points.py --quick --cold-vs-warm             # this checkout cold and warm, interleaved

    python benchmarks/bench_points.py --quick --python-vs-compiled      # the Python engine against the default

``--python-vs-compiled`` drives two workers of this checkout, one forcing ``engine="python"`` and one on the
default (the compiled engine where it applies, sim/engine/compiled.py), and checks that their records are
the same. ``--cold-vs-warm`` drives two workers of this checkout, one cold and one warm, over the same points in
the same interleaved way, so that the cold/warm ratio too is measured within one run (and the records of
the two are compared: memo state must not change a result).

Worker mode (used internally): ``--worker SRC_ROOT`` reads point indices on stdin and answers JSON lines.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: the catalog model and hardware profile of every point
MODEL, HW = "kimi-k2-1t", "gb200_nvl72"
#: aggregated plans: (name, tp, dp)
AGG_PLANS = (("DP8", 1, 8), ("DP16", 1, 16), ("DP32", 1, 32), ("DP64", 1, 64), ("TP4xDP4", 4, 4))
#: disaggregated deployments: (name, prefill instances, decode instances); every instance is DP8
DISAGG = (("1P+1D", 1, 1), ("2P+1D", 2, 1), ("4P+1D", 4, 1))
CONCURRENCIES = (1, 8, 64, 512, 4096)
RATES_AGG = (0.05, 0.25, 1.0, 4.0, 16.0)
RATES_DISAGG = (0.25, 1.0, 4.0, 16.0)
CONC_DISAGG = (1, 16, 256, 1024)
SEED = 20261130
OPEN_LOOP_REQUESTS = 1000


def points() -> list[dict]:
    """The spread, as plain dicts (a worker of any revision rebuilds the point from one)."""
    out: list[dict] = []
    for lengths in ("fixed", "lognormal"):
        for plan, tp, dp in AGG_PLANS:
            for c in CONCURRENCIES:
                out.append(dict(kind=f"agg-{lengths}-closed", mode="agg", plan=plan, tp=tp, dp=dp, lengths=lengths,
                                shape="decode-heavy", concurrency=c, n=max(1000, 3 * c)))
    for lengths in ("fixed", "lognormal"):
        for plan, tp, dp in AGG_PLANS:
            for rate in RATES_AGG:
                out.append(dict(kind="agg-poisson", mode="agg", plan=plan, tp=tp, dp=dp, lengths=lengths,
                                shape="decode-heavy", rate=rate, n=OPEN_LOOP_REQUESTS))
    for lengths in ("fixed", "lognormal"):
        for name, npre, ndec in DISAGG:
            for rate in RATES_DISAGG:
                out.append(dict(kind="disagg-poisson", mode="disagg", plan=name, num_prefill=npre, num_decode=ndec,
                                lengths=lengths, shape="prefill-heavy", rate=rate, n=OPEN_LOOP_REQUESTS))
            for c in CONC_DISAGG:
                out.append(dict(kind="disagg-closed", mode="disagg", plan=name, num_prefill=npre, num_decode=ndec,
                                lengths=lengths, shape="prefill-heavy", concurrency=c, n=max(1000, 3 * c)))
    for max_seqs in (256, 512):
        for c in (2048, 4096):
            out.append(dict(kind="kv-pressure", mode="agg", plan="DP8", tp=1, dp=8, lengths="lognormal",
                            shape="decode-heavy", concurrency=c, n=max(1000, 3 * c), max_seqs=max_seqs))
        out.append(dict(kind="kv-pressure", mode="agg", plan="DP8", tp=1, dp=8, lengths="lognormal",
                        shape="decode-heavy", rate=16.0, n=OPEN_LOOP_REQUESTS, max_seqs=max_seqs))
    for i, p in enumerate(out):
        p["index"] = i
        p["seed"] = SEED + i
    return out


def quick_points(all_points: list[dict]) -> list[dict]:
    """Every fourth point of each kind, and every KV-pressure point."""
    out, seen = [], {}
    for p in all_points:
        k = seen[p["kind"]] = seen.get(p["kind"], -1) + 1
        if p["kind"] == "kv-pressure" or k % 4 == 0:
            out.append(p)
    return out


def describe(p: dict) -> str:
    load = f"C={p['concurrency']}" if "concurrency" in p else f"{p['rate']:g}/s"
    seqs = f" max_seqs {p['max_seqs']}" if "max_seqs" in p else ""
    return f"{p['kind']:<20} {p['plan']:<8} {p['lengths']:<9} {load:<7} n={p['n']}{seqs}"


# -- the worker: runs points with the package found under SRC_ROOT ---------------------------------------------


def _import_tree(src_root: Path) -> None:
    """Make ``import latentmoe_sim`` load the sources under ``src_root`` (a checkout of this repository).

    The package maps ``sim/`` to ``latentmoe_sim`` and ``workloads/`` (etc.) to its subpackages, so a
    directory of symbolic links rebuilds that layout; it goes first on ``sys.path``, ahead of any installed
    copy.
    """
    pkg_dir = Path(tempfile.mkdtemp(prefix="lmsim-bench-pkg-"))
    atexit.register(shutil.rmtree, pkg_dir, True)  # only links: the sources stay where they are
    pkg = pkg_dir / "latentmoe_sim"
    pkg.mkdir()
    for entry in (src_root / "sim").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    for sub in ("workloads", "kernels", "hwprofiles"):
        if (src_root / sub).is_dir():
            (pkg / sub).symlink_to(src_root / sub)
    sys.path.insert(0, str(pkg_dir))


class _Runner:
    def __init__(self):
        import numpy as np

        from latentmoe_sim.cost import build_instance_cost
        from latentmoe_sim.engine import simulate_aggregated, simulate_disaggregated
        from latentmoe_sim.hwprofile_io import load_hw
        from latentmoe_sim.models.catalog import load_model
        from latentmoe_sim.parallel import ParallelPlan
        from latentmoe_sim.workloads import ClosedLoop, Fixed, LogNormal, Poisson, Workload

        self.np = np
        self.build, self.Plan = build_instance_cost, ParallelPlan
        self.agg, self.disagg = simulate_aggregated, simulate_disaggregated
        self.ClosedLoop, self.Fixed, self.LogNormal, self.Poisson, self.Workload = (
            ClosedLoop, Fixed, LogNormal, Poisson, Workload)
        self.model = load_model(MODEL).with_precision(weights="fp4", activations="fp4", dispatch="fp4")
        self.hw = load_hw(HW)
        self._costs: dict = {}

    def cost(self, tp: int, dp: int, max_batch_tokens: int = 2048, max_seqs: int = 128):
        key = (tp, dp, max_batch_tokens, max_seqs)
        if key not in self._costs:
            self._costs[key] = self.build(self.model, self.hw, self.Plan(tp=tp, dp=dp, ep=tp * dp),
                                          max_batch_tokens=max_batch_tokens, max_seqs=max_seqs)
        return self._costs[key]

    def workload(self, p: dict):
        isl, osl, osl_hi = (1024, 8192, 32768) if p["shape"] == "decode-heavy" else (8192, 1024, 8192)
        if p["lengths"] == "fixed":
            lin, lout = self.Fixed(isl), self.Fixed(osl)
        else:
            lin, lout = self.LogNormal(isl, 1.0, 1, 16384), self.LogNormal(osl, 1.0, 1, osl_hi)
        arrivals = self.ClosedLoop(p["concurrency"]) if "concurrency" in p else self.Poisson(p["rate"])
        return self.Workload("bench", lin, lout, arrivals, p["n"], p["seed"])

    def prepare(self, p: dict, cold: bool = False):
        """Everything a sweep would have built before the point: the instance costs (``cold``: built afresh,
        so every memo of the step costs starts empty)."""
        if cold:
            self._costs.clear()
        if p["mode"] == "agg":
            return (self.cost(p["tp"], p["dp"], max_seqs=p.get("max_seqs", 128)),)
        return self.cost(1, 8, max_batch_tokens=8192), self.cost(1, 8)

    def run(self, p: dict, costs, engine: str | None = None) -> tuple:
        """``engine``: passed to the simulate functions when given (this checkout's ``--python-vs-compiled``;
        older revisions have no such argument)."""
        specs = self.workload(p).generate()
        kw = {} if engine is None else {"engine": engine}
        if p["mode"] == "agg":
            res = self.agg(costs[0], 1, specs, max_seqs=p.get("max_seqs", 128), **kw)
        else:
            res = self.disagg(costs[0], p["num_prefill"], costs[1], p["num_decode"], specs, **kw)
        return res, res.summary()

    def digest(self, res) -> str:
        rec = res.records
        h = hashlib.sha1()
        for col in ("first_token_s", "finish_s"):
            h.update(self.np.round(rec[col].to_numpy(), 9).tobytes())
        h.update(rec["preemptions"].to_numpy().tobytes())
        return h.hexdigest()[:12]


def worker(src_root: str, cold: bool = False, engine: str | None = None) -> None:
    _import_tree(Path(src_root))
    runner = _Runner()
    all_points = points()
    # imports and first-call costs (compiling or loading a compiled kernel among them), not timed: one tiny
    # aggregated and one tiny disaggregated point
    for first in (all_points[0], next(p for p in all_points if p["mode"] == "disagg")):
        warm = dict(first, n=20, concurrency=4, seed=1)
        runner.run(warm, runner.prepare(warm), engine)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        p = all_points[int(line)]
        costs = runner.prepare(p, cold)
        t0 = time.process_time()
        res, _summary = runner.run(p, costs, engine)
        cpu = time.process_time() - t0
        print(json.dumps({"cpu_s": cpu, "steps": res.steps, "events": res.events,
                          "preemptions": int(res.records["preemptions"].sum()), "digest": runner.digest(res)}),
              flush=True)


# -- the driver --------------------------------------------------------------------------------------------------


class Worker:
    def __init__(self, label: str, src_root: Path, cold: bool = False, engine: str | None = None):
        self.label = label
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(src_root)] + (["--cold"] if cold else [])
            + (["--engine", engine] if engine else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker '{self.label}' died (see its error above)")
        return json.loads(line)

    def run(self, index: int) -> dict:
        self.proc.stdin.write(f"{index}\n")
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile with linear interpolation (numpy's default), without importing numpy here."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _stats(cpu: list[float]) -> tuple[float, float, float, float]:
    return _quantile(cpu, 0.5), _quantile(cpu, 0.9), max(cpu), len(cpu) / sum(cpu)


def report(pts: list[dict], best: dict[str, list[float]], labels: list[str]) -> None:
    kinds = ["all points"] + sorted({p["kind"] for p in pts})
    for label in labels:
        print(f"\nCPU per point, {label} (best of rounds; ms):")
        print(f"  {'kind':<22}{'points':>7}{'median':>10}{'p90':>10}{'max':>10}{'points/CPU-s':>14}")
        for kind in kinds:
            sel = [i for i, p in enumerate(pts) if kind == "all points" or p["kind"] == kind]
            med, p90, mx, rate = _stats([best[label][i] for i in sel])
            print(f"  {kind:<22}{len(sel):>7}{med * 1e3:>10.1f}{p90 * 1e3:>10.1f}{mx * 1e3:>10.1f}{rate:>14.1f}")
    if len(labels) == 2:
        new, old = labels
        print(f"\nspeed-up, {old} CPU / {new} CPU (same points, interleaved in this run):")
        print(f"  {'kind':<22}{'median':>10}{'p90':>10}{'max':>10}{'total':>10}{'per-point median':>18}")
        for kind in kinds:
            sel = [i for i, p in enumerate(pts) if kind == "all points" or p["kind"] == kind]
            a, b = [best[new][i] for i in sel], [best[old][i] for i in sel]
            sa, sb = _stats(a), _stats(b)
            per_point = _quantile([y / x for x, y in zip(a, b)], 0.5)
            print(f"  {kind:<22}{sb[0] / sa[0]:>9.1f}x{sb[1] / sa[1]:>9.1f}x{sb[2] / sa[2]:>9.1f}x"
                  f"{sum(b) / sum(a):>9.1f}x{per_point:>17.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="every fourth point of each kind, and all KV-pressure ones")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over the points; each point keeps its best (3)")
    ap.add_argument("--against", metavar="REV", help="also run the engine of git revision REV, interleaved")
    ap.add_argument("--kind", help="only the points of this kind (e.g. kv-pressure)")
    ap.add_argument("--profile", metavar="KIND", help="cProfile this checkout on the points of KIND, one round")
    ap.add_argument("--list", action="store_true", help="print the points and exit")
    ap.add_argument("--cold", action="store_true",
                    help="build every point's instance costs afresh (empty memos), as a sweep meeting a new plan")
    ap.add_argument("--cold-vs-warm", action="store_true",
                    help="run this checkout twice, cold and warm, interleaved; ratios cold / warm")
    ap.add_argument("--python-vs-compiled", action="store_true",
                    help="run this checkout twice, on the Python engine and on the default (compiled where it "
                         "applies), interleaved; ratios python / compiled")
    ap.add_argument("--verbose", action="store_true", help="print every point's figures")
    ap.add_argument("--worker", metavar="SRC_ROOT", help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.cold, args.engine)
        return
    pts = points()
    if args.quick:
        pts = quick_points(pts)
    if args.kind or args.profile:
        pts = [p for p in pts if p["kind"] == (args.kind or args.profile)]
        if not pts:
            sys.exit(f"bench_points: --kind/--profile: no points of that kind; kinds: "
                     f"{', '.join(sorted({p['kind'] for p in points()}))}")
    if args.list:
        for p in pts:
            print(f"{p['index']:>4}  {describe(p)}")
        return
    if args.profile:
        profile(pts, args.cold)
        return
    if args.rounds < 1:
        sys.exit("bench_points: --rounds must be >= 1")
    if args.cold_vs_warm and (args.against or args.cold):
        sys.exit("bench_points: --cold-vs-warm runs this checkout cold and warm; it takes no --against or --cold")
    if args.python_vs_compiled and (args.against or args.cold_vs_warm):
        sys.exit("bench_points: --python-vs-compiled runs this checkout on both engines; it takes no --against "
                 "or --cold-vs-warm")
    tmp = None
    labels = ["this checkout"]
    workers = {} if args.cold_vs_warm or args.python_vs_compiled else \
        {"this checkout": Worker("this checkout", ROOT, args.cold)}
    try:
        if args.python_vs_compiled:
            labels = ["this checkout", "this checkout, Python engine"]
            workers = {labels[0]: Worker(labels[0], ROOT, args.cold),
                       labels[1]: Worker(labels[1], ROOT, args.cold, engine="python")}
        if args.cold_vs_warm:
            labels = ["this checkout warm", "this checkout cold"]
            workers = {label: Worker(label, ROOT, label.endswith("cold")) for label in labels}
        if args.against:
            tmp = Path(tempfile.mkdtemp(prefix="lmsim-bench-rev-")) / "tree"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tmp), args.against],
                           check=True)
            label = f"rev {args.against}"
            labels.append(label)
            workers[label] = Worker(label, tmp, args.cold)
        best = {label: [float("inf")] * len(pts) for label in labels}
        info: dict = {label: [None] * len(pts) for label in labels}
        print(f"{len(pts)} points x {args.rounds} rounds{' (cold: costs built afresh per point)' if args.cold else ''}; "
              f"engines: {', '.join(labels)}", flush=True)
        rng = random.Random(SEED)
        for r in range(args.rounds):
            order = list(range(len(pts)))
            rng.shuffle(order)
            t0 = time.time()
            for k, i in enumerate(order):
                turn = labels if (k + r) % 2 == 0 else labels[::-1]
                for label in turn:
                    out = workers[label].run(pts[i]["index"])
                    best[label][i] = min(best[label][i], out["cpu_s"])
                    info[label][i] = out
            print(f"  round {r + 1}: {time.time() - t0:.0f} s wall", flush=True)
        if args.verbose:
            for i, p in enumerate(pts):
                cells = "  ".join(f"{best[label][i] * 1e3:9.1f} ms {info[label][i]['preemptions']:>6} pre"
                                  for label in labels)
                print(f"{p['index']:>4}  {describe(p)}  {cells}")
        report(pts, best, labels)
        if len(labels) == 2:
            differ = [pts[i]["index"] for i in range(len(pts))
                      if info[labels[0]][i]["digest"] != info[labels[1]][i]["digest"]]
            why = ("memo state must not change a result" if args.cold_vs_warm else
                   "the compiled engine gives the Python engine's records" if args.python_vs_compiled else
                   "they differ wherever the cost model changed in between; exactness is tests/test_engine_exact.py's job")
            print(f"\nrecords identical to {labels[1]}'s on {len(pts) - len(differ)} of {len(pts)} points ({why})"
                  + (f"; differ on points {differ[:8]}{' ...' if len(differ) > 8 else ''}" if differ else ""))
    finally:
        for w in workers.values():
            w.close()
        if tmp is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp)], check=False)
            shutil.rmtree(tmp.parent, ignore_errors=True)


def profile(pts: list[dict], cold: bool = False) -> None:
    import cProfile
    import io
    import pstats

    _import_tree(ROOT)
    runner = _Runner()
    warm = dict(pts[0], n=20, concurrency=4, seed=1)
    runner.run(warm, runner.prepare(warm))
    costs = [runner.prepare(p, cold) for p in pts]  # cold: a fresh cost per point (prepare empties the cache)
    prof = cProfile.Profile()
    t0 = time.process_time()
    prof.enable()
    for p, c in zip(pts, costs):
        runner.run(p, c)
    prof.disable()
    print(f"{len(pts)} points, {time.process_time() - t0:.2f} s CPU under cProfile")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    print("\n".join(out.getvalue().splitlines()[:60]))


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    main()

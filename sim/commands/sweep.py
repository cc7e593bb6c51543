"""`lmsim sweep SPEC --out DIR`: run an experiment spec's operating points into parquet shards.

The spec (docs/SWEEP.md) is validated first (one-line errors, exit 2); its points run in batches on the
chosen executor; rows stream into ``DIR/shards``. Re-running the same command resumes: finished points are
skipped. ``--dry-run`` prints the point count and stops.
"""

from __future__ import annotations

import sys

from ..schema import bounds as B
from ._fmt import print_json


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run an experiment spec (YAML) into parquet shards; resumable")
    p.add_argument("spec", metavar="SPEC", help="experiment spec YAML (experiments/quickstart.yaml, experiments/fig7.yaml)")
    p.add_argument("--out", required=True, metavar="DIR", help="results folder (created; a re-run resumes)")
    p.add_argument("--executor", choices=("ray", "process", "serial"), default="ray",
                   help="ray (default: an embedded local Ray, started and stopped with the sweep, leaving no state; "
                        "or --ray-address), process (a local process pool, no Ray), serial")
    p.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: RAY_ADDRESS, else embedded)")
    p.add_argument("--workers", type=B.WORKERS, metavar="N", help=f"worker processes, {B.WORKERS.text} (default: CPU count)")
    p.add_argument("--max-points", type=B.POINTS, metavar="N", help=f"run an evenly strided slice of N points, {B.POINTS.text}")
    p.add_argument("--batch-size", type=B.POINTS, metavar="N",
                   help=f"points per task, {B.POINTS.text} (default: ~8 batches per worker, <= 100)")
    p.add_argument("--dry-run", action="store_true", help="print how many points the spec has and stop")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=_sweep)


def _sweep(args) -> int:
    from ..schema.experiment import load_experiment
    from ..sweep import Store, expand, run_sweep, take
    from ._common import positive

    positive("--workers", args.workers)
    positive("--max-points", args.max_points)
    positive("--batch-size", args.batch_size)
    from ..schema.outputs import check_output_dir

    check_output_dir("--out", args.out)  # before the spec is expanded or any point runs
    spec = load_experiment(args.spec)
    points = expand(spec)
    total = len(points)
    points = take(points, args.max_points)
    if args.dry_run:
        out = {"spec": spec.name, "points": total, "selected": len(points)}
        print_json(out) if args.json else print(f"{spec.name}: {total} operating points ({len(points)} selected)")
        return 0
    store = Store(args.out, spec.model_dump_json(), spec.name)
    res = run_sweep(points, store, executor=args.executor, workers=args.workers, batch_size=args.batch_size,
                    ray_address=args.ray_address, progress=not args.json)
    res.update(spec=spec.name, spec_points=total, out=str(args.out))
    if args.json:
        print_json(res)
    else:
        rate = f", {res['points_per_s']:.1f} points/s" if res["points_per_s"] else ""
        print(f"{spec.name}: ran {res['ran']} points ({res['already_done']} already done) in {res['wall_s']:.1f} s"
              f"{rate} on {res['executor']} x{res['workers']}; results in {args.out}", file=sys.stdout)
    return 0

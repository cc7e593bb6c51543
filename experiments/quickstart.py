"""Quickstart, the README's main job, as a script: sweep experiments/quickstart.yaml, then plot and compare.

A thin wrapper over the CLI; the experiment itself is the spec (docs/SWEEP.md). Equivalent to

    lmsim sweep experiments/quickstart.yaml --out out/quickstart && lmsim plot out/quickstart

    python experiments/quickstart.py [--out out/quickstart] [--executor process|ray|serial] [--workers N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from latentmoe_sim.cli import main as lmsim

SPEC = Path(__file__).with_name("quickstart.yaml")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/quickstart")
    ap.add_argument("--executor", default="ray", choices=("ray", "process", "serial"))
    ap.add_argument("--workers", type=int)
    args = ap.parse_args()
    sweep = ["sweep", str(SPEC), "--out", args.out, "--executor", args.executor]
    if args.workers:
        sweep += ["--workers", str(args.workers)]
    return lmsim(sweep) or lmsim(["plot", args.out])


if __name__ == "__main__":
    sys.exit(main())

"""EPM sensitivity: how the iso-accuracy baseline's slowdown against Kimi-K2-1T-LatentMoE moves with the EPM.

The paper's iso-accuracy baseline is Kimi-K2 scaled to EPM λ = 1.35 (arXiv 2601.18089 §4.3.1; docs/EPM.md).
λ comes from a scaling-law slope fitted on few points, so it is uncertain: reading λ = 1.35 as the score gain
B ln 1.35 and re-converting it under each bootstrap draw of the slope B gives the interval that
``lmsim epm multiplier --epm 1.35 --bootstrap 2000 --seed 1`` prints. This experiment builds the depth-scaled
baseline at several λ across that interval (each a model ``{base: kimi-k2-1t, epm: λ}``), sweeps each
against LatentMoE (decode-heavy, aggregated, GB200 NVL72 FP4, plans up to 72 GPUs; a coarse grid to keep it
to minutes), and plots the median (and min/max) throughput ratio LatentMoE / baseline at equal tokens/s/user.

    python experiments/epm_sensitivity.py [--out out/epm_sensitivity] [--points 5] [--workers 2] [--executor process]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from latentmoe_sim import epm as E
from latentmoe_sim.frontier import compare, frontiers
from latentmoe_sim.schema import validate
from latentmoe_sim.schema.experiment import ExperimentSpec
from latentmoe_sim.sweep import Store, expand, read_rows, run_sweep

TARGET = "kimi-k2-1t-latentmoe"
PAPER_EPM = 1.35  # the paper's λ (§4.3.1)


def epm_interval(draws: int, seed: int, level: float) -> tuple[float, float]:
    """The bootstrap interval of λ = 1.35 read as a score gain (what `lmsim epm multiplier --epm 1.35` prints)."""
    fit = E.fit_family(E.load_family(None, None))
    boot = E.bootstrap_fit(fit.family, draws, seed, level)
    gain = float(E.score_gain(fit.B, PAPER_EPM))
    lo, hi = boot.interval(E.epm_from_scores(boot.slopes, 0.0, gain))
    return float(lo), float(hi)


def spec_for(epms: list[float]) -> dict:
    return {
        "name": "epm-sensitivity",
        "description": "LatentMoE against depth-scaled Kimi-K2 baselines across the EPM bootstrap interval",
        "hardware": "gb200_nvl72", "precision": "fp4", "gpu_budget": 72, "max_gpus_per_instance": 72, "seed": 1,
        "stopping": {"max_requests": 32000},
        "models": [TARGET] + [{"name": f"kimi-k2-epm{e:.3f}", "base": "kimi-k2-1t", "epm": round(e, 4)} for e in epms],
        "compare": [{"baseline": f"kimi-k2-epm{e:.3f}", "target": TARGET} for e in epms],
        "traffic": [{"name": "decode-heavy", "workload": "decode-heavy", "mode": "agg", "plans": "all",
                     "search": {"tp": [1, 8], "dp": [1, 4, 16, 64]},
                     "concurrency": [1, 4, 16, 64, 256, 1024, 4096]}],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/epm_sensitivity")
    ap.add_argument("--points", type=int, default=5, help="EPM values across the interval (plus 1.35)")
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--level", type=float, default=0.9)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--executor", default="ray", choices=("ray", "process", "serial"))
    args = ap.parse_args()
    lo, hi = epm_interval(args.draws, args.seed, args.level)
    epms = sorted(set(np.round(np.geomspace(lo, hi, args.points), 4).tolist()) | {PAPER_EPM})
    print(f"EPM {PAPER_EPM} as a score gain: {args.level:.0%} bootstrap interval [{lo:.3f}, {hi:.3f}] "
          f"({args.draws} draws, seed {args.seed}); sweeping {', '.join(f'{e:.3f}' for e in epms)}")
    data = spec_for(epms)
    spec = validate(ExperimentSpec, data, "epm_sensitivity (generated)")
    out = Path(args.out)
    points = expand(spec)
    run_sweep(points, Store(out, spec.model_dump_json(), spec.name), executor=args.executor, workers=args.workers)
    (out / "spec.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    front = frontiers(read_rows(out))
    table = []
    for e in epms:
        r = compare(front, f"kimi-k2-epm{e:.3f}", TARGET, "decode-heavy")
        from latentmoe_sim.models import load_model

        layers = E.make_variant(load_model("kimi-k2-1t"), e).spec.num_layers
        table.append({"epm": e, "layers": layers, **{k: r.get(k) for k in ("ratio_min", "ratio_median", "ratio_max")}})
        print(f"  EPM {e:.3f} ({layers} layers): LatentMoE / baseline at equal tokens/s/user: "
              + (f"median {r['ratio_median']:.2f}x (min {r['ratio_min']:.2f}, max {r['ratio_max']:.2f})"
                 if r["ratio_min"] is not None else r["reason"]))
    (out / "sensitivity.json").write_text(json.dumps({"interval": [lo, hi], "rows": table}, indent=1))
    import polars as pl

    pl.DataFrame(table, schema_overrides={"ratio_min": pl.Float64, "ratio_median": pl.Float64,
                                          "ratio_max": pl.Float64}).write_csv(out / "sensitivity.csv")

    import plotly.graph_objects as go

    ok = [t for t in table if t["ratio_median"] is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[t["epm"] for t in ok], y=[t["ratio_median"] for t in ok], mode="lines+markers",
                             name="median", error_y=dict(type="data", symmetric=False,
                                                         array=[t["ratio_max"] - t["ratio_median"] for t in ok],
                                                         arrayminus=[t["ratio_median"] - t["ratio_min"] for t in ok]),
                             text=[f"{t['layers']} layers" for t in ok]))
    fig.add_vrect(x0=lo, x1=hi, fillcolor="grey", opacity=0.1, line_width=0,
                  annotation_text=f"{args.level:.0%} bootstrap interval")
    fig.add_vline(x=PAPER_EPM, line_dash="dash", annotation_text="paper λ = 1.35")
    fig.update_layout(title="Kimi-K2-1T-LatentMoE / iso-accuracy baseline, decode-heavy, GB200 NVL72 FP4 (bars: min-max)",
                      xaxis_title="EPM λ of the baseline", yaxis_title="tokens/s/GPU ratio at equal tokens/s/user",
                      template="plotly_white")
    fig.write_html(out / "epm_sensitivity.html", include_plotlyjs=True)
    print(f"wrote {out / 'epm_sensitivity.html'}, sensitivity.csv and sensitivity.json")


if __name__ == "__main__":
    main()

"""Figures of a sweep: one panel per traffic pattern, the frontier of each model over its cloud of points.

Self-contained HTML (plotly.js embedded, so it opens offline); a PNG as well where kaleido and a Chromium
are installed (stack.md §4: PNG export needs a browser, which is not a dependency). Hovering a point shows
its plan, load and latencies; each panel is annotated with the frontier ratios of the spec's comparisons,
and the title says how many points are not plotted and why (not ``ok``, or outside the SLA). The frontier
points and ratios are written beside the HTML as tables (:func:`write_tables`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .frontier import X, Y, comparisons, pareto, usable

#: plotly's default qualitative palette (plotly.colors.qualitative.Plotly), fixed so colours follow models
COLORS = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880")
HOVER = ("plan", "instances", "concurrency", "rate", "ttft_p50_s", "ttft_p90_s", "tpot_p50_s", "num_gpus")


def _hover(df: pl.DataFrame) -> list[str]:
    out = []
    for r in df.iter_rows(named=True):
        load = f"concurrency {r['concurrency']}" if r.get("concurrency") is not None else f"rate {r.get('rate')} req/s"
        inst = f" x{r['instances']}" if (r.get("instances") or 1) > 1 and r.get("mode") != "disagg" else ""
        out.append(f"{r['model']}<br>{r['plan']}{inst}<br>{load}, {r['num_gpus']} GPUs<br>"
                   f"{r[Y]:.1f} tok/s/GPU at {r[X]:.1f} tok/s/user<br>"
                   f"TTFT p50 {r['ttft_p50_s']:.2f} s, p90 {r['ttft_p90_s']:.2f} s; TPOT p50 {r['tpot_p50_s'] * 1e3:.1f} ms")
    return out


def figure(rows: pl.DataFrame, pairs: list[tuple[str, str]], title: str, **sla):
    """The plotly figure: columns = traffic patterns; cloud (faint) and frontier (line) per model."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ok = usable(rows, **sla)
    front = pareto(ok)
    title = f"{title}<br><sup>{status_line(rows, ok.height)}</sup>"
    traffics = list(dict.fromkeys(rows["traffic"].to_list()))
    models = list(dict.fromkeys(rows["model"].to_list()))
    ratios = comparisons(front, pairs)
    fig = make_subplots(rows=1, cols=len(traffics), subplot_titles=traffics, horizontal_spacing=0.08)
    for col, traffic in enumerate(traffics, start=1):
        for i, model in enumerate(models):
            color = COLORS[i % len(COLORS)]
            cloud = ok.filter((pl.col("traffic") == traffic) & (pl.col("model") == model))
            f = front.filter((pl.col("traffic") == traffic) & (pl.col("model") == model))
            fig.add_trace(go.Scattergl(x=cloud[X].to_list(), y=cloud[Y].to_list(), mode="markers", name=model,
                                       legendgroup=model, showlegend=False, opacity=0.25,
                                       marker=dict(color=color, size=4), text=_hover(cloud), hoverinfo="text"),
                          row=1, col=col)
            fig.add_trace(go.Scatter(x=f[X].to_list(), y=f[Y].to_list(), mode="lines+markers", name=model,
                                     legendgroup=model, showlegend=col == 1, line=dict(color=color, width=2),
                                     marker=dict(size=6), text=_hover(f), hoverinfo="text"), row=1, col=col)
        lines = [f"{r['target']} / {r['baseline']}: median {r['ratio_median']:.2f}x, p10-p90 {r['ratio_p10']:.2f}-"
                 f"{r['ratio_p90']:.2f}x, range {r['ratio_min']:.2f}-{r['ratio_max']:.2f}x"
                 for r in ratios if r["traffic"] == traffic and r["ratio_min"] is not None]
        if lines:
            xref = "x domain" if col == 1 else f"x{col} domain"
            yref = "y domain" if col == 1 else f"y{col} domain"
            # below the panel (under its axis title), so the text never covers the frontiers
            fig.add_annotation(text="<br>".join(lines), xref=xref, yref=yref, x=0.5, y=-0.2, showarrow=False,
                               xanchor="center", yanchor="top", align="center", font=dict(size=11))
        fig.update_xaxes(type="log", title_text="tokens/s/user (p50)", row=1, col=col)
        fig.update_yaxes(type="log", title_text="output tokens/s/GPU" if col == 1 else None, row=1, col=col)
    fig.update_layout(title=title, template="plotly_white", height=640, width=560 * len(traffics) + 160,
                      margin=dict(t=110, b=150))
    return fig, front, ratios


def status_line(rows: pl.DataFrame, plotted: int) -> str:
    """What the figure leaves out, said on it: ``1131 of 1162 points plotted; not plotted: 31 infeasible``.
    Points that are not ``ok`` (or miss the SLA) never reach a frontier, and the figure says how many."""
    counts = dict(rows.group_by("status").len().iter_rows())
    left = [f"{n} {status}" for status, n in sorted(counts.items()) if status != "ok" and n]
    missed = counts.get("ok", 0) - plotted
    if missed > 0:
        left.append(f"{missed} ok but outside the SLA")
    return f"{plotted} of {rows.height} points plotted" + ("; not plotted: " + ", ".join(left) if left else "")


#: the columns of the frontier table written beside the figure (what each plotted frontier point is)
TABLE_COLUMNS = ("traffic", "model", X, Y, "plan", "mode", "instances", "num_gpus", "concurrency", "rate",
                 "ttft_p50_s", "ttft_p90_s", "tpot_p50_s", "status", "point_id")


def write_tables(front: pl.DataFrame, ratios: list[dict], out_html: Path) -> list[Path]:
    """The data behind the figure: its frontier points as ``<stem>.csv`` and ``<stem>.parquet`` and the
    annotated ratios as ``<stem>_ratios.csv``, beside the HTML."""
    cols = [c for c in TABLE_COLUMNS if c in front.columns]
    table = front.select(cols).sort("traffic", "model", X)
    paths = [out_html.with_suffix(".csv"), out_html.with_suffix(".parquet"),
             out_html.with_name(out_html.stem + "_ratios.csv")]
    table.write_csv(paths[0])
    table.write_parquet(paths[1])
    keep = ("traffic", "baseline", "target", "ratio_min", "ratio_p10", "ratio_median", "ratio_p90", "ratio_max",
            "at_min_tokens_per_s_per_user", "at_max_tokens_per_s_per_user", "reason")
    pl.DataFrame([{k: r.get(k) for k in keep} for r in ratios],
                 schema_overrides={k: pl.Float64 for k in keep if k.startswith(("ratio_", "at_"))}).write_csv(paths[2])
    return paths


def write(fig, out_html: Path, png: bool = True) -> list[Path]:
    """Write the HTML (always) and a PNG next to it when kaleido and a browser work; returns what was written."""
    out_html.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(out_html, include_plotlyjs=True)
    written = [out_html]
    if png:
        try:
            import kaleido  # noqa: F401

            fig.write_image(out_html.with_suffix(".png"))
            written.append(out_html.with_suffix(".png"))
        except Exception:  # no kaleido, or no Chromium for it: HTML only (stack.md §4)
            pass
    return written

"""`lmsim epm`: the Effective Parameter Multiplier (arXiv 2601.18089 §4.3.1) — fit, convert, build the variant.

* ``lmsim epm fit [--family FILE] [--params nominal|exact|non-embedding] [--json]`` — the log-linear fit
  ``score = A + B ln(N / 1e9)`` of a model family (bundled: Qwen3 dense base MMLU), with R² and residuals.
* ``lmsim epm multiplier --baseline-score S0 --treated-score S1`` — λ = exp((S1 − S0) / B);
  ``lmsim epm multiplier --epm E`` — the score gain B ln E that λ = E stands for.
* ``lmsim epm variant BASE --epm E`` (or the two scores) — the model of λ × BASE's size, by depth or width;
  ``--write PATH.yaml`` saves it as a catalog entry.

``--bootstrap N --seed S`` (all three) resamples the family points and prints percentile intervals (``--level``).
The method, its conventions and its sensitivity are in docs/EPM.md; the library is ``latentmoe_sim.epm``.
"""

from __future__ import annotations

import argparse
import math
import shlex
from pathlib import Path

from .. import epm as E
from ..errors import InputError
from ..schema import bounds as B
from ..models.spec import compress_layers
from ._fmt import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``epm`` command group to the ``lmsim`` parser."""
    p_epm = subparsers.add_parser("epm", help="effective parameter multiplier: fit, multiplier, iso-accuracy variant",
                                  description="Effective Parameter Multiplier (arXiv 2601.18089 §4.3.1); see docs/EPM.md.")
    sub = p_epm.add_subparsers(dest="epm_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("fit", help="fit score = A + B ln(N/1e9) to a model family",
                       description="Least-squares fit of score = A + B ln(N / 1e9) (N in raw parameters; A is the score at 1B).")
    _fit_options(p)
    _bootstrap_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("multiplier", help="score gain -> EPM = exp(gain / B), or --epm -> score gain",
                       description="EPM = exp((S1 - S0) / B) from a baseline and a treated score; or, with --epm, the score gain B ln EPM.")
    _score_options(p)
    p.add_argument("--size", metavar="N", help="also print the iso-accuracy size EPM x N (raw count, or 1T / 350B)")
    _fit_options(p)
    _bootstrap_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_multiplier)

    p = sub.add_parser("variant", help="a model of EPM x BASE's size, by adding layers or widening experts",
                       description="Build the iso-accuracy model: total params nearest EPM x BASE's nominal (or exact) size.")
    p.add_argument("base", metavar="BASE", help="catalog model name or a model .yaml / config.json")
    _score_options(p)
    p.add_argument("--scale", choices=("depth", "width"), default="depth",
                   help="depth: append copies of the repeat unit (default); width: set the routed-expert FFN width m")
    p.add_argument("--of", choices=("nominal", "exact"), default="nominal",
                   help="multiply BASE's nominal size (default; the paper's 1.35 x '1T') or its exact parameter count")
    p.add_argument("--nominal", metavar="N", help="BASE's nominal size (raw count, or 1T); default: the catalog's "
                   "reported nominal_params, else the exact count rounded to 2 significant digits")
    p.add_argument("--unit", default="auto", help="depth: layers to repeat: auto (shortest repeating suffix; default), "
                   "last, or comma-separated layers such as AE or M,E")
    p.add_argument("--align", type=B.ALIGN, default=1, metavar="N", help=f"width: m is a multiple of this, {B.ALIGN.text} (default 1)")
    p.add_argument("--name", help="name of the new model (default BASE-epmE)")
    p.add_argument("--write", metavar="PATH.yaml", help="write the variant as a catalog-format YAML entry")
    _fit_options(p)
    _bootstrap_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_variant)


def _fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", metavar="FILE", help="CSV with columns name, params (raw count), score "
                   "(default: bundled Qwen3 dense base MMLU 5-shot)")
    p.add_argument("--params", choices=tuple(E.CONVENTIONS), default=None,
                   help="which parameter count N is: nominal (default), exact or non-embedding")


def _bootstrap_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", type=B.BOOTSTRAP, default=0, metavar="N",
                   help=f"bootstrap draws over the family points, {B.BOOTSTRAP.text} (0: off)")
    p.add_argument("--seed", type=B.SEED, default=0, metavar="N", help=f"bootstrap seed, {B.SEED.text} (default 0)")
    p.add_argument("--level", type=B.LEVEL, default=0.9, metavar="P", help=f"central interval level, {B.LEVEL.text} (default 0.9)")


def _score_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline-score", type=B.SCORE, metavar="S0", help=f"score of the baseline-architecture model, {B.SCORE.text}")
    p.add_argument("--treated-score", type=B.SCORE, metavar="S1", help=f"score of the treated (e.g. LatentMoE) model, {B.SCORE.text}")
    p.add_argument("--epm", type=B.EPM, metavar="E", help=f"the multiplier itself (instead of the two scores), {B.EPM.text}")


# ------------------------------------------------------------------------------------------------ helpers


def _count(x: float) -> str:
    """1.3505e12 (1350.5B)."""
    return f"{x:.5g} ({x / 1e9:,.1f}B)" if x >= 1e9 else f"{x:.5g}"


def _scores(args) -> tuple[float, float] | None:
    """(S0, S1) if the scores were given, None if --epm was; InputError when neither or both."""
    have_scores = args.baseline_score is not None or args.treated_score is not None
    if have_scores and args.epm is not None:
        raise InputError("give either --baseline-score and --treated-score, or --epm, not both")
    if have_scores:
        if args.baseline_score is None or args.treated_score is None:
            raise InputError("--baseline-score and --treated-score must be given together")
        for flag, v in (("--baseline-score", args.baseline_score), ("--treated-score", args.treated_score)):
            if not math.isfinite(v):
                raise InputError(f"{flag} = {v!r} must be a finite number")
        return args.baseline_score, args.treated_score
    if args.epm is None:
        raise InputError("give --baseline-score S0 and --treated-score S1, or --epm E")
    E.check_epm(args.epm)
    return None


def _fit(args) -> E.Fit:
    return E.fit_family(E.load_family(args.family, args.params))


def _boot(args, fit: E.Fit) -> E.Bootstrap | None:
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap = {args.bootstrap} must be >= 0")
    if args.bootstrap == 0:
        return None
    return E.bootstrap_fit(fit.family, args.bootstrap, args.seed, args.level)


def _fit_line(fit: E.Fit) -> str:
    return (f"fit: B = {fit.B:.3f} per ln-unit ({fit.family.convention} params, column {fit.family.column}; "
            f"{fit.family.label}; R^2 {fit.r2:.3f})")


def _boot_line(b: E.Bootstrap) -> str:
    return (f"bootstrap: {b.draws} draws, seed {b.seed}, {b.skipped} degenerate skipped; "
            f"{b.level:.0%} percentile intervals")


def _iv(pair: tuple[float, float], fmt: str = ".3f") -> str:
    return f"[{pair[0]:{fmt}}, {pair[1]:{fmt}}]"


def _print_json(obj: dict) -> None:
    print_json(obj)


# ------------------------------------------------------------------------------------------------ commands


def _cmd_fit(args) -> int:
    fit = _fit(args)
    boot = _boot(args, fit)
    if args.json:
        out = fit.to_dict()
        if boot:
            out["bootstrap"] = boot.to_dict()
        _print_json(out)
        return 0
    print("EPM fit: score = A + B * ln(N / 1e9)   (natural log; N in raw parameters, so A is the score at 1B)")
    print(f"family: {fit.family.label} ({len(fit.family.names)} points)")
    print(f"params convention: {fit.family.convention} (column {fit.family.column})")
    print(f"  A (intercept)          {fit.A:8.3f}" + (f"   {boot.level:.0%} CI {_iv(boot.interval(boot.intercepts))}" if boot else ""))
    print(f"  B (slope per ln-unit)  {fit.B:8.3f}" + (f"   {boot.level:.0%} CI {_iv(boot.interval(boot.slopes))}" if boot else ""))
    print(f"  B per decade           {fit.B_per_decade:8.3f}")
    print(f"  R^2                    {fit.r2:8.3f}")
    if boot:
        print(_boot_line(boot))
    width = max(len(n) for n in fit.family.names)
    print(f"\n  {'name':<{width}}  {'N':>14}  {'score':>7}  {'fitted':>7}  {'residual':>8}  source")
    for d in fit.to_dict()["points"]:
        print(f"  {d['name']:<{width}}  {d['params']:>14.6g}  {d['score']:7.2f}  {d['fitted']:7.2f}  {d['residual']:+8.2f}  {d['source']}")
    return 0


def _cmd_multiplier(args) -> int:
    scores = _scores(args)
    size = E.parse_count(args.size, "--size") if args.size is not None else None
    fit = _fit(args)
    E.require_rising_slope(fit.B)
    boot = _boot(args, fit)
    out: dict = {"fit": {"A": fit.A, "B": fit.B, "r2": fit.r2, "params_convention": fit.family.convention,
                         "params_column": fit.family.column, "family": fit.family.label}}
    if scores is not None:
        s0, s1 = scores
        gain = s1 - s0
        epm = E.epm_from_scores(fit.B, s0, s1)
        out.update(baseline_score=s0, treated_score=s1, score_gain=gain, epm=epm,
                   formula="EPM = exp((treated_score - baseline_score) / B)")
    else:
        epm = args.epm
        gain = float(E.score_gain(fit.B, epm))
        out.update(epm=epm, score_gain=gain, formula="score_gain = B * ln(EPM)")
    if size is not None:
        out.update(size=size, iso_params=epm * size)
    if boot:
        bd = boot.to_dict()
        draws_epm = E.epm_from_scores(boot.slopes, 0.0, gain)
        bd["epm_interval"] = list(boot.interval(draws_epm))
        if scores is None:
            bd["score_gain_interval"] = list(boot.interval(boot.slopes * math.log(epm)))
        if size is not None:
            bd["iso_params_interval"] = [v * size for v in bd["epm_interval"]]
        out["bootstrap"] = bd
    if args.json:
        _print_json(out)
        return 0
    lvl = f"{boot.level:.0%} CI " if boot else ""
    if scores is not None:
        print(f"score gain   {gain:+.3f}  ({scores[0]:g} -> {scores[1]:g})")
        print(f"EPM          {epm:.3f}  = exp({gain:.3f} / {fit.B:.3f})" + (f"   {lvl}{_iv(bd['epm_interval'])}" if boot else ""))
    else:
        print(f"EPM          {epm:g}")
        print(f"score gain   {gain:+.3f}  = {fit.B:.3f} * ln({epm:g})" + (f"   {lvl}{_iv(bd['score_gain_interval'])}" if boot else ""))
    if size is not None:
        line = f"iso size     {_count(epm * size)}  = {epm:.3f} x {size:.5g}"
        if boot:
            lo, hi = bd["iso_params_interval"]
            line += f"   {lvl}[{lo:.4g}, {hi:.4g}]"
        print(line)
    print(_fit_line(fit))
    if boot:
        print(f"B {lvl}{_iv(boot.interval(boot.slopes))}; " + _boot_line(boot))
        if scores is None and size is not None:
            print("(iso size interval: the --epm read as the score gain B*ln(EPM), re-converted under each draw)")
    return 0


def _cmd_variant(args) -> int:
    from ..models.catalog import list_models, load_model

    scores = _scores(args)
    nominal = E.parse_count(args.nominal, "--nominal") if args.nominal is not None else None
    base = load_model(args.base)
    fit = None
    if scores is not None or args.bootstrap:
        fit = _fit(args)
        E.require_rising_slope(fit.B)
    epm = E.epm_from_scores(fit.B, *scores) if scores is not None else args.epm
    v = E.make_variant(base, epm, scale=args.scale, of=args.of, nominal=nominal, unit=args.unit,
                       align=args.align, name=args.name)
    boot = _boot(args, fit) if fit else None
    spec = v.spec
    out = {
        "name": spec.name, "base": base.name, "scale": v.scale, "of": v.of,
        "base_size": v.base_size, "base_size_source": v.base_size_source, "base_total_params": base.total_params,
        "epm": v.epm, "epm_source": "scores" if scores is not None else "--epm",
        "target_params": v.target, "total_params": spec.total_params, "active_params": spec.active_params,
        "num_layers": spec.num_layers, "residual": v.residual, "residual_params": spec.total_params - v.target,
    }
    if v.scale == "depth":
        out.update(unit=list(v.unit), units_added=v.units_added)
    else:
        out.update(expert_ffn=v.expert_ffn, base_expert_ffn=base.moe.expert_ffn)
    if fit is not None:
        out["fit"] = {"A": fit.A, "B": fit.B, "r2": fit.r2, "params_convention": fit.family.convention,
                      "family": fit.family.label}
        gain = (scores[1] - scores[0]) if scores is not None else fit.B * math.log(epm)
        out["score_gain"] = gain
    if boot:
        bd = boot.to_dict()
        lo, hi = boot.interval(E.epm_from_scores(boot.slopes, 0.0, gain))
        bd["epm_interval"] = [lo, hi]
        bd["target_interval"] = [lo * v.base_size, hi * v.base_size]
        key = "num_layers_interval" if v.scale == "depth" else "expert_ffn_interval"
        bd[key] = [E.variant_choice_for_epm(v, lo), E.variant_choice_for_epm(v, hi)]
        if scores is None:
            bd["note"] = "--epm read as the point estimate of a score gain B*ln(EPM); intervals re-derive EPM under each draw"
        out["bootstrap"] = bd
    out["layers"] = compress_layers(spec.layers)
    if args.write:
        path = Path(args.write)
        if path.suffix not in (".yaml", ".yml"):
            raise InputError(f"--write {args.write}: must end in .yaml or .yml")
        base_ref = args.base if args.base in list_models() else None
        how = (f"--baseline-score {scores[0]:g} --treated-score {scores[1]:g}" if scores is not None else f"--epm {v.epm:g}")
        cmd = f"lmsim epm variant {shlex.quote(args.base)} {how} --scale {v.scale} --of {v.of}"
        text = E.variant_yaml(v, base_ref, comment=f"Generated by: {cmd}\nSee docs/EPM.md.")
        try:
            path.write_text(text)
        except OSError as exc:
            raise InputError(f"--write {args.write}: cannot write ({exc.strerror or exc})") from None
        back = load_model(str(path)).total_params
        out["written"] = {"path": str(path), "reads_back_total_params": back}
    if args.json:
        _print_json(out)
        return 0
    print(f"{base.name} -> {spec.name}  (scale: {v.scale})")
    print(f"  base size      {_count(v.base_size)}  [{v.of}: {v.base_size_source}]")
    if fit is not None and scores is not None:
        print(f"  EPM            {v.epm:.4f}  = exp(({scores[1]:g} - {scores[0]:g}) / {fit.B:.3f})")
    else:
        print(f"  EPM            {v.epm:g}")
    print(f"  target         {_count(v.target)}  = {v.epm:.4g} x {v.base_size:.5g}")
    if v.scale == "depth":
        print(f"  layers         {spec.num_layers}  = {base.num_layers} + {v.units_added} x {list(v.unit)}")
    else:
        print(f"  expert_ffn m   {v.expert_ffn}  (base {base.moe.expert_ffn}; align {v.align})   layers {spec.num_layers}")
    print(f"  total params   {_count(spec.total_params)}  residual {v.residual:+.3%} ({spec.total_params - v.target:+.4g})")
    print(f"  active params  {_count(spec.active_params)}")
    if boot:
        bd = out["bootstrap"]
        what = "layers" if v.scale == "depth" else "expert_ffn"
        print(f"  {boot.level:.0%} CI: EPM {_iv(bd['epm_interval'])}, target [{bd['target_interval'][0]:.4g}, "
              f"{bd['target_interval'][1]:.4g}], {what} {bd.get('num_layers_interval') or bd.get('expert_ffn_interval')}")
        print("  " + _boot_line(boot) + (" (--epm read as B*ln(EPM) score gain)" if scores is None else ""))
    if fit is not None:
        print("  " + _fit_line(fit))
    if args.write:
        print(f"  wrote {args.write} (reads back to {out['written']['reads_back_total_params']:.6g} params)")
    return 0

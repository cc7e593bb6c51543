"""The Effective Parameter Multiplier (EPM): how much bigger a standard model must be to match a better one.

The LatentMoE paper (arXiv 2601.18089 §4.3.1) borrows the "effective parameter count" idea of Frantar et al.
(arXiv 2502.16440): a *treated* model with ``N_treat`` physical parameters behaves like a standard model with
``N_eff`` parameters, and the multiplier is ``λ = N_eff / N_treat`` (paper Eq. 3-4). To turn accuracy into
parameters it fits a log-linear curve to the MMLU scores of the Qwen3 dense family (paper Eq. 5)::

    score(N) = A + B · ln(N / 1e9)          # A: score at 1B params, B: points per e-fold of N

The paper then multiplies a 1T base by λ ≈ 1.35 and deepens Kimi-K2 from 61 to 80 layers to reach 1.35T.

Three steps live here, each a small pure function:

1. **Fit** (:func:`load_family`, :func:`fit_family`): ordinary least squares of score on ln N. N is in billions,
   so ``A`` reads as "the score of a 1B model"; the slope ``B`` does not depend on that choice.
2. **Multiplier** (:func:`epm_from_scores`, :func:`score_gain`): a score gain Δ = S1 − S0 between a treated model
   and its baseline maps to ``λ = exp(Δ / B)``. Only the slope enters, so λ does not depend on the intercept, the
   log base or the unit of N. Inverting the curve *absolutely* (N_eff = f⁻¹(S1), λ = N_eff / N_treat) at Kimi-K2's
   MMLU 87.8 would give N_eff ≈ 38B and λ ≈ 0.04 for a 1T model (facts.md §2.3), so the paper's 1.35 can only
   come from this relative form.
3. **Variant** (:func:`make_variant`): a model whose total parameter count is λ × the base's size, built by
   repeating the base's last layer unit (depth) or by widening the routed experts (width).

Uncertainty (:func:`bootstrap_fit`): resampling the family points with replacement and refitting gives a
distribution of the slope B; every quantity that depends on B (λ, the iso-accuracy size, the layer count) gets a
percentile interval from it. All 2000 refits are one vectorised numpy computation.

Conventions a user can change, and their defaults (docs/EPM.md discusses each):

* which parameter count N means for the family: ``nominal`` (the size in the name), ``exact`` (all weights) or
  ``non-embedding`` — see :data:`CONVENTIONS`;
* which size of the base model λ multiplies: its *nominal* size (what the paper does: 1.35 × "1T") or its exact
  count (``of="exact"``). The nominal size is ``spec.reported["nominal_params"]`` if the catalog entry gives one,
  else the exact count rounded to two significant digits (:func:`nominal_round`: 1.026e12 -> 1.0e12).
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import InputError
from .models.spec import ModelSpec

#: The family bundled with the package: Qwen3 dense base models, MMLU 5-shot, with sources per row.
BUNDLED_FAMILY = Path(__file__).parent / "data" / "qwen3_dense_mmlu.csv"

#: Parameter-count conventions a family may be fitted under, and the CSV column each one reads.
CONVENTIONS = {"nominal": "nominal_params", "exact": "exact_params", "non-embedding": "non_embedding_params"}

#: N is divided by this before taking the log, so the intercept A is the fitted score at 1B parameters.
PARAMS_UNIT = 1e9

#: Significant digits kept when a model's nominal size is derived from its exact count.
NOMINAL_SIGNIFICANT_DIGITS = 2

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_COUNT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*$")


# =============================================================================================== counts


#: Largest parameter count accepted anywhere (family files, --size, --nominal): 1e15, about 1000x Kimi-K2's 1.04e12.
MAX_PARAMS = 1e15


def parse_count(text: str | float, where: str) -> float:
    """A parameter count given as a raw number (``6e8``, ``596049920``) or with a unit suffix (``0.6B``, ``1T``).

    A bare number below 10,000 is refused: it is almost certainly a count in billions (``0.6`` for Qwen3-0.6B),
    which would silently shift the fit's intercept. ``where`` names the file/flag and field in the error.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, suffix = float(text), ""
    else:
        match = _COUNT_RE.match(str(text))
        if not match:
            raise InputError(f"{where} = {text!r} is not a parameter count (give a raw count like 6e8, or 0.6B / 1T)")
        value, suffix = float(match.group(1)), match.group(2).lower()
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{where} = {str(text)[:40]!r} must be a positive parameter count")
    if suffix:
        value *= _SUFFIX[suffix]
        suffix_given = True
    else:
        suffix_given = False
    if value > MAX_PARAMS:
        raise InputError(f"{where} = {str(text)[:40]!r} is more than {MAX_PARAMS:.0e} parameters")
    if suffix_given:
        return value
    if value < 1e4:
        raise InputError(f"{where} = {text!r} looks like billions; give a raw count (0.6B = 6e8) or add a unit suffix (0.6B)")
    return value


def nominal_round(count: float, digits: int = NOMINAL_SIGNIFICANT_DIGITS) -> float:
    """Round an exact parameter count to its "marketing" size: ``digits`` significant digits.

    Kimi-K2's 1.026e12 becomes 1.0e12 (its "1T"); Hybrid-73BT-8BA's 7.259e10 becomes 7.3e10 ("73BT").
    Published names do not follow one rule (Qwen3-8B has 8.19e9 weights), so a catalog entry may state its size
    as ``reported: {nominal_params: ...}`` and a user may pass ``--nominal``.
    """
    return float(f"{count:.{digits - 1}e}")


def base_size(spec: ModelSpec, of: str = "nominal", nominal: float | None = None) -> tuple[float, str]:
    """The size λ multiplies, and a phrase saying where it came from.

    ``of="exact"``: the exact count (``spec.total_params``). ``of="nominal"``: ``nominal`` if given, else
    ``spec.reported["nominal_params"]``, else :func:`nominal_round` of the exact count.
    """
    if of == "exact":
        return float(spec.total_params), "exact parameter count"
    if of != "nominal":
        raise InputError(f"--of = {of!r} must be nominal or exact")
    if nominal is not None:
        return float(nominal), "--nominal"
    if "nominal_params" in spec.reported:
        return float(spec.reported["nominal_params"]), f"reported nominal_params of {spec.name}"
    return nominal_round(spec.total_params), (
        f"exact {spec.total_params:.4g} rounded to {NOMINAL_SIGNIFICANT_DIGITS} significant digits")


# =============================================================================================== family


@dataclass(frozen=True)
class Family:
    """The points a curve is fitted to: one model per row, its parameter count N (raw) and its score."""

    names: tuple[str, ...]
    params: np.ndarray  # raw parameter counts, float
    scores: np.ndarray
    sources: tuple[str, ...]
    path: str
    convention: str  # nominal | exact | non-embedding (the label asked for)
    column: str  # the CSV column N was read from
    bundled: bool = False

    @property
    def label(self) -> str:
        return "bundled Qwen3 dense base MMLU (5-shot)" if self.bundled else self.path


def load_family(path: str | Path | None = None, params: str | None = None) -> Family:
    """Read a family CSV (the bundled Qwen3 one when ``path`` is None).

    The CSV needs columns ``name`` and ``score``, plus the parameter count: the column
    ``<convention>_params`` (``nominal_params``, ``exact_params``, ``non_embedding_params``) if present, else a
    column ``params``. Counts are raw numbers (or carry a unit suffix, see :func:`parse_count`). Blank lines and
    lines starting with ``#`` are skipped; optional ``source``/``score_source`` columns are kept for display.
    """
    convention = params or "nominal"
    if convention not in CONVENTIONS:
        raise InputError(f"--params = {convention!r} must be one of {', '.join(CONVENTIONS)}")
    file = Path(path) if path is not None else BUNDLED_FAMILY
    where = str(path) if path is not None else "bundled family"
    from .schema import read_text

    text = read_text(file, label=f"--family {where}", what="family CSV")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    column = CONVENTIONS[convention] if CONVENTIONS[convention] in header else "params"
    missing = [c for c in ("name", column, "score") if c not in header]
    if missing:
        want = f"{CONVENTIONS[convention]} or params" if column == "params" and "params" in missing else missing[0]
        raise InputError(f"--family {where}: missing column {want} (needs name, params, score; has {', '.join(header) or 'none'})")
    names, counts, scores, sources = [], [], [], []
    for i, row in enumerate(reader, start=2):
        at = f"--family {where} row {i - 1}"
        name = (row.get("name") or "").strip() or f"row{i - 1}"
        counts.append(parse_count((row.get(column) or "").strip(), f"{at} ({name}): field {column}"))
        raw = (row.get("score") or "").strip()
        try:
            score = float(raw)
        except ValueError:
            raise InputError(f"{at} ({name}): field score = {raw!r} is not a number") from None
        if not math.isfinite(score) or abs(score) > 1e6:
            raise InputError(f"{at} ({name}): field score = {raw[:40]!r} must be a finite number in [-1e6, 1e6]")
        names.append(name)
        scores.append(score)
        sources.append((row.get("score_source") or row.get("source") or "").strip())
    if len(set(counts)) < 2:
        raise InputError(f"--family {where}: needs at least 2 points with distinct params to fit a line, got {len(counts)} "
                         f"row(s) with {len(set(counts))} distinct value(s)")
    return Family(tuple(names), np.array(counts, float), np.array(scores, float), tuple(sources),
                  str(file), convention, column, bundled=path is None)


# =============================================================================================== fit


@dataclass(frozen=True)
class Fit:
    """``score = A + B · ln(N / 1e9)`` fitted to a family by least squares."""

    A: float
    B: float
    r2: float
    family: Family

    @property
    def B_per_decade(self) -> float:
        """Slope in points per factor 10 of N (B · ln 10)."""
        return self.B * math.log(10)

    def predict(self, params: np.ndarray | float) -> np.ndarray | float:
        return self.A + self.B * np.log(np.asarray(params, float) / PARAMS_UNIT)

    @property
    def fitted(self) -> np.ndarray:
        return self.predict(self.family.params)

    @property
    def residuals(self) -> np.ndarray:
        """Observed minus fitted score, per family point."""
        return self.family.scores - self.fitted

    def params_for_score(self, score: float) -> float:
        """The absolute inverse f⁻¹(S): the N (raw count) the curve gives score S. Shown for contrast only."""
        return PARAMS_UNIT * math.exp((score - self.A) / self.B)

    def to_dict(self) -> dict:
        return {
            "formula": "score = A + B * ln(N / 1e9)",
            "family": self.family.label,
            "family_path": self.family.path,
            "params_convention": self.family.convention,
            "params_column": self.family.column,
            "A": self.A,
            "B": self.B,
            "B_per_decade": self.B_per_decade,
            "r2": self.r2,
            "n_points": len(self.family.names),
            "points": [
                {"name": n, "params": float(p), "score": float(s), "fitted": float(f), "residual": float(r), "source": src}
                for n, p, s, f, r, src in zip(self.family.names, self.family.params, self.family.scores, self.fitted,
                                              self.residuals, self.family.sources)
            ],
        }


def _line(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares intercept, slope and Sxx along the last axis (works for one fit or a stack of them)."""
    xm, ym = x.mean(axis=-1, keepdims=True), y.mean(axis=-1, keepdims=True)
    dx = x - xm
    sxx = (dx * dx).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (dx * (y - ym)).sum(axis=-1) / sxx
    intercept = ym[..., 0] - slope * xm[..., 0]
    return intercept, slope, sxx


def fit_family(family: Family) -> Fit:
    """Ordinary least squares of score on ln(N / 1e9); R² = 1 − SS_res / SS_tot."""
    x = np.log(family.params / PARAMS_UNIT)
    A, B, _ = _line(x, family.scores)
    resid = family.scores - (A + B * x)
    ss_tot = float(((family.scores - family.scores.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return Fit(float(A), float(B), r2, family)


# =============================================================================================== bootstrap


@dataclass(frozen=True)
class Bootstrap:
    """Refits of the curve on family points resampled with replacement (a nonparametric bootstrap).

    ``intercepts``/``slopes`` hold the usable draws only: a draw whose resample has fewer than two distinct N
    cannot fit a line and is skipped (``skipped`` counts them). Intervals are percentile intervals at ``level``.
    """

    intercepts: np.ndarray
    slopes: np.ndarray
    draws: int
    skipped: int
    seed: int
    level: float

    def interval(self, values: np.ndarray) -> tuple[float, float]:
        """Central percentile interval of ``values`` (one per usable draw) at ``self.level``."""
        tail = (1.0 - self.level) / 2.0
        lo, hi = np.quantile(values, [tail, 1.0 - tail])
        return float(lo), float(hi)

    def to_dict(self) -> dict:
        return {"draws": self.draws, "used": int(self.slopes.size), "skipped_degenerate": self.skipped,
                "seed": self.seed, "level": self.level,
                "A_interval": list(self.interval(self.intercepts)), "B_interval": list(self.interval(self.slopes))}


def bootstrap_fit(family: Family, draws: int = 2000, seed: int = 0, level: float = 0.9) -> Bootstrap:
    """Resample the family's points ``draws`` times (seeded) and refit all at once.

    One (draws × n) index matrix, one vectorised least-squares pass: 2000 refits of 6 points take ~1 ms.
    """
    if not isinstance(draws, int) or draws < 1:
        raise InputError(f"--bootstrap = {draws!r} must be an integer >= 1")
    if not 0.0 < level < 1.0:
        raise InputError(f"--level = {level!r} must be in (0, 1)")
    rng = np.random.default_rng(seed)
    n = len(family.names)
    idx = rng.integers(0, n, size=(draws, n))
    x = np.log(family.params / PARAMS_UNIT)[idx]
    y = family.scores[idx]
    A, B, sxx = _line(x, y)
    ok = sxx > 1e-12  # at least two distinct N in the resample
    if not ok.any():
        raise InputError(f"--bootstrap {draws}: every draw was degenerate (fewer than 2 distinct params); use more draws or points")
    return Bootstrap(A[ok], B[ok], draws, int((~ok).sum()), seed, level)


# =============================================================================================== multiplier


def require_rising_slope(B: float) -> None:
    if not B > 0:
        raise InputError(f"fit slope B = {B:.4g} is not > 0: the family's score does not rise with size, so a score "
                         "gain cannot be turned into a parameter multiplier")


def epm_from_scores(B: float | np.ndarray, baseline: float, treated: float) -> float | np.ndarray:
    """λ = exp((S1 − S0) / B): the treated model matches a baseline-architecture model λ times larger.

    From the fit, the baseline-architecture score rises by B per e-fold of N; a gain Δ = S1 − S0 is worth Δ / B
    e-folds, i.e. a factor exp(Δ / B). This is f⁻¹(S1) / f⁻¹(S0): the intercept cancels.
    """
    if isinstance(B, np.ndarray):
        with np.errstate(over="ignore"):  # an overflowing bootstrap draw is inf, read as "unbounded"
            return np.exp((treated - baseline) / np.asarray(B, float))
    e_folds = (treated - baseline) / B
    if not math.isfinite(e_folds) or e_folds > 700:  # exp(709.8) is the largest finite double
        raise InputError(f"score gain {treated - baseline:.4g} / B = {B:.4g} is {e_folds:.4g} e-folds: EPM = exp(...) "
                         "overflows; check the scores and the family")
    return math.exp(e_folds)


def score_gain(B: float | np.ndarray, epm: float) -> float | np.ndarray:
    """Δ = B · ln λ, the inverse of :func:`epm_from_scores`."""
    if not epm > 0:
        raise InputError(f"--epm = {epm!r} must be > 0")
    return B * math.log(epm)


def check_epm(epm: float, where: str = "--epm") -> float:
    if not (isinstance(epm, (int, float)) and math.isfinite(epm) and epm > 0):
        raise InputError(f"{where} = {epm!r} must be a finite number > 0")
    return float(epm)


# =============================================================================================== variant


def repeat_unit(layers: tuple[str, ...]) -> tuple[str, ...]:
    """The block of layers a deeper variant repeats: the shortest suffix seen at least twice in a row at the end.

    Kimi-K2 (``AD``, 60 × ``AE``) gives ``("AE",)``. Hybrid-73BT-8BA (4 × ``MEMEMEMEMEME*``) gives that
    13-layer unit, keeping the Mamba/MoE/attention mix. Nemotron-3 Super ends ``...MEME`` and gives ``("M", "E")``.
    A model whose end repeats nothing falls back to its last layer.
    """
    n = len(layers)
    for p in range(1, n // 2 + 1):
        if layers[n - p:] == layers[n - 2 * p:n - p]:
            return layers[n - p:]
    return layers[-1:]


def parse_unit(text: str, layers: tuple[str, ...]) -> tuple[str, ...]:
    """``auto`` -> :func:`repeat_unit`; ``last`` -> the last layer; else comma-separated layers (``AE`` or ``M,E``)."""
    if text == "auto":
        return repeat_unit(layers)
    if text == "last":
        return layers[-1:]
    unit = tuple(part.strip() for part in text.split(","))
    if not all(unit) or any(set(u) - set("ADEM") for u in unit):
        raise InputError(f"--unit = {text!r} must be auto, last, or comma-separated layers made of blocks A, D, E, M (e.g. AE or M,E)")
    return unit


@dataclass(frozen=True)
class Variant:
    """A model sized to λ × the base's size, and how close it lands."""

    spec: ModelSpec
    base: ModelSpec
    epm: float
    of: str
    base_size: float
    base_size_source: str
    target: float
    scale: str  # depth | width
    unit: tuple[str, ...] = ()  # depth: the repeated layers
    units_added: int = 0  # depth: how many units were appended
    expert_ffn: int = 0  # width: the chosen routed-expert width m
    align: int = 1  # width: m is a multiple of this

    @property
    def total_params(self) -> int:
        return self.spec.total_params

    @property
    def residual(self) -> float:
        """(total − target) / target: the relative miss of the nearest reachable size."""
        return (self.total_params - self.target) / self.target


def _depth_count(base: ModelSpec, unit: tuple[str, ...], target: float) -> tuple[int, int]:
    """Units to append so the total lands nearest ``target`` (may be negative), and params per unit."""
    sections = {"A": base.attention, "E": base.moe, "M": base.mamba, "D": base.dense_ffn or None}
    missing = sorted({b for layer in unit for b in layer if sections.get(b) is None})
    if missing:
        raise InputError(f"--unit {','.join(unit)}: model {base.name} has no {missing[0]} blocks to repeat "
                         f"(its layers use {''.join(sorted({b for layer in base.layers for b in layer}))})")
    per_unit = base.with_layers(base.layers + unit).total_params - base.total_params
    if per_unit <= 0:
        raise InputError(f"model {base.name}: repeat unit {list(unit)} adds no parameters")
    return round((target - base.total_params) / per_unit), per_unit


def _width_choice(base: ModelSpec, target: float, align: int) -> int:
    """Routed-expert width m (a multiple of ``align``) putting the total nearest ``target`` (may be < align).

    The total is linear in m: every MoE block holds num_experts routed experts of ffn_matrices · d_in · m weights.
    """
    if base.moe is None or base.block_count("E") == 0:
        raise InputError(f"model {base.name}: --scale width needs MoE blocks (this model has none); use --scale depth")
    at = lambda m: replace(base, moe=replace(base.moe, expert_ffn=m)).total_params  # noqa: E731
    slope = at(2) - at(1)
    fixed = at(1) - slope
    return int(round((target - fixed) / slope / align)) * align


def make_variant(base: ModelSpec, epm: float, *, scale: str = "depth", of: str = "nominal", nominal: float | None = None,
                 unit: str = "auto", align: int = 1, name: str | None = None) -> Variant:
    """Build the model whose total parameter count is nearest ``epm`` × the base's size.

    ``scale="depth"`` appends copies of a layer unit (:func:`parse_unit`); it can only grow the model, so a target
    below the base's exact count is an error. ``scale="width"`` sets the routed-expert width m (shared experts,
    attention and everything else unchanged), rounded to a multiple of ``align``; it can also shrink a model.
    """
    epm = check_epm(epm)
    if scale not in ("depth", "width"):
        raise InputError(f"--scale = {scale!r} must be depth or width")
    if not isinstance(align, int) or align < 1:
        raise InputError(f"--align = {align!r} must be an integer >= 1")
    size, size_source = base_size(base, of, nominal)
    target = epm * size
    new_name = name or f"{base.name}-epm{epm:.4g}"
    reported = {"nominal_params": float(f"{target:.6g}")}
    if scale == "depth":
        layer_unit = parse_unit(unit, base.layers)
        count, _ = _depth_count(base, layer_unit, target)
        if count < 0:
            raise InputError(
                f"--epm {epm:g} x {of} size {size:.4g} = {target:.4g} params is smaller than {base.name}'s "
                f"{base.total_params:.4g}: adding layers cannot reach it (use --scale width, or --of exact with an EPM >= 1)")
        from .schema.model import MAX_LAYERS

        if base.num_layers + len(layer_unit) * count > MAX_LAYERS:
            raise InputError(f"--epm {epm:g}: the variant would have {base.num_layers + len(layer_unit) * count} layers, "
                             f"more than the {MAX_LAYERS} a model may have")
        spec = base.with_layers(base.layers + layer_unit * count, name=new_name)
        spec = replace(spec, reported=reported)
        return Variant(spec.validate(f"variant {new_name}"), base, epm, of, size, size_source, target, scale,
                       unit=layer_unit, units_added=count)
    m = _width_choice(base, target, align)
    if m < align:
        raise InputError(f"--epm {epm:g} x {of} size {size:.4g} = {target:.4g} params needs a routed-expert width below "
                         f"{align} in {base.name}: not reachable by --scale width")
    from .schema.model import _WIDTH

    if m > _WIDTH:
        raise InputError(f"--epm {epm:g}: the variant needs a routed-expert width of {m}, more than the {_WIDTH} allowed")
    spec = replace(base, moe=replace(base.moe, expert_ffn=m), name=new_name, reported=reported)
    return Variant(spec.validate(f"variant {new_name}"), base, epm, of, size, size_source, target, scale, expert_ffn=m,
                   align=align)


def variant_choice_for_epm(variant: Variant, epm: float) -> int:
    """The layer count (depth) or expert width (width) the same construction picks for another λ.

    Used to carry a bootstrap interval of λ through to the architecture; depth is clipped at the base's depth.
    """
    target = epm * variant.base_size
    if variant.scale == "depth":
        count, _ = _depth_count(variant.base, variant.unit, target)
        return variant.base.num_layers + len(variant.unit) * max(count, 0)
    return max(_width_choice(variant.base, target, variant.align), 0)


def variant_yaml(variant: Variant, base_ref: str | None, comment: str = "") -> str:
    """Catalog-format YAML for a variant.

    With ``base_ref`` (a bundled catalog name) the entry is ``base: NAME`` plus the override (``layers`` /
    ``hybrid_pattern`` for depth, ``moe: {expert_ffn: m}`` for width). Without it (the base came from a file) the
    entry spells out the whole architecture. ``reported.nominal_params`` records the target, so a variant of the
    variant multiplies this size.
    """
    import yaml

    from .models.catalog import spec_to_entry

    spec = variant.spec
    description = (f"{variant.base.name} scaled in {variant.scale} to EPM {variant.epm:g} x "
                   f"{variant.of} {variant.base_size:.4g} = {variant.target:.4g} params")
    source = "lmsim epm variant (docs/EPM.md)" + (f"; base {variant.base.source}" if variant.base.source else "")
    if base_ref:
        entry: dict = {"name": spec.name, "base": base_ref, "description": description, "source": source}
        if variant.scale == "depth":
            full = spec_to_entry(spec)
            entry.update({k: full[k] for k in ("layers", "hybrid_pattern") if k in full})
        else:
            entry["moe"] = {"expert_ffn": variant.expert_ffn}
    else:
        entry = {**spec_to_entry(spec), "description": description, "source": source}
    entry["reported"] = {"nominal_params": float(f"{variant.target:.6g}")}
    head = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
    return head + yaml.safe_dump(entry, sort_keys=False, default_flow_style=None, width=120)

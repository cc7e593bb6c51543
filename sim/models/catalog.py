"""The model catalog: YAML entries in ``sim/models/catalog/`` (or any path a user gives) -> ModelSpec.

An entry either spells out the architecture or names a ``base`` entry and overrides fields; an entry may
also ask for the paper's LatentMoE rule with ``latentmoe: {alpha: 4, variant: acc}``. Layer structure is
given as runs (``layers: [[AD, 1], [AE, 60]]``) or as a Nemotron-H pattern string (``hybrid_pattern``, where
``M`` is Mamba-2, ``E`` MoE, ``*`` attention and ``-`` a dense MLP).
"""

from __future__ import annotations

import functools
from dataclasses import fields, replace
from pathlib import Path

import yaml

from ..errors import InputError
from .spec import Attention, Mamba, ModelSpec, MoE, Precision, to_latentmoe

CATALOG_DIR = Path(__file__).parent / "catalog"
_NEMOTRON_BLOCKS = {"M": "M", "E": "E", "*": "A", "-": "D"}
_TOP_KEYS = {f.name for f in fields(ModelSpec)} - {"layers", "attention", "moe", "mamba", "precision"}
_SECTIONS = {"attention": Attention, "moe": MoE, "mamba": Mamba, "precision": Precision}
_DERIVE_KEYS = {"base", "latentmoe", "layers", "hybrid_pattern"}


def list_models() -> list[str]:
    """Names of the bundled catalog entries."""
    return sorted(p.stem for p in CATALOG_DIR.glob("*.yaml"))


def load_model(name_or_path: str) -> ModelSpec:
    """A bundled entry by name, or a YAML file by path (``.yaml``/``.yml``) or a HF ``config.json``."""
    if name_or_path.endswith((".yaml", ".yml", ".json")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(f"{name_or_path}: no such model file")
        if path.suffix == ".json":
            from .hf_import import spec_from_hf_config

            return spec_from_hf_config(path)
        return _load_path(str(path.resolve()))
    if name_or_path not in list_models():
        raise InputError(f"unknown model {name_or_path!r} (known: {', '.join(list_models())})")
    return _load_path(str(CATALOG_DIR / f"{name_or_path}.yaml"))


@functools.lru_cache(maxsize=None)
def _load_path(path: str) -> ModelSpec:
    return spec_from_dict(_read_yaml(path), path)


def _read_yaml(path: str) -> dict:
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise InputError(f"{path}:{line} malformed YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of model fields at the top level")
    return data


def _resolve(data: dict, where: str, depth: int = 0) -> dict:
    """Merge an entry over its ``base`` (recursively), section by section."""
    base_name = data.get("base")
    if base_name is None:
        return dict(data)
    if depth > 8:
        raise InputError(f"{where}: field base: chain too deep (cycle?)")
    if base_name not in list_models():
        raise InputError(f"{where}: field base = {base_name!r} is not a catalog model (known: {', '.join(list_models())})")
    base = _resolve(_read_yaml(str(CATALOG_DIR / f"{base_name}.yaml")), base_name, depth + 1)
    base.pop("latentmoe", None)
    if "layers" in data or "hybrid_pattern" in data:
        base.pop("layers", None)
        base.pop("hybrid_pattern", None)
    merged = {**base}
    for key, value in data.items():
        if key in _SECTIONS and isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    merged.pop("base")
    return merged


def _section(cls, value, where: str, key: str):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(f"{where}: field {key} must be a mapping")
    allowed = {f.name for f in fields(cls)}
    unknown = set(value) - allowed
    if unknown:
        raise InputError(f"{where}: unknown field {key}.{sorted(unknown)[0]} (allowed: {', '.join(sorted(allowed))})")
    for k, v in value.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
            raise InputError(f"{where}: field {key}.{k} = {v} must be >= 0")
    try:
        return cls(**value)
    except TypeError as exc:
        raise InputError(f"{where}: field {key}: {exc}") from None


def parse_layers(data: dict, where: str) -> tuple[str, ...]:
    if "hybrid_pattern" in data:
        pattern = str(data["hybrid_pattern"])
        bad = set(pattern) - set(_NEMOTRON_BLOCKS)
        if bad:
            raise InputError(f"{where}: field hybrid_pattern has {sorted(bad)[0]!r}; allowed characters: M E * -")
        return tuple(_NEMOTRON_BLOCKS[c] for c in pattern)
    runs = data.get("layers")
    if not isinstance(runs, list) or not runs:
        raise InputError(f"{where}: field layers must be a non-empty list of [layer, count] runs (or give hybrid_pattern)")
    layers: list[str] = []
    for run in runs:
        if not (isinstance(run, list) and len(run) == 2 and isinstance(run[1], int) and run[1] >= 1):
            raise InputError(f"{where}: field layers entry {run!r} must be [LAYER, COUNT >= 1]")
        layers.extend([str(run[0])] * run[1])
    return tuple(layers)


def spec_from_dict(data: dict, where: str) -> ModelSpec:
    """Build and validate a ModelSpec from an entry's raw mapping (``where`` names it in errors)."""
    data = _resolve(data, where)
    unknown = set(data) - _TOP_KEYS - set(_SECTIONS) - _DERIVE_KEYS
    if unknown:
        raise InputError(f"{where}: unknown field {sorted(unknown)[0]} (allowed: {', '.join(sorted(_TOP_KEYS | set(_SECTIONS) | _DERIVE_KEYS))})")
    for key in ("name", "hidden_size", "vocab_size"):
        if key not in data:
            raise InputError(f"{where}: missing field {key}")
    for key in ("hidden_size", "vocab_size", "dense_ffn", "max_context"):
        value = data.get(key, 1)
        low = 0 if key == "dense_ffn" else 1  # dense_ffn 0: no dense FFN blocks (checked by validate)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise InputError(f"{where}: field {key} = {value!r} must be an integer >= {low}")
    kwargs = {k: data[k] for k in _TOP_KEYS if k in data}
    kwargs["name"] = str(kwargs["name"])
    kwargs["reported"] = {str(k): float(v) for k, v in (data.get("reported") or {}).items()}
    spec = ModelSpec(
        layers=parse_layers(data, where),
        attention=_section(Attention, data.get("attention"), where, "attention"),
        moe=_section(MoE, data.get("moe"), where, "moe"),
        mamba=_section(Mamba, data.get("mamba"), where, "mamba"),
        precision=_section(Precision, data.get("precision") or {}, where, "precision"),
        **kwargs,
    )
    lm = data.get("latentmoe")
    if lm is not None:
        if not isinstance(lm, dict) or set(lm) - {"alpha", "variant"}:
            raise InputError(f"{where}: field latentmoe must be {{alpha: INT, variant: acc|eff}}")
        alpha, variant = lm.get("alpha", 4), lm.get("variant", "acc")
        if not isinstance(alpha, int) or alpha < 1 or variant not in ("acc", "eff"):
            raise InputError(f"{where}: field latentmoe: alpha must be an integer >= 1 and variant acc or eff")
        spec = replace(to_latentmoe(spec, alpha, variant, name=spec.name), reported=kwargs["reported"])
    return spec.validate(where)


def spec_to_entry(spec: ModelSpec) -> dict:
    """The complete catalog entry of ``spec`` (no ``base``), which :func:`spec_from_dict` reads back equal."""
    from dataclasses import asdict

    from .spec import compress_layers

    entry: dict = {"name": spec.name, "description": spec.description, "source": spec.source}
    for key in ("hidden_size", "vocab_size", "tie_embeddings", "max_context", "dense_ffn", "dense_activation"):
        entry[key] = getattr(spec, key)
    if all(len(layer) == 1 for layer in spec.layers):
        entry["hybrid_pattern"] = "".join({"A": "*", "D": "-"}.get(b, b) for b in spec.layers)
    else:
        entry["layers"] = compress_layers(spec.layers)
    for key in ("attention", "moe", "mamba", "precision"):
        if getattr(spec, key) is not None:
            entry[key] = asdict(getattr(spec, key))
    entry["reported"] = dict(spec.reported)
    return entry


def write_entry(spec: ModelSpec, path: str | Path, comment: str = "") -> Path:
    """Write ``spec`` as a catalog YAML entry at ``path`` (usable as ``--model path``)."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        raise InputError(f"{path}: a catalog entry must end in .yaml or .yml")
    head = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
    path.write_text(head + yaml.safe_dump(spec_to_entry(spec), sort_keys=False, default_flow_style=None, width=120))
    return path

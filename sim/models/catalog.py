"""The model catalog: YAML entries in ``sim/models/catalog/`` (or any path a user gives) -> ModelSpec.

An entry either spells out the architecture or names a ``base`` entry and overrides fields; an entry may
also ask for the paper's LatentMoE rule with ``latentmoe: {alpha: 4, variant: acc}``. Layer structure is
given as runs (``layers: [[AD, 1], [AE, 60]]``) or as a Nemotron-H pattern string (``hybrid_pattern``, where
``M`` is Mamba-2, ``E`` MoE, ``*`` attention and ``-`` a dense MLP).
"""

from __future__ import annotations

import functools
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import InputError, unknown_name
from .spec import Attention, Mamba, ModelSpec, MoE, Precision, to_latentmoe

CATALOG_DIR = Path(__file__).parent / "catalog"
_NEMOTRON_BLOCKS = {"M": "M", "E": "E", "*": "A", "-": "D"}
_SECTIONS = ("attention", "moe", "mamba", "precision")
_MAX_BASE_DEPTH = 8  # base chains in the catalog are 1 deep; a longer one is a cycle or a mistake


def list_models() -> list[str]:
    """Names of the bundled catalog entries."""
    return sorted(p.stem for p in CATALOG_DIR.glob("*.yaml"))


def load_model(name_or_path: str) -> ModelSpec:
    """A bundled entry by name, or a YAML file by path (``.yaml``/``.yml``, or anything with a ``/``) or a
    HF ``config.json`` (a path ending in ``.json``). Files are cached by path and modification time."""
    text = str(name_or_path)
    if text.lower().endswith((".yaml", ".yml", ".json")) or "/" in text or os.sep in text:
        if text.lower().endswith(".json"):
            from .hf_import import spec_from_hf_config

            return spec_from_hf_config(text)
        from ..schema.loader import file_identity

        resolved, mtime_ns, size = file_identity(text, "model file")
        return _load_path(resolved, text, mtime_ns, size)
    if text not in list_models():
        raise unknown_name("model", text, list_models(), "or pass a model .yaml or a HF config.json path")
    return _load_bundled(text)


@functools.lru_cache(maxsize=None)
def _load_bundled(name: str) -> ModelSpec:
    return spec_from_dict(_read_entry(CATALOG_DIR / f"{name}.yaml", f"catalog/{name}.yaml"), f"catalog/{name}.yaml")


@functools.lru_cache(maxsize=64)
def _load_path(resolved: str, label: str, mtime_ns: int, size: int) -> ModelSpec:
    # mtime_ns and size are part of the cache key only: an edited file is read again.
    return spec_from_dict(_read_entry(Path(resolved), label), label)


def _read_entry(path: Path, label: str) -> dict:
    from ..schema import load_file

    data = load_file(path, label=label, what="model file")
    if not isinstance(data, dict):
        from ..schema import short

        raise InputError(f"{label}: top level must be a mapping of model fields, not {short(data)}")
    return data


def _resolve(data: dict, where: str, depth: int = 0) -> dict:
    """Merge an entry over its ``base`` (recursively), section by section."""
    base_name = data.get("base")
    if base_name is None:
        return dict(data)
    if depth >= _MAX_BASE_DEPTH:
        raise InputError(f"{where}: field base: chain longer than {_MAX_BASE_DEPTH} entries (a cycle?)")
    if not isinstance(base_name, str) or base_name not in list_models():
        raise InputError(str(unknown_name("base model", base_name if isinstance(base_name, str) else repr(base_name),
                                          list_models())).replace("unknown", f"{where}: field base: unknown", 1))
    base = _resolve(_read_entry(CATALOG_DIR / f"{base_name}.yaml", f"catalog/{base_name}.yaml"), base_name, depth + 1)
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


def parse_layers(data: dict, where: str) -> tuple[str, ...]:
    """The layers of ``{"hybrid_pattern": ...}`` or ``{"layers": [[BLOCKS, COUNT], ...]}``, validated with the
    catalog schema's layer fields (:class:`~latentmoe_sim.schema.model.LayerFields`)."""
    from ..schema import validate
    from ..schema.model import LayerFields

    fields = {k: data[k] for k in ("layers", "hybrid_pattern") if k in data}
    return validate(LayerFields, fields, where).layer_tuple()


def spec_from_dict(data: Any, where: str) -> ModelSpec:
    """Build and validate a ModelSpec from an entry's raw mapping (``where`` names it in errors).

    The entry is merged over its ``base``, then validated by the catalog schema
    (:class:`~latentmoe_sim.schema.model.ModelEntry`: types, ranges, unknown keys, cross-field rules)."""
    from ..schema import short, validate
    from ..schema.model import ModelEntry

    if not isinstance(data, dict):
        raise InputError(f"{where}: top level must be a mapping of model fields, not {short(data)}")
    entry = validate(ModelEntry, _resolve(data, where), where)
    reported = dict(entry.reported)
    spec = ModelSpec(
        name=entry.name,
        hidden_size=entry.hidden_size,
        vocab_size=entry.vocab_size,
        layers=entry.layer_tuple(),
        attention=Attention(**entry.attention.model_dump()) if entry.attention else None,
        moe=MoE(**entry.moe.model_dump()) if entry.moe else None,
        mamba=Mamba(**entry.mamba.model_dump()) if entry.mamba else None,
        dense_ffn=entry.dense_ffn,
        dense_activation=entry.dense_activation,
        tie_embeddings=entry.tie_embeddings,
        max_context=entry.max_context,
        precision=Precision(**entry.precision.model_dump()),
        description=" ".join(entry.description.split()),
        source=" ".join(entry.source.split()),
        reported=reported,
    )
    if entry.latentmoe is not None:
        lm = entry.latentmoe
        spec = replace(to_latentmoe(spec, lm.alpha, lm.variant, name=spec.name), reported=reported)
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


def write_entry(spec: ModelSpec, path: str | Path, comment: str = "", flag: str = "--write") -> Path:
    """Write ``spec`` as a catalog YAML entry at ``path`` (usable as ``--model path``)."""
    import yaml

    from ..schema.outputs import check_output_path, write_text

    checked = check_output_path(flag, path, (".yaml", ".yml"))
    head = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
    return write_text(flag, checked, head + yaml.safe_dump(spec_to_entry(spec), sort_keys=False, default_flow_style=None, width=120))

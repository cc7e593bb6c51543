"""Calibration: framework and kernel constants fitted to measured rows, kept as a named layer over the
hardware profiles.

A calibration file (YAML) names the rows it was fitted on and the rows held out, and holds one or more
layers. Each layer matches hardware and/or frameworks and replaces some **calibratable** profile fields,
in the profile's YAML units::

    name: hopper-2026-11
    description: ...
    method: ...                          # how it was fitted (free text)
    fitted_on: [row_id, ...]             # the rows the constants came from
    held_out: [row_id, ...]              # the rows the reported error is measured on
    layers:
      - match: {hw: [h100_sxm, h200_sxm, h800]}          # absent key = any
        fields: {memory_efficiency: 0.9, step_overhead_us: 300}
      - match: {hw: [h100_sxm], framework: [vllm]}
        fields: {step_overhead_us: 250}

Layers apply in file order, later ones overriding earlier ones. Only constants that describe the software
and the kernels may be fitted (:data:`CALIBRATABLE`); datasheet values (peaks, bandwidths, capacities) may
not. There are no per-row factors.

Where it applies: only where asked. ``lmsim validate --calibration hopper`` (a shipped calibration, by name)
or ``--calibration FILE`` applies it as a layer and prints the raw model's errors beside it; the default, and
``--uncalibrated``, is the raw model. The shipped Hopper calibration trades one metric's held-out error
against another's (docs/VALIDATION.md), so it is not applied by default. The hardware profiles themselves,
and every other command, stay uncalibrated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..hwprofile_io import FIELDS, FieldSpec

#: Profile fields a calibration may set (YAML leaf name): software and kernel constants, not datasheet values.
CALIBRATABLE = ("compute_efficiency", "memory_efficiency", "mem_op_latency_us", "scaleup_latency_us",
                "scaleout_latency_us", "comm_efficiency", "step_overhead_us", "seq_overhead_us")

#: shipped calibrations, by name (``--calibration NAME``): sim/data/calibration-<name>.yaml
SHIPPED = {"hopper": Path(__file__).resolve().parent.parent / "data" / "calibration-hopper.yaml"}


def field_spec(name: str) -> FieldSpec:
    """The profile schema entry of a calibratable field (by its YAML leaf name)."""
    for spec in FIELDS:
        if spec.path.rsplit(".", 1)[-1] == name:
            return spec
    raise KeyError(name)


@dataclass(frozen=True)
class Layer:
    """Fields (SI, keyed by HwProfile attribute) for the hardware and frameworks it matches (None = any)."""

    hw: tuple[str, ...] | None
    framework: tuple[str, ...] | None
    fields: dict  # YAML leaf name -> YAML value

    def matches(self, hw: str, framework: str) -> bool:
        return (self.hw is None or hw in self.hw) and (self.framework is None or framework in self.framework)


@dataclass(frozen=True)
class Calibration:
    name: str
    description: str
    method: str
    fitted_on: tuple[str, ...]
    held_out: tuple[str, ...]
    layers: tuple[Layer, ...]
    source: str = ""

    def hw_fields(self, hw: str, framework: str) -> dict:
        """HwProfile attribute -> SI value of every layer matching (hw, framework), later layers winning."""
        out = {}
        for layer in self.layers:
            if layer.matches(hw, framework):
                for name, value in layer.fields.items():
                    spec = field_spec(name)
                    out[spec.attr] = value * spec.to_si
        return out

    def describe(self) -> dict:
        return {"name": self.name, "file": self.source, "description": self.description, "method": self.method,
                "fitted_on": list(self.fitted_on), "held_out": list(self.held_out),
                "layers": [{"hw": list(l.hw) if l.hw else "any", "framework": list(l.framework) if l.framework else "any",
                            "fields": dict(l.fields)} for l in self.layers]}

    def to_yaml(self) -> str:
        import yaml

        doc = {"name": self.name, "description": self.description, "method": self.method,
               "fitted_on": list(self.fitted_on), "held_out": list(self.held_out),
               "layers": [{"match": {k: list(v) for k, v in (("hw", l.hw), ("framework", l.framework)) if v},
                           "fields": {k: float(f"{v:.4g}") for k, v in l.fields.items()}} for l in self.layers]}
        return yaml.safe_dump(doc, sort_keys=False, width=110)


def parse_calibration(doc, label: str) -> Calibration:
    """A :class:`Calibration` from a parsed YAML document (InputError naming ``label`` and the field)."""
    if not isinstance(doc, dict):
        raise InputError(f"{label}: a calibration file is a mapping with name, fitted_on, held_out and layers")
    allowed = {"name", "description", "method", "fitted_on", "held_out", "layers"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise InputError(f"{label}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    for key in ("name", "fitted_on", "held_out", "layers"):
        if key not in doc:
            raise InputError(f"{label}: missing key {key!r}")

    def ids(key):
        value = doc[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{label}: {key} must be a list of row ids")
        return tuple(value)

    fitted, held = ids("fitted_on"), ids("held_out")
    both = sorted(set(fitted) & set(held))
    if both:
        raise InputError(f"{label}: row {both[0]!r} is both in fitted_on and held_out")
    if not isinstance(doc["layers"], list) or not doc["layers"]:
        raise InputError(f"{label}: layers must be a non-empty list")
    layers = []
    for i, raw in enumerate(doc["layers"]):
        where = f"{label}: layers[{i}]"
        if not isinstance(raw, dict) or set(raw) - {"match", "fields"} or "fields" not in raw:
            raise InputError(f"{where}: a layer is {{match: {{hw: [...], framework: [...]}}, fields: {{...}}}}")
        match = raw.get("match") or {}
        if not isinstance(match, dict) or set(match) - {"hw", "framework"}:
            raise InputError(f"{where}.match: only hw and framework (lists of names) are allowed")
        sel = {}
        for key in ("hw", "framework"):
            v = match.get(key)
            if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
                raise InputError(f"{where}.match.{key}: a list of names")
            sel[key] = tuple(v) if v is not None else None
        fields = raw["fields"]
        if not isinstance(fields, dict) or not fields:
            raise InputError(f"{where}.fields: a non-empty mapping of field -> value")
        for name, value in fields.items():
            if name not in CALIBRATABLE:
                raise InputError(f"{where}.fields.{name}: not calibratable (allowed: {', '.join(CALIBRATABLE)})")
            spec = field_spec(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not spec.in_range(value * spec.to_si):
                raise InputError(f"{where}.fields.{name} = {value!r}: allowed {spec.allowed}")
        layers.append(Layer(sel["hw"], sel["framework"], {k: float(v) for k, v in fields.items()}))
    return Calibration(name=str(doc["name"]), description=str(doc.get("description", "")), method=str(doc.get("method", "")),
                       fitted_on=fitted, held_out=held, layers=tuple(layers), source=label)


def load_calibration(path: str | Path) -> Calibration:
    """Read and check a calibration file, or a shipped one by name (the project's one safe loader)."""
    from ..schema.loader import load_file

    if str(path) in SHIPPED:
        path = SHIPPED[str(path)]
    return parse_calibration(load_file(path, label=f"--calibration {path}", what="calibration file"),
                             f"--calibration {path}")


__all__ = ["CALIBRATABLE", "Calibration", "Layer", "SHIPPED", "load_calibration", "parse_calibration"]

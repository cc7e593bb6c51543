"""Read, validate and list hardware-profile YAML files (schema: ``hwprofiles/README.md``).

A profile file states every number in human units (TFLOP/s, GiB, TB/s, GB/s, Gb/s, µs, W), each as
``{value: <number>, source: "<where it comes from>"}``. :func:`load_hw` turns it into an SI
:class:`~latentmoe_sim.hw.HwProfile` (FLOP/s, bytes, bytes/s, seconds, W). Every problem with a file is an
:class:`~latentmoe_sim.errors.InputError` of one line naming the file, the field and what is allowed.

Public functions:

* :func:`load_hw` — a bundled name (``"h100_sxm"``) or a path ending in ``.yaml``/``.yml``; cached.
* :func:`list_hw` — the bundled profile names.
* :func:`validate_hw_file` — read and validate one file, uncached.
* :data:`FIELDS` — the schema table (YAML path, unit, SI conversion, allowed range), used by the CLI.

``yaml`` is imported lazily so that importing this module (e.g. for ``lmsim --help``) costs nothing.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import InputError
from .hw import HwProfile

__all__ = ["FIELDS", "DTYPES", "FieldSpec", "bundled_dir", "list_hw", "load_hw", "validate_hw_file"]

GiB = 2**30


@dataclass(frozen=True)
class FieldSpec:
    """One numeric leaf of the YAML schema and how it maps onto :class:`HwProfile`.

    ``si_value = yaml_value * to_si``. The allowed range is ``lo < v`` (``lo_open``) or ``lo <= v``, and
    ``v <= hi`` when ``hi`` is set.
    """

    path: str  #: dotted YAML path, e.g. "memory.hbm_bandwidth_TBps"
    attr: str  #: HwProfile attribute ("peak_flops.<dtype>" for the per-dtype peaks)
    unit: str  #: unit of the YAML value
    to_si: float  #: multiply the YAML value by this to get SI
    si_unit: str  #: unit of the HwProfile attribute
    lo: float = 0.0
    lo_open: bool = True
    hi: float | None = None
    integer: bool = False
    required: bool = True
    nullable: bool = False  #: value may be null (e.g. a dtype without tensor cores)
    doc: str = ""

    @property
    def range_text(self) -> str:
        """Allowed range in interval notation, e.g. ``(0, 1]`` or ``integer >= 1``."""
        if self.integer:
            return f"integer >= {self.lo:g}"
        left = "(" if self.lo_open else "["
        right = f"{self.hi:g}]" if self.hi is not None else "inf)"
        return f"{left}{self.lo:g}, {right}"

    @property
    def allowed(self) -> str:
        """Range plus unit for messages, e.g. ``(0, inf) TB/s``, ``(0, 1]``, ``integer >= 1``."""
        plain = self.integer or self.unit == "fraction"
        return self.range_text if plain else f"{self.range_text} {self.unit}"

    def in_range(self, v: float) -> bool:
        if not math.isfinite(v):
            return False
        if v < self.lo or (self.lo_open and v == self.lo):
            return False
        return self.hi is None or v <= self.hi


#: Dtypes a profile may give a dense peak for; ``bf16`` is required, the others optional or null.
DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8", "int8", "fp4")

_POS = dict(lo=0.0, lo_open=True)  # (0, inf)
_NONNEG = dict(lo=0.0, lo_open=False)  # [0, inf)
_FRACTION = dict(lo=0.0, lo_open=True, hi=1.0)  # (0, 1]

#: The schema, in file order. Every numeric leaf of a profile file is one entry here.
FIELDS: tuple[FieldSpec, ...] = (
    *(
        FieldSpec(
            f"compute.peak_tflops_dense.{dt}", f"peak_flops.{dt}", "TFLOP/s", 1e12, "FLOP/s", **_POS,
            required=(dt == "bf16"), nullable=(dt != "bf16"),
            doc=f"dense (no 2:4 sparsity) {dt} tensor-core peak; null or absent = unsupported",
        )
        for dt in DTYPES
    ),
    FieldSpec("compute.compute_efficiency", "compute_efficiency", "fraction", 1.0, "fraction", **_FRACTION,
              doc="achievable fraction of dense peak for large GEMMs and attention"),
    FieldSpec("memory.hbm_capacity_GiB", "hbm_capacity_bytes", "GiB", GiB, "B", **_POS,
              doc="HBM per GPU, usable as nvidia-smi reports it where known (1 GiB = 2^30 B)"),
    FieldSpec("memory.hbm_bandwidth_TBps", "hbm_bandwidth_bytes_per_s", "TB/s", 1e12, "B/s", **_POS,
              doc="HBM bandwidth per GPU, datasheet (1 TB/s = 1e12 B/s)"),
    FieldSpec("memory.memory_efficiency", "memory_efficiency", "fraction", 1.0, "fraction", **_FRACTION,
              doc="achievable fraction of HBM bandwidth for streaming ops"),
    FieldSpec("memory.mem_op_latency_us", "mem_op_latency_s", "us", 1e-6, "s", **_NONNEG,
              doc="fixed latency added to every memory-bound op (launch + ramp)"),
    FieldSpec("memory.runtime_reserve_GiB", "runtime_reserve_bytes", "GiB", GiB, "B", **_NONNEG,
              doc="HBM kept free by the runtime (CUDA context, buffers, fragmentation); < hbm_capacity_GiB"),
    FieldSpec("interconnect.nvlink_GBps_per_direction", "nvlink_bandwidth_bytes_per_s", "GB/s", 1e9, "B/s", **_POS,
              doc="scale-up (NVLink) bandwidth per GPU per direction (1 GB/s = 1e9 B/s)"),
    FieldSpec("interconnect.nvlink_domain_size", "nvlink_domain_size", "GPUs", 1, "GPUs", lo=1, lo_open=False,
              integer=True, doc="GPUs in one NVLink domain (8 for HGX, 72 for NVL72)"),
    FieldSpec("interconnect.nvlink_latency_us", "nvlink_latency_s", "us", 1e-6, "s", **_NONNEG,
              doc="fixed latency of one collective step inside the NVLink domain"),
    FieldSpec("interconnect.scaleout_Gbps_per_gpu", "scaleout_bandwidth_bytes_per_s", "Gb/s", 1e9 / 8, "B/s", **_POS,
              doc="scale-out NIC bandwidth per GPU per direction, in gigaBITS/s (1 Gb/s = 1.25e8 B/s)"),
    FieldSpec("interconnect.scaleout_latency_us", "scaleout_latency_s", "us", 1e-6, "s", **_NONNEG,
              doc="fixed latency of one collective step across the scale-out network"),
    FieldSpec("interconnect.comm_efficiency", "comm_efficiency", "fraction", 1.0, "fraction", **_FRACTION,
              doc="achievable fraction of link bandwidth for collectives"),
    FieldSpec("runtime.step_overhead_us", "step_overhead_s", "us", 1e-6, "s", **_NONNEG,
              doc="fixed per-engine-step overhead (scheduler, sampling, launch)"),
    FieldSpec("power.tdp_W", "tdp_w", "W", 1.0, "W", **_NONNEG, doc="GPU thermal design power; 0 = unknown"),
)

_TOP_STRINGS = ("name", "description")


def _section_keys() -> dict[str, tuple[str, ...]]:
    """Section name -> the keys allowed directly under it, in file order (from :data:`FIELDS`)."""
    sections: dict[str, tuple[str, ...]] = {}
    for spec in FIELDS:
        section, rest = spec.path.split(".", 1)
        key = rest.split(".", 1)[0]
        if key not in sections.setdefault(section, ()):
            sections[section] += (key,)
    return sections


_SECTIONS = _section_keys()
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_YAML_SUFFIXES = (".yaml", ".yml")


# ---------------------------------------------------------------------------------------------- public API


def bundled_dir() -> Path:
    """The folder holding the bundled ``<name>.yaml`` profiles (the ``latentmoe_sim.hwprofiles`` package)."""
    from . import hwprofiles  # an empty package; importing it is free

    return Path(hwprofiles.__file__).parent


@functools.lru_cache(maxsize=1)
def _bundled_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in bundled_dir().glob("*.yaml")))


def list_hw() -> list[str]:
    """Names of the bundled hardware profiles, sorted (e.g. ``["b200", ..., "h100_sxm", ...]``)."""
    return list(_bundled_names())


def load_hw(name_or_path: str) -> HwProfile:
    """Load a hardware profile as SI numbers.

    ``name_or_path`` is a bundled name (see :func:`list_hw`) or a path ending in ``.yaml``/``.yml``.
    Results are cached (files by path and modification time); each call returns its own copy, so callers
    may not corrupt the cache by mutating ``peak_flops`` or ``sources``.
    Raises :class:`InputError` for an unknown name, a missing file or any schema violation.
    """
    text = str(name_or_path)
    if text.lower().endswith(_YAML_SUFFIXES):
        path = Path(text).expanduser()
        try:
            st = path.stat()
        except FileNotFoundError:
            raise InputError(f"{text}: hardware profile file not found") from None
        except OSError as exc:
            raise InputError(f"{text}: cannot read hardware profile ({exc.strerror})") from None
        profile = _load_path_cached(str(path.resolve()), text, st.st_mtime_ns, st.st_size)
    elif text in _bundled_names():
        profile = _load_bundled_cached(text)
    else:
        known = ", ".join(_bundled_names())
        raise InputError(f"unknown hardware {text!r} (known: {known}; or pass a path ending in .yaml)")
    return _copy(profile)


def validate_hw_file(path: str | os.PathLike[str]) -> HwProfile:
    """Read and validate one profile file (uncached). Returns the profile; raises :class:`InputError`."""
    label = os.fspath(path)
    return _parse_profile(_read_text(Path(label), label), label)


# ---------------------------------------------------------------------------------------------- internals


def _copy(p: HwProfile) -> HwProfile:
    return replace(p, peak_flops=dict(p.peak_flops), sources=dict(p.sources))


@functools.lru_cache(maxsize=None)
def _load_bundled_cached(name: str) -> HwProfile:
    path = bundled_dir() / f"{name}.yaml"
    label = f"hwprofiles/{name}.yaml"
    return _parse_profile(_read_text(path, label), label)


@functools.lru_cache(maxsize=64)
def _load_path_cached(resolved: str, label: str, mtime_ns: int, size: int) -> HwProfile:
    # mtime_ns and size are part of the cache key only: an edited file is read again.
    return _parse_profile(_read_text(Path(resolved), label), label)


def _read_text(path: Path, label: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{label}: hardware profile file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot read hardware profile ({exc.strerror})") from None


@functools.lru_cache(maxsize=1)
def _loader_class() -> type:
    """A yaml SafeLoader (the C one when available) that rejects duplicate mapping keys."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class _StrictLoader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node, deep=False):  # noqa: ANN001 - yaml's signature
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return _StrictLoader


def _parse_yaml(text: str, label: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_loader_class())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        problem = " ".join(str(exc.problem or exc.context or "parse error").split())
        raise InputError(f"{where}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{label}: malformed YAML: {' '.join(str(exc).split())}") from None


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _check_keys(label: str, where: str, mapping: dict, allowed: tuple[str, ...]) -> None:
    for key in mapping:
        if key not in allowed:
            field = f"{where}.{key}" if where else str(key)
            raise InputError(f"{label}: unknown field {field} (allowed here: {', '.join(allowed)})")


def _leaf(label: str, spec: FieldSpec, node: Any) -> tuple[float | None, str]:
    """Validate one ``{value, source}`` leaf; return (value in YAML units, source)."""
    form = f'{{value: <number>, source: "..."}}, range {spec.allowed}'
    if not isinstance(node, dict):
        raise InputError(f"{label}: field {spec.path} = {_short(node)} must be {form}")
    for key in ("value", "source"):
        if key not in node:
            raise InputError(f"{label}: field {spec.path} lacks '{key}' (write {form})")
    _check_keys(label, spec.path, node, ("value", "source"))
    value, source = node["value"], node["source"]
    if not isinstance(source, str) or not source.strip():
        raise InputError(f"{label}: field {spec.path}.source = {_short(source)} must be a non-empty string")
    if value is None:
        if spec.nullable:
            return None, source.strip()
        raise InputError(f"{label}: field {spec.path} = null not allowed, range {spec.allowed}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if spec.integer else "a number"
        raise InputError(f"{label}: field {spec.path} = {_short(value)} must be {kind}, range {spec.allowed}")
    if spec.integer and not isinstance(value, int):
        raise InputError(f"{label}: field {spec.path} = {_short(value)} must be an integer, range {spec.allowed}")
    if not spec.in_range(float(value)):
        raise InputError(f"{label}: field {spec.path} = {value!r} out of range {spec.allowed}")
    return value, source.strip()


def _parse_profile(text: str, label: str) -> HwProfile:
    """Validate the parsed YAML document against :data:`FIELDS` and build the SI :class:`HwProfile`."""
    doc = _parse_yaml(text, label)
    top_allowed = (*_TOP_STRINGS, *_SECTIONS)
    if not isinstance(doc, dict):
        raise InputError(f"{label}: top level must be a mapping with fields {', '.join(top_allowed)}")
    _check_keys(label, "", doc, top_allowed)
    for key in _TOP_STRINGS:
        if key not in doc:
            raise InputError(f"{label}: missing field {key} (a non-empty string)")
        if not isinstance(doc[key], str) or not doc[key].strip():
            raise InputError(f"{label}: field {key} = {_short(doc[key])} must be a non-empty string")
    name = doc["name"].strip()
    if not _NAME_RE.match(name):
        raise InputError(f"{label}: field name = {name!r} must be letters, digits, '_', '.', '-' (no spaces)")
    for section, keys in _SECTIONS.items():
        if section not in doc:
            raise InputError(f"{label}: missing section {section} (fields: {', '.join(keys)})")
        if not isinstance(doc[section], dict):
            raise InputError(f"{label}: field {section} = {_short(doc[section])} must be a mapping of {', '.join(keys)}")
        _check_keys(label, section, doc[section], keys)
    peaks_node = doc["compute"].get("peak_tflops_dense")
    if peaks_node is not None and not isinstance(peaks_node, dict):
        raise InputError(f"{label}: field compute.peak_tflops_dense = {_short(peaks_node)} must be a mapping of dtypes ({', '.join(DTYPES)})")
    if isinstance(peaks_node, dict):
        _check_keys(label, "compute.peak_tflops_dense", peaks_node, DTYPES)

    kwargs: dict[str, Any] = {"peak_flops": {}}
    sources: dict[str, str] = {}
    for spec in FIELDS:
        node: Any = doc
        present = True
        for part in spec.path.split("."):
            if not isinstance(node, dict) or part not in node:
                present = False
                break
            node = node[part]
        if not present:
            if spec.required:
                raise InputError(f"{label}: missing field {spec.path} (range {spec.allowed})")
            continue
        value, source = _leaf(label, spec, node)
        sources[spec.attr] = source
        if value is None:
            continue
        si = int(value) if spec.integer else float(value) * spec.to_si
        if spec.attr.startswith("peak_flops."):
            kwargs["peak_flops"][spec.attr.split(".", 1)[1]] = si
        else:
            kwargs[spec.attr] = si

    if kwargs["runtime_reserve_bytes"] >= kwargs["hbm_capacity_bytes"]:
        raise InputError(
            f"{label}: field memory.runtime_reserve_GiB = {kwargs['runtime_reserve_bytes'] / GiB:g} out of range "
            f"[0, hbm_capacity_GiB = {kwargs['hbm_capacity_bytes'] / GiB:g}) GiB"
        )
    return HwProfile(name=name, description=" ".join(doc["description"].split()), sources=sources, **kwargs)

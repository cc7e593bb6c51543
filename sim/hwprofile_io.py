"""Read, validate and list hardware-profile YAML files (schema: ``hwprofiles/README.md``).

A profile file states every number in human units (TFLOP/s, GiB, TB/s, GB/s, Gb/s, µs, W), each as
``{value: <number>, source: "<where it comes from>"}``. :func:`load_hw` turns it into an SI
:class:`~latentmoe_sim.hw.HwProfile` (FLOP/s, bytes, bytes/s, seconds, W).

The schema is :data:`FIELDS`, one :class:`FieldSpec` per numeric leaf, with its allowed range stated **in
SI** and checked after the unit conversion (so ``hbm_capacity_GiB: 1e300``, which is ``inf`` bytes, and
``hbm_bandwidth_TBps: 1e-300`` are refused). The pydantic models that check structure and types
(:func:`profile_schema`) are generated from that table on top of :class:`~latentmoe_sim.schema.StrictModel`,
and files are read with :func:`~latentmoe_sim.schema.load_file` (size limit, no special files, no duplicate
keys, no alias bombs). Every problem is an :class:`~latentmoe_sim.errors.InputError` of one line naming the
file, the field, the value and the allowed range.

**Extending the schema** (a new numeric field): add one :class:`FieldSpec` to :data:`FIELDS` and the
attribute to :class:`~latentmoe_sim.hw.HwProfile` (with a default if old files lack it: ``required=False``).
A non-numeric leaf (e.g. a fabric kind) goes into :data:`EXTRA_LEAVES` as a pydantic type for its
``value``; its validated value lands in ``HwProfile`` under the attribute named there.

Public functions:

* :func:`load_hw` — a bundled name (``"h100_sxm"``) or a path ending in ``.yaml``/``.yml``; cached.
* :func:`list_hw` — the bundled profile names.
* :func:`validate_hw_file` — read and validate one file, uncached.
* :data:`FIELDS` — the schema table (YAML path, unit, SI conversion, allowed range), used by the CLI.

``yaml`` and pydantic are imported lazily so that importing this module (e.g. for ``lmsim --help``) costs
nothing.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import InputError, unknown_name
from .hw import HwProfile

__all__ = ["FIELDS", "DTYPES", "EXTRA_LEAVES", "FieldSpec", "bundled_dir", "list_hw", "load_hw", "profile_schema",
           "validate_hw_file"]

GiB = 2**30


def _g(x: float) -> str:
    return f"{x:.6g}"


@dataclass(frozen=True)
class FieldSpec:
    """One numeric leaf of the YAML schema and how it maps onto :class:`HwProfile`.

    ``si_value = yaml_value * to_si``. The allowed range is on the **SI** value: ``lo < si`` (``lo_open``)
    or ``lo <= si``, and ``si <= hi``. Every field has an upper bound: a profile is a physical GPU, and an
    absurd value (1e300 GiB, 1e-300 TB/s) would only produce absurd or non-finite step times.
    """

    path: str  #: dotted YAML path, e.g. "memory.hbm_bandwidth_TBps"
    attr: str  #: HwProfile attribute ("peak_flops.<dtype>" for the per-dtype peaks)
    unit: str  #: unit of the YAML value
    to_si: float  #: multiply the YAML value by this to get SI
    si_unit: str  #: unit of the HwProfile attribute
    lo: float  #: lower bound, SI
    hi: float  #: upper bound, SI (inclusive)
    lo_open: bool = False
    integer: bool = False
    required: bool = True
    nullable: bool = False  #: value may be null (e.g. a dtype without tensor cores)
    doc: str = ""

    @property
    def range_text(self) -> str:
        """Allowed range of the YAML value in interval notation, e.g. ``[0.01, 1]`` or ``integer in [1, 65536]``."""
        lo, hi = self.lo / self.to_si, self.hi / self.to_si
        if self.integer:
            return f"integer in [{_g(lo)}, {_g(hi)}]"
        return f"{'(' if self.lo_open else '['}{_g(lo)}, {_g(hi)}]"

    @property
    def allowed(self) -> str:
        """Range plus unit for messages, e.g. ``[0.01, 1000] TB/s``, ``[0.01, 1]``, ``integer in [1, 65536]``."""
        plain = self.integer or self.unit == "fraction"
        return self.range_text if plain else f"{self.range_text} {self.unit}"

    def in_range(self, si: float) -> bool:
        """Whether the SI value is allowed (finite and within [lo, hi])."""
        if not math.isfinite(si):
            return False
        if si < self.lo or (self.lo_open and si == self.lo):
            return False
        return si <= self.hi


#: Dtypes a profile may give a dense peak for; ``bf16`` is required, the others optional or null.
DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8", "int8", "fp4")

# Allowed SI ranges. The rule: from a part far below today's datacenter GPUs to about 100x above the largest
# bundled value (hwprofiles/*.yaml: peak 15,000 TFLOP/s FP4 on GB300, HBM 277.5 GiB on GB300 at 8 TB/s,
# NVLink 900 GB/s in domains of 72, NIC 800 Gb/s, TDP 1,400 W), so every real GPU fits and nothing
# absurd does. Latencies and overheads are capped at a value that would dominate any step (10 ms, 1 s).
_FRACTION = dict(lo=0.01, hi=1.0)  # below 1 % of peak nothing useful is being modelled
_LATENCY = dict(lo=0.0, hi=1e-2)

#: The schema, in file order. Every numeric leaf of a profile file is one entry here.
FIELDS: tuple[FieldSpec, ...] = (
    *(
        FieldSpec(
            f"compute.peak_tflops_dense.{dt}", f"peak_flops.{dt}", "TFLOP/s", 1e12, "FLOP/s", lo=1e12, hi=1e18,
            required=(dt == "bf16"), nullable=(dt != "bf16"),
            doc=f"dense (no 2:4 sparsity) {dt} tensor-core peak; null or absent = unsupported",
        )
        for dt in DTYPES
    ),
    FieldSpec("compute.compute_efficiency", "compute_efficiency", "fraction", 1.0, "fraction", **_FRACTION,
              doc="achievable fraction of dense peak for large GEMMs and attention"),
    FieldSpec("compute.w4a16_compute_efficiency", "w4a16_compute_efficiency", "fraction", 1.0, "fraction", **_FRACTION,
              required=False, doc="achieved fraction of the BF16 dense peak of weight-only INT4 grouped GEMMs (W4A16, "
                                  "the routed experts of INT4 checkpoints); absent = compute_efficiency"),
    FieldSpec("memory.hbm_capacity_GiB", "hbm_capacity_bytes", "GiB", GiB, "B", lo=GiB, hi=2.0**46,
              doc="HBM per GPU, usable as nvidia-smi reports it where known (1 GiB = 2^30 B)"),
    FieldSpec("memory.hbm_bandwidth_TBps", "hbm_bandwidth_bytes_per_s", "TB/s", 1e12, "B/s", lo=1e10, hi=1e15,
              doc="HBM bandwidth per GPU, datasheet (1 TB/s = 1e12 B/s)"),
    FieldSpec("memory.memory_efficiency", "memory_efficiency", "fraction", 1.0, "fraction", **_FRACTION,
              doc="achievable fraction of HBM bandwidth for streaming ops"),
    FieldSpec("memory.w4a16_memory_efficiency", "w4a16_memory_efficiency", "fraction", 1.0, "fraction", **_FRACTION,
              required=False, doc="achieved fraction of HBM bandwidth of weight-only INT4 grouped GEMMs (W4A16); "
                                  "absent = memory_efficiency"),
    FieldSpec("memory.mem_op_latency_us", "mem_op_latency_s", "us", 1e-6, "s", **_LATENCY,
              doc="fixed latency added to every memory-bound op (launch + ramp)"),
    FieldSpec("memory.runtime_reserve_GiB", "runtime_reserve_bytes", "GiB", GiB, "B", lo=0.0, hi=2.0**46,
              doc="HBM kept free by the runtime (CUDA context, buffers, fragmentation); < hbm_capacity_GiB"),
    FieldSpec("interconnect.scaleup_GBps_per_direction", "nvlink_bandwidth_bytes_per_s", "GB/s", 1e9, "B/s",
              lo=1e9, hi=1e14, doc="scale-up (NVLink, Infinity Fabric) bandwidth per GPU per direction, all peers "
                                   "together (1 GB/s = 1e9 B/s); old files: nvlink_GBps_per_direction"),
    FieldSpec("interconnect.scaleup_GBps_per_peer", "scaleup_peer_bandwidth_bytes_per_s", "GB/s", 1e9, "B/s",
              lo=1e9, hi=1e14, required=False,
              doc="full-mesh fabric: bandwidth of the link to one peer, per direction (required for full-mesh)"),
    FieldSpec("interconnect.scaleup_domain_size", "nvlink_domain_size", "GPUs", 1, "GPUs", lo=1, hi=65536,
              integer=True, doc="GPUs in one scale-up domain (8 for HGX and MI300X, 72 for NVL72); old files: "
                                "nvlink_domain_size"),
    FieldSpec("interconnect.scaleup_latency_us", "nvlink_latency_s", "us", 1e-6, "s", **_LATENCY,
              doc="fixed latency of one collective step inside the scale-up domain; old files: nvlink_latency_us"),
    FieldSpec("interconnect.scaleout_Gbps_per_gpu", "scaleout_bandwidth_bytes_per_s", "Gb/s", 1e9 / 8, "B/s",
              lo=1e8, hi=1e13, doc="scale-out NIC bandwidth per GPU per direction, in gigaBITS/s (1 Gb/s = 1.25e8 B/s)"),
    FieldSpec("interconnect.scaleout_latency_us", "scaleout_latency_s", "us", 1e-6, "s", **_LATENCY,
              doc="fixed latency of one collective step across the scale-out network"),
    FieldSpec("interconnect.comm_efficiency", "comm_efficiency", "fraction", 1.0, "fraction", **_FRACTION,
              doc="achievable fraction of link bandwidth for collectives"),
    FieldSpec("runtime.step_overhead_us", "step_overhead_s", "us", 1e-6, "s", lo=0.0, hi=1.0,
              doc="fixed per-engine-step overhead (scheduler, sampling, launch)"),
    FieldSpec("runtime.seq_overhead_us", "seq_overhead_s", "us", 1e-6, "s", lo=0.0, hi=1e-2, required=False,
              doc="per-engine-step cost per decoding sequence of a rank, in series with the GPU work (CPU "
                  "scheduling, input preparation, output processing of an engine that does not overlap them); "
                  "absent = 0"),
    FieldSpec("power.tdp_W", "tdp_w", "W", 1.0, "W", lo=0.0, hi=1e5, doc="GPU thermal design power; 0 = unknown"),
)

def _fabric_type() -> Any:
    from typing import Literal

    return Literal["switch", "full-mesh"]


#: Non-numeric leaves ``{value: <typed value>, source: "..."}``: dotted YAML path -> (HwProfile attribute,
#: pydantic type of ``value``, required). The scale-up fabric: ``switch`` (NVLink/NVSwitch, the default when
#: absent) or ``full-mesh`` (AMD Infinity Fabric/xGMI, one link per peer: ``scaleup_GBps_per_peer``).
EXTRA_LEAVES: dict[str, tuple[str, Any, bool]] = {"interconnect.scaleup_fabric": ("scaleup_fabric", _fabric_type(), False)}

#: Field names of older files, still read: old YAML key -> fabric-neutral key (both under ``interconnect``).
LEGACY_KEYS = {"nvlink_GBps_per_direction": "scaleup_GBps_per_direction", "nvlink_domain_size": "scaleup_domain_size",
               "nvlink_latency_us": "scaleup_latency_us"}

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
        from .schema.loader import file_identity

        resolved, mtime_ns, size = file_identity(text, "hardware profile file")
        profile = _load_path_cached(resolved, text, mtime_ns, size)
    elif text in _bundled_names():
        profile = _load_bundled_cached(text)
    else:
        raise unknown_name("hardware", text, _bundled_names(), "or pass a path ending in .yaml")
    return _copy(profile)


def validate_hw_file(path: str | os.PathLike[str]) -> HwProfile:
    """Read and validate one profile file (uncached). Returns the profile; raises :class:`InputError`."""
    label = os.fspath(path)
    return _parse_profile(_read_doc(Path(label), label), label)


# ---------------------------------------------------------------------------------------------- internals


def _copy(p: HwProfile) -> HwProfile:
    return replace(p, peak_flops=dict(p.peak_flops), sources=dict(p.sources))


@functools.lru_cache(maxsize=None)
def _load_bundled_cached(name: str) -> HwProfile:
    path = bundled_dir() / f"{name}.yaml"
    return _parse_profile(_read_doc(path, f"hwprofiles/{name}.yaml"), f"hwprofiles/{name}.yaml")


@functools.lru_cache(maxsize=64)
def _load_path_cached(resolved: str, label: str, mtime_ns: int, size: int) -> HwProfile:
    # mtime_ns and size are part of the cache key only: an edited file is read again.
    return _parse_profile(_read_doc(Path(resolved), label), label)


def _read_doc(path: Path, label: str) -> Any:
    from .schema import load_file

    return load_file(path, label=label, what="hardware profile file")


_SOURCE_ALLOWED = "a non-empty string"
_NAME_ALLOWED = "letters, digits, '_', '.', '-' (no spaces)"


@functools.lru_cache(maxsize=1)
def profile_schema() -> type:
    """The pydantic model of a profile file, generated from :data:`FIELDS` and :data:`EXTRA_LEAVES`.

    Structure and types only (unknown keys, bare numbers, strings, NaN refused); the SI ranges are checked
    after conversion by :func:`_parse_profile`, where the units are known."""
    from typing import Annotated

    from pydantic import Field, create_model, field_validator

    from .schema import StrictModel

    def check_source(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be a non-empty string")
        return v.strip()

    def leaf(path: str, value_type: Any, shape: str) -> type:
        model = create_model(
            "Leaf_" + re.sub(r"\W", "_", path), __base__=StrictModel,
            __validators__={"_source": field_validator("source")(check_source)},
            value=(value_type, Field(json_schema_extra={"allowed": shape})),
            source=(str, Field(json_schema_extra={"allowed": _SOURCE_ALLOWED})),
        )
        return model

    tree: dict = {}
    for spec in FIELDS:
        vtype: Any = int if spec.integer else float
        if spec.nullable:
            vtype = vtype | None
        shape = spec.allowed + (" or null" if spec.nullable else "")
        _put(tree, spec.path, (leaf(spec.path, vtype, shape), spec.required, shape))
    for path, (_, vtype, required) in EXTRA_LEAVES.items():
        _put(tree, path, (leaf(path, vtype, ""), required, ""))

    def build(name: str, node: dict) -> tuple[type, bool]:
        fields: dict[str, Any] = {}
        any_required = False
        for key, child in node.items():
            if isinstance(child, dict):
                model, required = build(f"{name}_{key}", child)
                form = f"a mapping of {', '.join(child)}"
            else:
                model, required, shape = child
                form = f'{{value: <number>, source: "..."}} with value in {shape}' if shape else '{value: ..., source: "..."}'
            extra = {"allowed": form}
            fields[key] = (model, Field(json_schema_extra=extra)) if required else (
                model | None, Field(default=None, json_schema_extra=extra))
            any_required |= required
        return create_model(name, __base__=StrictModel, **fields), any_required

    sections, _ = build("HwProfileFile", tree)
    text = Annotated[str, Field(min_length=1, json_schema_extra={"allowed": "a non-empty string"})]
    name_t = Annotated[str, Field(pattern=_NAME_RE.pattern, json_schema_extra={"allowed": _NAME_ALLOWED})]
    return create_model("HwProfileSchema", __base__=sections, name=(name_t, ...), description=(text, ...))


def _upgrade_legacy(doc: Any, label: str) -> Any:
    """Rename the old ``interconnect.nvlink_*`` keys to the fabric-neutral ``scaleup_*`` ones (old files keep
    loading); giving both spellings of one field is an error."""
    inter = doc.get("interconnect") if isinstance(doc, dict) else None
    if not isinstance(inter, dict) or not any(k in inter for k in LEGACY_KEYS):
        return doc
    new = dict(inter)
    for old, key in LEGACY_KEYS.items():
        if old in new:
            if key in new:
                raise InputError(f"{label}: field interconnect.{old}: given together with interconnect.{key}, "
                                 f"its new name; keep one")
            new[key] = new.pop(old)
    return {**doc, "interconnect": new}


def _put(tree: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _parse_profile(doc: Any, label: str) -> HwProfile:
    """Validate the parsed YAML document and build the SI :class:`HwProfile`, checking ranges in SI."""
    from .schema import short, validate

    doc = _upgrade_legacy(doc, label)
    parsed = validate(profile_schema(), doc, label)
    if not parsed.description.strip():
        raise InputError(f"{label}: field description = {short(parsed.description)}: must be a non-empty string")

    kwargs: dict[str, Any] = {"peak_flops": {}}
    sources: dict[str, str] = {}
    for spec in FIELDS:
        node: Any = parsed
        for part in spec.path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if node is None:
            continue  # optional and absent (required ones were checked by the schema)
        sources[spec.attr] = node.source
        value = node.value
        if value is None:
            continue
        si = value * spec.to_si if not spec.integer else value
        if not spec.in_range(float(si) if not spec.integer or value.bit_length() < 64 else math.inf):
            raise InputError(f"{label}: field {spec.path}.value = {short(value)}: out of range, allowed {spec.allowed}")
        si = int(si) if spec.integer else float(si)
        if spec.attr.startswith("peak_flops."):
            kwargs["peak_flops"][spec.attr.split(".", 1)[1]] = si
        else:
            kwargs[spec.attr] = si
    for path, (attr, _, _) in EXTRA_LEAVES.items():
        node = parsed
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if node is not None:
            kwargs[attr] = node.value
            sources[attr] = node.source

    if kwargs.get("scaleup_fabric") == "full-mesh" and not kwargs.get("scaleup_peer_bandwidth_bytes_per_s"):
        raise InputError(f"{label}: field interconnect.scaleup_GBps_per_peer: required when scaleup_fabric is full-mesh "
                         f"(the bandwidth of the link to one peer, GB/s per direction)")
    if kwargs["runtime_reserve_bytes"] >= kwargs["hbm_capacity_bytes"]:
        raise InputError(
            f"{label}: field memory.runtime_reserve_GiB.value = {kwargs['runtime_reserve_bytes'] / GiB:g}: out of range, "
            f"allowed [0, hbm_capacity_GiB = {kwargs['hbm_capacity_bytes'] / GiB:g}) GiB"
        )
    return HwProfile(name=parsed.name, description=" ".join(parsed.description.split()), sources=sources, **kwargs)

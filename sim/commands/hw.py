"""`lmsim hw`: list, show and validate hardware profiles.

* ``lmsim hw list`` — bundled profiles: name, key numbers, one-line description.
* ``lmsim hw show NAME_OR_PATH [--json]`` — every field with its unit, SI value and source.
* ``lmsim hw validate FILE`` — ``ok: <name>``, or the one-line error and exit status 2.
"""

from __future__ import annotations

import argparse

from ..hw import HwProfile
from ..hwprofile_io import FIELDS, FieldSpec, list_hw, load_hw, validate_hw_file
from ._fmt import print_json

GiB = 2**30


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``hw`` command group to the ``lmsim`` parser."""
    hw = subparsers.add_parser("hw", help="hardware profiles: list, show, validate",
                               description="Hardware profiles (hwprofiles/*.yaml; schema in hwprofiles/README.md).")
    sub = hw.add_subparsers(dest="hw_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("list", help="bundled profiles with key numbers")
    p.add_argument("--json", action="store_true", help="print JSON: every profile as `hw show --json` gives it")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="every field of one profile, with unit and source")
    p.add_argument("name_or_path", metavar="NAME_OR_PATH", help="bundled name (see `lmsim hw list`) or a .yaml file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("validate", help="check a profile file; prints 'ok: <name>' or the error (exit 2)")
    p.add_argument("file", metavar="FILE", help="a hardware profile .yaml file")
    p.add_argument("--json", action="store_true", help='print {"ok": true, "name": ...} (errors still exit 2)')
    p.set_defaults(func=_cmd_validate, version_footer=False)


# ------------------------------------------------------------------------------------------------ helpers


def _yaml_value(p: HwProfile, spec: FieldSpec) -> float | int | None:
    """The attribute named by ``spec`` converted back to the YAML unit (None if absent)."""
    si = _si_value(p, spec)
    if si is None:
        return None
    if spec.integer:
        return int(si)
    return float(f"{si / spec.to_si:.12g}")  # drop float noise from the round trip


def _si_value(p: HwProfile, spec: FieldSpec) -> float | int | None:
    if spec.attr.startswith("peak_flops."):
        return p.peak_flops.get(spec.attr.split(".", 1)[1])
    return getattr(p, spec.attr)


def _ridge_points(p: HwProfile) -> dict[str, float]:
    """Dense peak / HBM bandwidth, FLOP per byte, per dtype."""
    return {dt: flops / p.hbm_bandwidth_bytes_per_s for dt, flops in p.peak_flops.items()}


def profile_to_dict(p: HwProfile) -> dict:
    """JSON-ready view: every schema field with YAML value, unit, SI attribute/value and source."""
    fields = {}
    for spec in FIELDS:
        if spec.attr not in p.sources:
            continue  # optional field the file leaves out
        fields[spec.path] = {
            "value": _yaml_value(p, spec),
            "unit": spec.unit,
            "si_field": spec.attr,
            "si_value": _si_value(p, spec),
            "si_unit": spec.si_unit,
            "allowed": spec.allowed,
            "source": p.sources[spec.attr],
        }
    return {
        "name": p.name,
        "description": p.description,
        "fields": fields,
        "scaleup_fabric": {"value": p.scaleup_fabric, "source": p.sources.get("scaleup_fabric", "default (not in the file)")},
        "derived": {"ridge_point_flop_per_byte": {dt: round(v, 1) for dt, v in _ridge_points(p).items()}},
    }


def _best_low_precision(p: HwProfile) -> str:
    for dt in ("fp4", "fp8", "bf16"):
        if dt in p.peak_flops:
            return f"{dt} {p.peak_flops[dt] / 1e12:,.0f} TF"
    return "-"  # pragma: no cover - bf16 is required


# ----------------------------------------------------------------------------------------------- commands


def _cmd_list(args: argparse.Namespace) -> int:
    if args.json:
        print_json({"profiles": [profile_to_dict(load_hw(name)) for name in list_hw()]})
        return 0
    rows = []
    for name in list_hw():
        p = load_hw(name)
        rows.append((
            name,
            f"bf16 {p.peak_flops['bf16'] / 1e12:,.0f} TF",
            _best_low_precision(p),
            f"HBM {p.hbm_capacity_bytes / GiB:.1f} GiB @ {p.hbm_bandwidth_bytes_per_s / 1e12:g} TB/s",
            f"scale-up {p.scaleup_bandwidth_bytes_per_s / 1e9:g} GB/s {p.scaleup_fabric} x{p.scaleup_domain_size}"
            + (f" ({p.scaleup_peer_bandwidth_bytes_per_s / 1e9:g}/peer)" if p.scaleup_fabric == "full-mesh" else ""),
            f"NIC {p.scaleout_bandwidth_bytes_per_s * 8 / 1e9:g} Gb/s",
            p.description,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    p = load_hw(args.name_or_path)
    data = profile_to_dict(p)
    if args.json:
        print_json(data)
        return 0
    print(f"{p.name}: {p.description}")
    rows = [
        (path, f"{f['value']:g}" if f["value"] is not None else "null", f["unit"],
         f"{f['si_value']:.4g} {f['si_unit']}" if f["si_value"] is not None else "-", f["source"])
        for path, f in data["fields"].items()
    ]
    header = ("field", "value", "unit", "SI", "source")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
    print(f"scale-up fabric: {p.scaleup_fabric}" + (f" ({p.sources['scaleup_fabric']})" if "scaleup_fabric" in p.sources else
                                                  " (default: no scaleup_fabric given)"))
    ridge = ", ".join(f"{dt} {v:,.0f}" for dt, v in data["derived"]["ridge_point_flop_per_byte"].items())
    print(f"ridge point (dense peak / HBM bandwidth), FLOP/byte: {ridge}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    p = validate_hw_file(args.file)
    if args.json:
        print_json({"ok": True, "file": str(args.file), "name": p.name})
        return 0
    print(f"ok: {p.name}")
    return 0

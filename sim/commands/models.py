"""`lmsim models list|show|import`: the model catalog."""

from __future__ import annotations

from ..models import list_models, load_model
from ..models.hf_import import spec_from_hf_config
from ._fmt import human, print_json


def register(sub) -> None:
    p = sub.add_parser("models", help="list, show and import model architectures")
    s = p.add_subparsers(dest="models_cmd", metavar="ACTION")
    s.required = True
    ls = s.add_parser("list", help="the bundled catalog")
    ls.add_argument("--json", action="store_true", help="print JSON: name, layers, total/active params, KV bytes/token")
    ls.set_defaults(func=_list)
    show = s.add_parser("show", help="one model: parameters, KV bytes, blocks")
    show.add_argument("name", help="catalog name, a model YAML path or a HF config.json")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
    imp = s.add_parser("import", help="read a Hugging Face config.json (DeepseekV3/Kimi-K2, Qwen3-MoE, Nemotron-H)")
    imp.add_argument("config", help="path to config.json")
    imp.add_argument("--name", help="name of the new entry (default: the config's folder name)")
    imp.add_argument("--json", action="store_true")
    imp.add_argument("--write", metavar="PATH.yaml", help="save it as a catalog entry, usable as --model PATH.yaml")
    imp.set_defaults(func=_import)


def _list(args) -> int:
    if args.json:
        rows = []
        for name in list_models():
            m = load_model(name)
            rows.append({"name": name, "num_layers": m.num_layers, "total_params": m.total_params,
                         "active_params": m.active_params, "kv_bytes_per_token": m.kv_bytes_per_token,
                         "description": m.description})
        print_json({"models": rows})
        return 0
    print(f"{'name':28s} {'layers':>6s} {'total':>10s} {'active':>10s} {'KV/token':>11s}  description")
    for name in list_models():
        m = load_model(name)
        print(f"{name:28s} {m.num_layers:6d} {human(m.total_params):>10s} {human(m.active_params):>10s} "
              f"{human(m.kv_bytes_per_token, 'B'):>11s}  {m.description}")
    return 0


def _print_spec(spec, as_json: bool) -> int:
    s = spec.summary()
    if as_json:
        print_json(s)
        return 0
    print(f"{s['name']}: {s['description']}")
    print(f"  source:            {s['source']}")
    print(f"  layers:            {s['num_layers']}  {s['layers']}  blocks {s['blocks']}")
    print(f"  total params:      {s['total_params']:,} ({human(s['total_params'])})")
    print(f"  active params:     {s['active_params']:,} ({human(s['active_params'])})")
    print(f"  routed experts:    {s['routed_expert_params']:,}")
    print(f"  KV bytes/token:    {s['kv_bytes_per_token']:,.0f}   state bytes/seq: {s['state_bytes_per_seq']:,.0f}")
    for section in ("attention", "moe", "mamba", "precision"):
        if s[section]:
            print(f"  {section + ':':18s} " + ", ".join(f"{k}={v}" for k, v in s[section].items()))
    if s["reported"]:
        print("  reported:          " + ", ".join(f"{k}={human(v)}" for k, v in s["reported"].items()))
    return 0


def _show(args) -> int:
    return _print_spec(load_model(args.name), args.json)


def _import(args) -> int:
    from ..schema.outputs import check_output_path

    check_output_path("--write", args.write, (".yaml", ".yml"))  # before any work
    spec = spec_from_hf_config(args.config, name=args.name)
    rc = _print_spec(spec, args.json)
    if args.write:
        from ..models.catalog import write_entry

        path = write_entry(spec, args.write, comment=f"imported by `lmsim models import {args.config}`")
        if not args.json:
            print(f"wrote {path}")
    return rc

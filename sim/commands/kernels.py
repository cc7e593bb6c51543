"""`lmsim kernels`: measured operator tables. `import-aic` converts AIConfigurator's silicon data;
`bench` times our own kernels on a GPU (docs/KERNELS.md). Neither imports torch unless it runs."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..errors import InputError
from ..schema import bounds as B
from ._fmt import print_json


def register(sub) -> None:
    k = sub.add_parser("kernels", help="measured operator tables: import AIConfigurator's, or bench our own on a GPU")
    ks = k.add_subparsers(dest="kernels_command", metavar="ACTION")
    ks.required = True

    i = ks.add_parser("import-aic", help="convert AIConfigurator's measured tables (aiconfigurator-core 0.12.0, Apache-2.0)")
    i.add_argument("--system", required=True, help="AIConfigurator system: h100_sxm, h200_sxm, b200_sxm, b300_sxm, gb200, gb300")
    i.add_argument("--framework", default="trtllm", help="trtllm (default), sglang or vllm")
    i.add_argument("--version", required=True, help="framework version folder, e.g. 1.3.0rc20")
    i.add_argument("--nccl-version", help="NCCL table version (default: the newest for the system)")
    i.add_argument("--out", default=None, help="folder holding <gpu>/ (default: the bundled hwprofiles/measured/)")
    i.add_argument("--aic-data", help="AIConfigurator's systems/data folder (default: the installed aiconfigurator-core's)")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_import_aic)

    b = ks.add_parser("bench", help="time our kernels over the shape grid on this machine's GPU (CUDA events)")
    b.add_argument("--out", required=True, help="folder to write the tables to, e.g. hwprofiles/measured/h200_sxm/")
    b.add_argument("--gpu", help="hardware-profile name written in the provenance header (default: from the folder name)")
    b.add_argument("--repeats", type=B.Count(1, 10_000), default=20, metavar="N",
                   help="timed repeats per shape; the median is kept, integer in [1, 10000] (default 20)")
    b.add_argument("--warmup", type=B.Count(0, 10_000), default=5, metavar="N",
                   help="untimed launches per shape first, integer in [0, 10000] (default 5)")
    b.add_argument("--budget-s", type=B.SECONDS, default=420.0, metavar="S",
                   help=f"stop adding shapes after this many seconds, {B.SECONDS.text} (default 420)")
    b.add_argument("--quick", action="store_true", help="a few shapes per op (smoke test)")
    b.add_argument("--json", action="store_true", help="print the folder and the rows written per table as JSON")
    b.set_defaults(func=_bench)


def _command_line(action: str, args, names: tuple[str, ...]) -> str:
    """The command that made a table, for its provenance header (the flags that shape the output)."""
    flags = [f"--{n.replace('_', '-')} {shlex.quote(str(getattr(args, n)))}" for n in names if getattr(args, n) not in (None, False)]
    return " ".join(["lmsim kernels", action] + flags)


def _import_aic(args) -> int:
    from ..cost.measured import measured_root
    from ..kernels.aic_import import SYSTEMS, convert

    from ..schema.outputs import check_output_dir

    out = check_output_dir("--out", args.out) if args.out else measured_root()
    written = convert(args.system, args.framework, args.version, out, nccl_version=args.nccl_version,
                      data_root=args.aic_data,
                      command=_command_line("import-aic", args, ("system", "framework", "version", "nccl_version")))
    folder = out / SYSTEMS[args.system]
    if args.json:
        print_json({"folder": str(folder), "rows": written})
    else:
        print(f"wrote {folder}: " + ", ".join(f"{k} {v} rows" for k, v in written.items()))
    return 0


def _bench(args) -> int:
    from ..kernels import bench

    for name in ("repeats", "warmup"):
        if getattr(args, name) < (1 if name == "repeats" else 0):
            raise InputError(f"--{name} = {getattr(args, name)} must be >= {1 if name == 'repeats' else 0}")
    problem = bench.gpu_problem()
    if problem:
        raise InputError(f"lmsim kernels bench: {problem}")
    from ..schema.outputs import check_output_dir

    out = check_output_dir("--out", args.out)
    gpu = args.gpu or out.resolve().name
    written = bench.run(out, gpu=gpu, repeats=args.repeats, warmup=args.warmup, budget_s=args.budget_s, quick=args.quick,
                        command=_command_line("bench", args, ("out", "gpu", "repeats", "warmup", "budget_s", "quick")))
    if getattr(args, "json", False):
        print_json({"folder": str(out), "gpu": gpu, "rows": written})
        return 0
    print(f"wrote {out}: " + ", ".join(f"{k} {v} rows" for k, v in written.items()))
    return 0

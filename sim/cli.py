"""`lmsim`: the command-line entry point. Thin by design: parse, call the library, print.

Each command group lives in ``latentmoe_sim.commands.<name>`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (a callable taking the parsed namespace and returning an exit code).
Bad input raises :class:`~latentmoe_sim.errors.InputError`; it is printed as one line and exits with 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import InputError

#: Command modules, in the order `lmsim --help` lists them.
COMMAND_MODULES = ("models", "hw", "cost", "memory", "simulate", "sweep", "frontier", "compare", "plot", "epm", "validate",
                   "kernels")


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors already; keep its message to one line."""

    def error(self, message: str) -> None:  # pragma: no cover - exercised through the CLI tests
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lmsim", description="Project MoE LLM serving cost: models, hardware, step cost, serving simulation.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"latentmoe_sim.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"latentmoe_sim.commands.{name}":
                continue  # command group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"lmsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `lmsim ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

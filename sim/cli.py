"""`lmsim`: the command-line entry point. Thin by design: parse, call the library, print.

Each command group lives in ``latentmoe_sim.commands.<name>`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (a callable taking the parsed namespace and returning an exit code).

Conventions every command follows (docs/CLI.md):

* exit status 0 success; 2 bad input (one line on stderr naming the file or flag, the field and the allowed
  range; :class:`~latentmoe_sim.errors.InputError`, or an ``OSError`` on a path the user gave); 3 a well-formed configuration that does not fit
  (:class:`~latentmoe_sim.errors.DoesNotFit`); 1 a failed simulation; 70 an internal error (a bug: one
  line, the traceback only with ``LMSIM_DEBUG=1``);
* ``--json`` on every command, printing strict JSON (no NaN/Infinity) that carries ``lmsim_version``;
  text output ends with a ``lmsim <version>`` line;
* ``lmsim --version``; a bare ``lmsim`` prints the command list;
* warning lines are printed when the command succeeds and dropped when it fails, so a failure is exactly
  one stderr line.

:func:`main` takes ``argv`` and returns the exit status without calling ``sys.exit``, so tests (and the
fuzz suite) run it in-process.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .errors import EXIT_BAD_INPUT, EXIT_DOES_NOT_FIT, DoesNotFit, InputError

#: Command modules, in the order `lmsim --help` lists them.
COMMAND_MODULES = ("models", "hw", "cost", "memory", "simulate", "sweep", "frontier", "compare", "plot", "epm", "validate",
                   "kernels")
#: Exit status of an unexpected exception (a bug), as sysexits.h's EX_SOFTWARE.
EXIT_INTERNAL = 70
EXIT_FAILED = 1

_EPILOG = f"""exit status: 0 ok, 2 bad input, {EXIT_DOES_NOT_FIT} configuration does not fit, 1 simulation failed.
examples:
  lmsim models list
  lmsim simulate --model kimi-k2-1t --hw gb200_nvl72 --precision fp4 --tp 1 --dp 8 --concurrency 256
  lmsim cost --model deepseek-v3 --hw h200_sxm --dp 8 --decode-seqs 64 --kv-len 4096 --json"""


#: An example for each command's --help (a module may give its own epilog instead). A command missing here
#: and without an epilog fails tests/test_cli_conventions.py.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "lmsim models list": ("lmsim models list", "lmsim models list --json"),
    "lmsim models show": ("lmsim models show kimi-k2-1t-latentmoe", "lmsim models show my_model.yaml --json"),
    "lmsim models import": ("lmsim models import path/to/config.json --name my-moe --write my-moe.yaml",),
    "lmsim hw list": ("lmsim hw list",),
    "lmsim hw show": ("lmsim hw show gb200_nvl72", "lmsim hw show my_gpu.yaml --json"),
    "lmsim hw validate": ("lmsim hw validate my_gpu.yaml",),
    "lmsim cost": ("lmsim cost --model kimi-k2-1t --hw h200_sxm --dp 8 --decode-seqs 64 --kv-len 4096",
                   "lmsim cost --model deepseek-v3 --precision fp8 --tp 8 --prefill-tokens 8192 --json"),
    "lmsim memory": ("lmsim memory --model kimi-k2-1t --hw h200_sxm --dp 16",
                     "lmsim memory --model qwen3-235b-a22b --hw b200 --tp 4 --json"),
    "lmsim simulate": ("lmsim simulate --model kimi-k2-1t --hw gb200_nvl72 --precision fp4 --dp 8 --concurrency 256",
                       "lmsim simulate --mode disagg --prefill-dp 8 --decode-dp 16 --rate 20 --sla-ttft-s 2 --sla-tpot-s 0.05",
                       "lmsim simulate --trace requests.csv --num-requests 1000 --json"),
    "lmsim epm fit": ("lmsim epm fit", "lmsim epm fit --bootstrap 2000 --seed 1 --json"),
    "lmsim epm multiplier": ("lmsim epm multiplier --baseline-score 70.1 --treated-score 71.5 --size 1T",
                             "lmsim epm multiplier --epm 1.35"),
    "lmsim epm variant": ("lmsim epm variant kimi-k2-1t --epm 1.35 --write kimi-k2-1.35t.yaml",),
    "lmsim sweep": ("lmsim sweep experiments/quickstart.yaml --out out/quickstart",
                    "lmsim sweep experiments/fig7.yaml --out out/fig7 --executor ray --max-points 2000",
                    "lmsim sweep experiments/fig7.yaml --out out/fig7 --dry-run"),
    "lmsim frontier": ("lmsim frontier out/quickstart", "lmsim frontier out/quickstart --sla-ttft-s 2 --json"),
    "lmsim compare": ("lmsim compare out/quickstart --baseline kimi-k2-1.35t --target kimi-k2-1t-latentmoe",),
    "lmsim plot": ("lmsim plot out/quickstart", "lmsim plot out/fig7 --sla-ttft-s 5 --out ttft5.html"),
    "lmsim validate": ("lmsim validate", "lmsim validate --file my_results.csv --json"),
    "lmsim kernels import-aic": ("lmsim kernels import-aic --system h200_sxm --version 1.0.0rc3",),
    "lmsim kernels bench": ("lmsim kernels bench --out hwprofiles/measured/h200_sxm/ --quick",),
}


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors already; keep its message to one line, and keep examples in
    the help text as written (RawDescriptionHelpFormatter)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # pragma: no cover - exercised through the CLI tests
        self.exit(2, f"lmsim: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lmsim", description="Project MoE LLM serving cost: models, hardware, step cost, serving simulation.",
                     epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"lmsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"latentmoe_sim.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"latentmoe_sim.commands.{name}":
                continue  # command group not built yet
            raise
        module.register(sub)
    _conventions(parser)
    return parser


def _conventions(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)command its examples epilog from :data:`EXAMPLES` if its module did not set one.
    (``--json`` is each command's own: tests/test_cli_conventions.py fails on a command without it.)"""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            has_sub = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
            if has_sub:
                _conventions(sub)
                continue
            if not sub.epilog and sub.prog in EXAMPLES:
                sub.epilog = "examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[sub.prog])


class _Watch:
    """A stdout proxy that remembers whether anything was written (for the version footer)."""

    def __init__(self, stream):
        self._stream = stream
        self.wrote = False

    def write(self, text: str) -> int:
        if text:
            self.wrote = True
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _HeldWarnings:
    """A stderr proxy that holds back warning lines (``warning: ...``, ``lmsim: warning: ...``) until the command
    ends: :func:`main` prints them after a success and drops them after an error, so that an error is always
    exactly one stderr line. Everything else passes straight through (progress output stays live)."""

    _PREFIXES = ("warning:", "lmsim: warning:")

    def __init__(self, stream):
        self._stream = stream
        self.held: list[str] = []
        self._holding = False

    def write(self, text: str) -> int:
        if text.startswith(self._PREFIXES):
            self.held.append(text)
            self._holding = not text.endswith("\n")
            return len(text)
        if self._holding:
            self.held.append(text)
            self._holding = not text.endswith("\n")
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Run ``lmsim`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_BAD_INPUT)
    if getattr(args, "func", None) is None:  # a group without its action, e.g. `lmsim hw`
        sub = _find_subparser(parser, argv)
        (sub or parser).print_help()
        return 0
    watch, held = _Watch(sys.stdout), _HeldWarnings(sys.stderr)
    sys.stdout, sys.stderr = watch, held
    try:
        rc = int(args.func(args) or 0)
    except DoesNotFit as exc:
        _error(str(exc))
        rc = EXIT_DOES_NOT_FIT
    except InputError as exc:
        _error(str(exc))
        rc = EXIT_BAD_INPUT
    except BrokenPipeError:  # `lmsim ... | head`
        return 0
    except OSError as exc:  # a path the user gave: too long, no permission, disk full ... (bad input, not a bug)
        name = str(exc.filename) if exc.filename is not None else ""
        name = name if len(name) <= 200 else name[:200] + "..."
        _error(f"{name + ': ' if name else ''}{exc.strerror or type(exc).__name__}")
        rc = EXIT_BAD_INPUT
    except (Exception, RecursionError) as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("LMSIM_DEBUG"):
            raise
        _error(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
               f"(a bug; rerun with LMSIM_DEBUG=1 for the traceback)")
        rc = EXIT_INTERNAL
    finally:
        sys.stdout, sys.stderr = watch._stream, held._stream
    if rc == 0 and held.held:
        sys.stderr.write("".join(held.held))
    footer = getattr(args, "version_footer", True)  # a command whose text is not a table opts out
    if watch.wrote and footer and not getattr(args, "json", False) and rc in (0, EXIT_DOES_NOT_FIT):
        try:
            print(f"lmsim {__version__}")
        except BrokenPipeError:
            pass
    return rc


def _error(message: str) -> None:
    text = " ".join(message.split())
    if len(text) > 2000:  # a 5,000-character path in a message stays one readable line
        text = text[:2000] + "..."
    print(f"lmsim: error: {text}", file=sys.stderr)


def _find_subparser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser | None:
    """The deepest subparser named by the leading words of ``argv``."""
    found = None
    current = parser
    for word in argv:
        actions = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            break
        current = found = actions[0].choices[word]
    return found


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The one error type for bad user input.

Anything a user can get wrong (a model name, a YAML field, a flag out of range) raises
:class:`InputError` with a message of one line that names the file or flag, the field and the allowed
range. The CLI prints ``lmsim: error: <message>`` and exits with status 2, never a traceback.
:class:`DoesNotFit` (a subclass, so ``except InputError`` still catches it) marks a well-formed configuration
that does not fit the hardware; the CLI exits with status 3 for it (docs/CLI.md).
"""


import difflib
from collections.abc import Iterable

#: Exit status for bad input: a malformed file, an unknown name, a flag out of range (argparse uses 2 too).
EXIT_BAD_INPUT = 2
#: Exit status for a well-formed configuration that cannot run: a plan whose weights leave no room for the
#: KV cache, a model that does not fit the GPUs the plan gives it. Distinct from 2 so that a sweep script
#: can tell "skip this point" from "fix your command".
EXIT_DOES_NOT_FIT = 3


class InputError(ValueError):
    """Bad user input: one line naming the source (file or flag), the field and what is allowed."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message)


class DoesNotFit(InputError):
    """A well-formed configuration that does not fit the hardware (exit status :data:`EXIT_DOES_NOT_FIT`)."""


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> InputError:
    """The error for a name that is not in ``known``: says "did you mean" for close matches (case-insensitive,
    also when ``name`` is a prefix such as ``kimi-k2`` or ``h200``) and lists the known names."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    text = str(name)[:80]
    key = text.lower()
    close = [lowered[k] for k in difflib.get_close_matches(key, list(lowered), n=3, cutoff=0.6)]
    close += [k for k in known if k.lower().startswith(key) and key and k not in close]
    guess = f"; did you mean {' or '.join(repr(c) for c in close[:3])}?" if close else ""
    tail = f"; {hint}" if hint else ""
    return InputError(f"unknown {kind} {text!r}{guess} (known: {', '.join(known)}{tail})")

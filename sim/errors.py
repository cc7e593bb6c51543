"""The one error type for bad user input.

Anything a user can get wrong (a model name, a YAML field, a plan that does not fit) raises
:class:`InputError` with a message of one line that names the file or flag, the field and the allowed
range. The CLI prints ``lmsim: error: <message>`` and exits with status 2, never a traceback.
"""


class InputError(ValueError):
    """Bad user input: one line naming the source (file or flag), the field and what is allowed."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message)

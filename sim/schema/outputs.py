"""Output paths checked **before** any work, so a typo in ``--records`` or ``--write`` never costs a run.

:func:`check_output_path` is called while the command parses its flags: the path is non-empty, its suffix
is one the command can write, its folder exists and is writable, and it is not a directory or a special
file. :func:`write_text` then writes, turning an ``OSError`` (disk full, permissions changed meanwhile)
into one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import InputError

__all__ = ["check_output_path", "check_output_dir", "write_text"]


def check_output_path(flag: str, path: str | os.PathLike[str] | None, suffixes: tuple[str, ...]) -> Path | None:
    """``path`` as a :class:`Path` if it can be written, else :class:`InputError` naming ``flag``.

    ``suffixes`` are the allowed endings, lower case with the dot (``(".csv", ".parquet")``); ``None``
    passes through (the flag was not given)."""
    if path is None:
        return None
    text, p = _given(flag, path, f"a file name ending in {' or '.join(suffixes)}")
    if suffixes and p.suffix.lower() not in suffixes:
        raise InputError(f"{flag} {text}: must end in {' or '.join(suffixes)}")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent_ok = parent.is_dir()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise InputError(f"{flag} {text[:200]}: {exc.strerror or exc}") from None
    if not parent_ok:
        raise InputError(f"{flag} {text}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {text}: folder {parent} is not writable")
    try:
        st = p.stat()
    except FileNotFoundError:
        return p
    except OSError as exc:
        raise InputError(f"{flag} {text}: cannot write ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{flag} {text}: is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{flag} {text}: not a regular file")
    if not os.access(p, os.W_OK):
        raise InputError(f"{flag} {text}: file is not writable")
    return p


def check_output_dir(flag: str, path: str | os.PathLike[str] | None) -> Path | None:
    """A folder the command will create or write into: non-empty path, not an existing file, and either an
    existing writable folder or one whose nearest existing parent is a writable folder (so it can be made)."""
    if path is None:
        return None
    text, p = _given(flag, path, "a folder")
    try:
        return _check_dir(flag, text, p)
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise InputError(f"{flag} {text[:200]}: {exc.strerror or exc}") from None


def _given(flag: str, path: str | os.PathLike[str], expected: str) -> tuple[str, Path]:
    """The path the user gave, as text and as a :class:`Path`: refused when empty or holding a NUL."""
    text = os.fspath(path)
    if not text.strip():
        raise InputError(f"{flag}: empty path (give {expected})")
    if "\x00" in text:
        raise InputError(f"{flag}: path contains a NUL character")
    return text, Path(text).expanduser()


def _check_dir(flag: str, text: str, p: Path) -> Path:
    if p.exists():
        if not p.is_dir():
            raise InputError(f"{flag} {text}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise InputError(f"{flag} {text}: folder is not writable")
        return p
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {text}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {text}: cannot create it ({parent} is not writable)")
    return p


def write_text(flag: str, path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (checked before), errors as one line naming ``flag``."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot write ({exc.strerror or exc})") from None
    return path

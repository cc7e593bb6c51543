"""Read a file a user wrote (YAML or JSON) without letting it hang, exhaust memory or print a traceback.

Every user file goes through :func:`load_file` (or :func:`read_text` + :func:`parse_yaml` /
:func:`parse_json`). The checks run cheapest first, so an adversarial file costs milliseconds:

1. **What the path names.** The file is opened non-blocking and ``fstat``-ed: anything but a regular file
   (a directory, a fifo, ``/dev/zero``, a socket) is refused before a byte is read, as is anything under
   ``/proc``, ``/sys`` or ``/dev`` (pseudo-files report size 0 and may never end).
2. **Size.** At most ``max_bytes`` (default :data:`MAX_FILE_BYTES`) are read; a longer file is refused
   before parsing.
3. **Encoding.** UTF-8 (a leading BOM is allowed); anything else is one line naming the byte offset.
4. **Shape, before building any object.** YAML is scanned as an event stream (libyaml's parser keeps an
   explicit stack, so 100,000 nested brackets cost no recursion): nesting deeper than :data:`MAX_DEPTH`
   and documents whose *expanded* size (aliases counted as the nodes they stand for) exceeds
   :data:`MAX_NODES` are refused, which stops "billion laughs" alias bombs. JSON nesting is bounded the same
   way; ``NaN``/``Infinity`` literals are refused (they are not JSON).
5. **Numbers as YAML 1.2 reads them**: ``1e12`` and ``7.26e10`` are floats (PyYAML's YAML 1.1 rules would
   make them strings, which a strict schema then refuses with a confusing message).
6. **Duplicate keys** are refused in both formats (YAML and ``json`` would silently keep the last one),
   and mapping keys must be strings.

Values are never ``repr()``-ed whole in a message: :func:`short` truncates before it formats (a
5,001-digit integer or a 1 MB string becomes a short description).

Every failure is an :class:`~latentmoe_sim.errors.InputError` of one line that starts with the file's
label. ``yaml`` is imported lazily.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["MAX_FILE_BYTES", "MAX_DEPTH", "MAX_NODES", "file_identity", "load_file", "read_text", "parse_yaml", "parse_json",
           "short"]

#: Largest user file read, bytes. A model entry is ~2 kB, a HF config.json ~5 kB, a hardware profile ~4 kB;
#: 4 MiB leaves room for long experiment specs while bounding memory and parse time.
MAX_FILE_BYTES = 4 * 2**20
#: Deepest nesting of mappings/sequences accepted. Our deepest schema (HF config's text_config.rope_scaling)
#: is 3 levels deep; 64 is generous yet keeps every recursive walk far from Python's recursion limit.
MAX_DEPTH = 64
#: Most nodes (scalars + collections) in a document once every alias is expanded. A full catalog entry has
#: ~100; a 1,000-point sweep spec ~10^4. 200,000 refuses alias bombs long before they cost memory.
MAX_NODES = 200_000

_PSEUDO_ROOTS = ("/proc", "/sys", "/dev")


def short(value: Any, limit: int = 60) -> str:
    """A one-line description of ``value`` of at most ``limit`` characters, computed without formatting
    the whole value first (safe for 5,001-digit integers, huge strings and alias-expanded lists)."""
    if value is None:
        return "null"  # as YAML and JSON spell it
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 128:  # str() of a >4300-digit int raises; 128 bits ~ 39 digits
            return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        head = value[: limit + 1]
        text = repr(head) if len(value) <= limit else repr(head[: max(limit - 5, 1)]) + "..."
    elif isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    elif isinstance(value, dict):
        return f"a mapping of {len(value)} key{'s' if len(value) != 1 else ''}"
    else:
        text = f"a {type(value).__name__}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text(path: str | os.PathLike[str], *, label: str | None = None, what: str = "file",
              max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``max_bytes`` long.

    ``label`` names the file in errors (default: the path as given); ``what`` says what it should be
    (``"model file"``) in the not-found message. Raises :class:`InputError` for a missing, special,
    oversized or non-UTF-8 file.
    """
    text_path = os.fspath(path)
    label = label if label is not None else text_path
    if not text_path:
        raise InputError(f"{what} path is empty")
    try:
        resolved = os.path.realpath(text_path)
    except (OSError, ValueError):
        resolved = text_path
    if any(resolved == root or resolved.startswith(root + "/") for root in _PSEUDO_ROOTS):
        raise InputError(f"{label}: refusing to read {resolved} (not a regular file)")
    try:
        fd = os.open(text_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"{label}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{label}: is a directory, not a {what}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"{label}: cannot read {what} ({reason})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{label}: is a directory, not a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{label}: not a regular file (a device, fifo or socket), refused")
        if st.st_size > max_bytes:
            raise InputError(f"{label}: {st.st_size} bytes is larger than the {max_bytes}-byte limit for a {what}")
        chunks: list[bytes] = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise InputError(f"{label}: cannot read {what} ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputError(f"{label}: larger than the {max_bytes}-byte limit for a {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def file_identity(text: str, what: str) -> tuple[str, int, int]:
    """``(resolved path, modification time ns, size)`` of the user file ``text``: the key under which a
    loader caches what it parsed, so an edited file is read again. A missing or unreadable file is an
    :class:`InputError` naming ``what`` ("model file", "hardware profile")."""
    path = Path(text).expanduser()
    try:
        st = path.stat()
        return str(path.resolve()), st.st_mtime_ns, st.st_size
    except FileNotFoundError:
        raise InputError(f"{text}: {what} not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{text}: cannot read {what} ({getattr(exc, 'strerror', None) or exc})") from None


def load_file(path: str | os.PathLike[str], *, label: str | None = None, what: str = "file",
              max_bytes: int = MAX_FILE_BYTES) -> Any:
    """Read and parse a user file: JSON when the name ends in ``.json``, YAML otherwise.

    Returns plain Python data (dicts with ``str`` keys, lists, str, int, float, bool, None; YAML may also
    give dates). Validate it with a :class:`~latentmoe_sim.schema.StrictModel` next.
    """
    label = label if label is not None else os.fspath(path)
    text = read_text(path, label=label, what=what, max_bytes=max_bytes)
    if os.fspath(path).lower().endswith(".json"):
        return parse_json(text, label)
    return parse_yaml(text, label)


# ---------------------------------------------------------------------------------------------- YAML


def parse_yaml(text: str, label: str) -> Any:
    """Parse one YAML document safely (see the module docstring). Raises :class:`InputError`."""
    import yaml

    loader = _strict_loader()
    try:
        _scan_yaml_events(yaml.parse(text, Loader=loader), label)
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except InputError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        problem = " ".join(str(exc.problem or exc.context or "parse error").split())
        if "nesting depth" in problem:  # PyYAML >= 6.0.4 has its own depth limit, met before our scan's
            raise InputError(f"{label}: nested deeper than {MAX_DEPTH} levels, refused") from None
        raise InputError(f"{where}: malformed YAML: {_clip(problem)}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{label}: malformed YAML: {_clip(' '.join(str(exc).split()))}") from None
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:
        # e.g. int() of a >4300-digit scalar, a date out of range
        raise InputError(f"{label}: malformed YAML: {_clip(' '.join(str(exc).split()) or type(exc).__name__)}") from None


def _scan_yaml_events(events, label: str) -> None:
    """Walk the event stream once: refuse nesting deeper than MAX_DEPTH and a document whose alias-expanded
    node count exceeds MAX_NODES. Linear in the text; builds nothing."""
    import yaml

    stack: list[list] = []  # per open collection: [expanded size so far, anchor]
    sizes: dict[str, int] = {}  # anchor -> expanded size of the node it names
    total = 0

    def add(size: int) -> None:
        nonlocal total
        total += size
        if total > MAX_NODES:
            raise InputError(f"{label}: document expands to more than {MAX_NODES} nodes (an alias bomb?), refused")
        if stack:
            stack[-1][0] += size

    for event in events:
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise InputError(f"{label}: nested deeper than {MAX_DEPTH} levels, refused")
            stack.append([1, event.anchor])
            total += 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            size, anchor = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
            if stack:
                stack[-1][0] += size
        elif isinstance(event, yaml.ScalarEvent):
            add(1)
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            add(sizes.get(event.anchor, 1))


@functools.lru_cache(maxsize=1)
def _strict_loader() -> type:
    """A yaml SafeLoader (libyaml's when available) that refuses duplicate and non-string mapping keys."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictSafeLoader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node, deep=False):  # noqa: ANN001 - yaml's signature
            seen: set[str] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` is YAML's merge key, handled by flatten_mapping
                if not isinstance(key_node, yaml.ScalarNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, "mapping keys must be plain strings", key_node.start_mark)
                key = key_node.value
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {short(key)}", key_node.start_mark)
                seen.add(key)
            mapping = super().construct_mapping(node, deep=deep)
            for key in mapping:
                if not isinstance(key, str):
                    raise yaml.constructor.ConstructorError(
                        None, None, f"mapping key {short(key)} must be a string (quote it)", node.start_mark)
            return mapping

    # YAML 1.1 (PyYAML) reads `1e12` and `7.26e10` as strings; YAML 1.2 and every user read them as numbers.
    StrictSafeLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"))
    return StrictSafeLoader


# ---------------------------------------------------------------------------------------------- JSON


def parse_json(text: str, label: str) -> Any:
    """Parse JSON strictly: no duplicate keys, no NaN/Infinity, nesting at most MAX_DEPTH."""
    depth = _json_depth(text)
    if depth > MAX_DEPTH:
        raise InputError(f"{label}: nested deeper than {MAX_DEPTH} levels, refused")

    def pairs(items: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in items:
            if key in out:
                raise InputError(f"{label}: duplicate key {short(key)}")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise InputError(f"{label}: {name} is not valid JSON (numbers must be finite)")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except InputError:
        raise
    except json.JSONDecodeError as exc:
        raise InputError(f"{label}:{exc.lineno}: malformed JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. a >4300-digit integer
        raise InputError(f"{label}: malformed JSON: {_clip(' '.join(str(exc).split()) or type(exc).__name__)}") from None


def _json_depth(text: str) -> int:
    """Bracket nesting depth of a JSON text, ignoring brackets inside strings; stops counting past MAX_DEPTH.

    Strings are cut out with one regex, then only the bracket characters are walked, so a 4 MiB file costs
    a few milliseconds."""
    import re

    if "[" not in text and "{" not in text:
        return 0
    brackets = re.findall(r'[\[\]{}]', re.sub(r'"[^"\\]*(?:\\.[^"\\]*)*"', '""', text))
    depth = best = 0
    for ch in brackets:
        if ch in "[{":
            depth += 1
            if depth > best:
                best = depth
                if best > MAX_DEPTH:
                    return best
        else:
            depth -= 1
    return best


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


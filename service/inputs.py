"""The input rules every write and every query share: whole numbers, booleans, text, path components.

One definition each, so a field, a query value and a path are held to the same bounds.
"""
import json
import math
import re

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
NAME_BYTES = 255          # a file or fileset name: what POSIX and GPFS allow
PATH_BYTES = 4096         # a whole path (PATH_MAX)
_DIGITS = re.compile(r"\s*[+-]?[0-9]{1,19}\s*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def whole_number(value):
    """An int64 from an int or a string of digits. Booleans, floats (1.0, 1e30), text and
    numbers past int64 raise ValueError saying what is expected."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"must be between {INT64_MIN} and {INT64_MAX}")
    return value


_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def boolean(value):
    """True or False from a boolean, 0/1, or the words true/false, yes/no (forms send text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    raise ValueError("must be true or false")


def text(value, max_bytes):
    """A string without NUL or other control characters, at most `max_bytes` in UTF-8."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if _CONTROL.search(value):
        raise ValueError("must not contain NUL or other control characters")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    if size > max_bytes:
        raise ValueError(f"must be at most {max_bytes} bytes (UTF-8), got {size}")
    return value


EXTRAS_BYTES = 16384       # an item's extras, as compact JSON
EXTRAS_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def extras(value):
    """The user's own keys and values on an item: a JSON object whose keys are names
    (queryable as where extras.KEY), at most EXTRAS_BYTES as compact JSON."""
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object of your keys and values, e.g. {"project": "p1"}')
    for key in value:
        if not EXTRAS_KEY.fullmatch(key):
            raise ValueError(f"key {key[:70]!r}: keys are 1-64 letters, digits, _ or -, starting with a letter or _")
    for text in _leaves(value):
        if isinstance(text, float) and not math.isfinite(text):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
        if not isinstance(text, str):
            continue
        if "\x00" in text:
            raise ValueError("must not contain NUL characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > EXTRAS_BYTES:
        raise ValueError(f"must be at most {EXTRAS_BYTES} bytes as JSON, got {size}")
    return value


def _leaves(value):
    """Every key and scalar of a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def path_components(parts):
    """Each component of a path at most NAME_BYTES bytes."""
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > NAME_BYTES:
            raise ValueError(f"path component {part[:40]!r}... is longer than {NAME_BYTES} bytes")
    return parts

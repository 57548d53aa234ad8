"""The field checks of cache payloads (cache/payloads.py): each takes a value and where it sits, returns it,
and raises Invalid naming the field when it is not what aotbuild writes there. Pure functions, no torch."""

from __future__ import annotations

import keyword
import posixpath
import re
from collections.abc import Callable
from typing import Any

from aotbuild import layout

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


class Invalid(Exception):
    """A payload that does not match its kind's schema; the message says which field and why."""


# -- field checks (each raises Invalid naming the field)

def _expect(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise Invalid(f"{where}: expected {what}")


def _fields(value: Any, where: str, required: set[str], optional: frozenset[str] = frozenset()) -> dict:
    _expect(isinstance(value, dict), where, "an object")
    keys = set(value)
    missing, extra = required - keys, keys - required - optional
    _expect(not missing and not extra, where, f"fields {sorted(required)}"
            + (f" (missing {sorted(missing)})" if missing else "") + (f" (unexpected {sorted(extra)})" if extra else ""))
    return value


def _str(value: Any, where: str) -> str:
    _expect(isinstance(value, str) and "\0" not in value, where, "a string")
    return value


def _int(value: Any, where: str, minimum: int | None = None) -> int:
    _expect(isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum),
            where, "an integer" + (f" >= {minimum}" if minimum is not None else ""))
    return value


def _number(value: Any, where: str) -> float:
    _expect(isinstance(value, (int, float)) and not isinstance(value, bool), where, "a number")
    return value


def _bool(value: Any, where: str) -> bool:
    _expect(isinstance(value, bool), where, "true or false")
    return value


def _list(value: Any, where: str, item: Callable[[Any, str], Any], max_len: int | None = None) -> list:
    _expect(isinstance(value, list) and (max_len is None or len(value) <= max_len), where,
            "a list" + (f" of at most {max_len}" if max_len is not None else ""))
    for i, v in enumerate(value):
        item(v, f"{where}[{i}]")
    return value


def digest(value: Any, where: str) -> str:
    _expect(isinstance(value, str) and _HEX64.fullmatch(value) is not None, where, "64 lowercase hex digits")
    return value


def plain_name(value: Any, where: str) -> str:
    """A file name with no directory part: no `/`, `\\`, NUL, `.` or `..`, not empty."""
    _expect(isinstance(value, str) and value not in ("", ".", "..") and not set(value) & set("/\\\0"),
            where, f"a plain file name, found {value!r}")
    return value


def is_plain_name(value: Any) -> bool:
    try:
        plain_name(value, "name")
    except Invalid:
        return False
    return True


def workspace_path(value: Any, where: str) -> str:
    """A relative POSIX path inside the workspace, as an export records its dependency files: no absolute
    path, no `..`, no hidden component (virtual environments), nothing under aot-out/."""
    ok = isinstance(value, str) and value and not set(value) & set("\\\0") and not value.startswith("/")
    parts = value.split("/") if ok else []
    ok = ok and all(p and not p.startswith(".") for p in parts) and parts[0] != layout.OUT_DIR
    _expect(bool(ok), where, f"a relative path inside the workspace, found {value!r}")
    return value


def module_name(value: Any, where: str) -> str:
    """A dotted Python module name: `pkg.mod`, never a path or `aot-out....`."""
    ok = isinstance(value, str) and all(p.isidentifier() and not keyword.iskeyword(p) and p.isascii()
                                        for p in value.split("."))
    _expect(bool(ok), where, f"a dotted Python module name, found {value!r}")
    return value


def distribution_name(value: Any, where: str) -> str:
    _expect(isinstance(value, str) and _DIST.fullmatch(value) is not None, where,
            f"a distribution name, found {value!r}")
    return value


def outside_module_path(value: Any, where: str) -> str:
    """An absolute, normalized path of a Python source file outside the workspace (a module imported through
    PYTHONPATH, or one a failed import looked for): never a device or any file other than a `.py`."""
    ok = (isinstance(value, str) and value.startswith("/") and value.endswith(".py") and "\0" not in value
          and posixpath.normpath(value) == value and not value.startswith(("/dev/", "/proc/", "/sys/")))
    _expect(bool(ok), where, f"an absolute path of a .py file, found {value!r}")
    return value


def _workspace_or_outside(value: Any, where: str) -> str:
    return outside_module_path(value, where) if isinstance(value, str) and value.startswith("/") \
        else workspace_path(value, where)


def env_name(value: Any, where: str) -> str:
    _expect(isinstance(value, str) and _ENV.fullmatch(value) is not None, where,
            f"an environment variable name, found {value!r}")
    return value

"""The checks cache payload schemas (cache/payloads.py) are made of: each raises Invalid naming the field."""

from __future__ import annotations

import keyword
import posixpath
import re
from typing import Any

from aotbuild import layout

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


class Invalid(Exception):
    """A payload that does not match its kind's schema; the message says which field and why."""


def check(value: Any, schema: Any, where: str = "") -> None:
    """`schema`: a dict (an object of exactly these fields, each checked by its own schema), `[item]` or
    `[item, max_len]` (a list of such items), or a check taking the value and where it sits."""
    if isinstance(schema, dict):
        expect(isinstance(value, dict), where or "payload", "an object")
        missing, extra = sorted(set(schema) - set(value)), sorted(set(value) - set(schema))
        expect(not missing and not extra, where or "payload", f"fields {sorted(schema)}"
               + (f" (missing {missing})" if missing else "") + (f" (unexpected {extra})" if extra else ""))
        for name, item in schema.items():
            check(value[name], item, f"{where}.{name}" if where else name)
    elif isinstance(schema, list):
        max_len = schema[1] if len(schema) > 1 else None
        expect(isinstance(value, list) and (max_len is None or len(value) <= max_len), where,
               "a list" + (f" of at most {max_len}" if max_len is not None else ""))
        for i, v in enumerate(value):
            check(v, schema[0], f"{where}[{i}]")
    else:
        schema(value, where)


def expect(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise Invalid(f"{where}: expected {what}")


def string(value: Any, where: str) -> None:
    expect(isinstance(value, str) and "\0" not in value, where, "a string")


def integer(value: Any, where: str) -> None:
    expect(isinstance(value, int) and not isinstance(value, bool), where, "an integer")


def natural(value: Any, where: str) -> None:
    expect(isinstance(value, int) and not isinstance(value, bool) and value >= 0, where, "an integer >= 0")


def number(value: Any, where: str) -> None:
    expect(isinstance(value, (int, float)) and not isinstance(value, bool), where, "a number")


def boolean(value: Any, where: str) -> None:
    expect(isinstance(value, bool), where, "true or false")


def digest(value: Any, where: str) -> None:
    expect(isinstance(value, str) and _HEX64.fullmatch(value) is not None, where, "64 lowercase hex digits")


def plain_name(value: Any, where: str) -> None:
    """A file name with no directory part: no `/`, `\\`, NUL, `.` or `..`, not empty."""
    expect(isinstance(value, str) and value not in ("", ".", "..") and not set(value) & set("/\\\0"),
           where, f"a plain file name, found {value!r}")


def is_plain_name(value: Any) -> bool:
    try:
        plain_name(value, "name")
    except Invalid:
        return False
    return True


def workspace_path(value: Any, where: str) -> None:
    """A relative POSIX path inside the workspace, as an export records its dependency files: no absolute
    path, no `..`, no hidden component (virtual environments), nothing under aot-out/."""
    ok = isinstance(value, str) and value and not set(value) & set("\\\0") and not value.startswith("/")
    parts = value.split("/") if ok else []
    ok = ok and all(p and not p.startswith(".") for p in parts) and parts[0] != layout.OUT_DIR
    expect(bool(ok), where, f"a relative path inside the workspace, found {value!r}")


def outside_module_path(value: Any, where: str) -> None:
    """An absolute, normalized path of a Python source file outside the workspace (a module imported through
    PYTHONPATH, or one a failed import looked for): never a device or any file other than a `.py`."""
    ok = (isinstance(value, str) and value.startswith("/") and value.endswith(".py") and "\0" not in value
          and posixpath.normpath(value) == value and not value.startswith(("/dev/", "/proc/", "/sys/")))
    expect(bool(ok), where, f"an absolute path of a .py file, found {value!r}")


def workspace_or_outside(value: Any, where: str) -> None:
    (outside_module_path if isinstance(value, str) and value.startswith("/") else workspace_path)(value, where)


def module_name(value: Any, where: str) -> None:
    """A dotted Python module name: `pkg.mod`, never a path or `aot-out....`."""
    ok = isinstance(value, str) and all(p.isidentifier() and not keyword.iskeyword(p) and p.isascii()
                                        for p in value.split("."))
    expect(bool(ok), where, f"a dotted Python module name, found {value!r}")


def distribution_name(value: Any, where: str) -> None:
    expect(isinstance(value, str) and _DIST.fullmatch(value) is not None, where,
           f"a distribution name, found {value!r}")


def env_name(value: Any, where: str) -> None:
    expect(isinstance(value, str) and _ENV.fullmatch(value) is not None, where,
           f"an environment variable name, found {value!r}")

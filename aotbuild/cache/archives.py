"""Checks of a zip archive from the cache before torch opens it: nothing in it may run code or land outside."""

from __future__ import annotations

import io
import json
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

# The members torch.export.save writes (torch 2.13), below the archive's one top-level folder.
_PROGRAM_MEMBERS = re.compile(r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
                              r"|models/model\.json|data/sample_inputs/model\.pt"
                              r"|data/weights/(model_weights_config\.json|weight_\d+)"
                              r"|data/constants/(model_constants_config\.json|tensor_\d+)")
_CONFIGS = {"data/weights/model_weights_config.json": re.compile(r"weight_\d+"),
            "data/constants/model_constants_config.json": re.compile(r"tensor_\d+")}
# What the sample inputs' pickle may name: tensors, their storages, ordered dicts (torch.save's own output).
_PICKLE_GLOBALS = re.compile(r"torch\._utils (_rebuild_tensor_v2|_rebuild_parameter)|collections OrderedDict"
                             r"|torch [A-Z][A-Za-z0-9]*Storage|torch (device|Size)")
_PICKLE_REFUSED = {"INST", "OBJ", "STACK_GLOBAL", "EXT1", "EXT2", "EXT4"}
# Graph node targets: registered operators, and the symbolic-size arithmetic torch serializes by name.
_IDENT = r"(?!__)[A-Za-z_][A-Za-z0-9_]*"
_TARGETS = re.compile(rf"torch\.ops\.(?!import_module\b|load_library\b|loaded_libraries\b){_IDENT}\.{_IDENT}"
                      rf"(\.{_IDENT})?|_operator\.(add|sub|mul|truediv|floordiv|mod|pow|neg|pos|abs|eq|ne|lt|le|gt"
                      r"|ge|and_|or_|xor|not_|invert|getitem|lshift|rshift)|torch\.(sym_\w+|_sym_sqrt)"
                      r"|math\.(trunc|ceil|floor|sqrt)")
# sympify evaluates its text: only symbol names, numbers, operators and these constructors may appear.
_SYMPY_NAMES = frozenset(
    "Symbol Integer Float Rational Add Mul Pow Mod Max Min Abs Eq Ne Lt Le Gt Ge StrictLessThan LessThan "
    "StrictGreaterThan GreaterThan Equality Unequality And Or Not Piecewise ITE floor ceiling sqrt oo zoo nan "
    "True False true false integer positive negative nonnegative nonpositive real finite FloorDiv "
    "ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv LShift RShift PowByNatural FloatPow "
    "FloatTrueDiv IntTrueDiv IsNonOverlappingAndDenseIndicator TruncToFloat TruncToInt OpaqueUnaryFn_sqrt "
    "Identity ToFloat RoundToInt RoundDecimal BitwiseFn_bitwise_and BitwiseFn_bitwise_or".split())
_EXPR_TOKEN = re.compile(r"\s+|'[a-z]+\d*'|[A-Za-z_][A-Za-z0-9_]*|\d+(\.\d+)?(e[+-]?\d+)?|\*\*|//|[-+*/%(),=<>!&|~]")
_SYMBOL = re.compile(r"[a-z]{1,3}\d+")
# Guards torch.export records (`L['ids'].size()[0] == L['mask'].size()[0]`), which ep.module() compiles.
_GUARD_TOKEN = re.compile(r"\s+|L(\[('(?!__)[A-Za-z_][A-Za-z0-9_]*'|\d+)\])+|\.(size|stride|storage_offset)\(\)|\[\d+\]"
                          r"|[A-Za-z_][A-Za-z0-9_]*|\d+(\.\d+)?(e[+-]?\d+)?|==|!=|<=|>=|\*\*|//|[-+*/%(),<>]")
_GUARD_WORDS = frozenset({"and", "or", "not", "inf"}) | _SYMPY_NAMES


class Refused(Exception):
    """An archive that must not reach torch; the message says which member and why."""


def _members(archive: zipfile.ZipFile) -> list[str]:
    """The member names, each a relative path that stays inside the folder it is extracted to."""
    names = archive.namelist()
    for name in names:
        parts = name.split("/")
        if not name or name.startswith("/") or set(name) & set("\\\0") or ":" in parts[0] or {".", ".."} & set(parts):
            raise Refused(f"member {name!r} is an absolute path or climbs out of its folder")
    return names


def package_problem(path: Path) -> str | None:
    """Why an AOTInductor .pt2 package must not be loaded or extracted, or None: every member stays inside."""
    try:
        with zipfile.ZipFile(path) as archive:
            _members(archive)
    except (Refused, zipfile.BadZipFile, OSError, ValueError) as e:
        return str(e)
    return None


def program_problem(path: Path | BinaryIO) -> str | None:
    """Why an exported program must not reach torch.export.load, or None when it is exactly the form
    torch.export.save writes: plain weights and constants, a tensors-only sample input, operator targets."""
    try:
        with zipfile.ZipFile(path) as archive:
            _check_program(archive)
    except (Refused, zipfile.BadZipFile, OSError, ValueError, RecursionError, KeyError) as e:
        return str(e) or type(e).__name__
    return None


def _check_program(archive: zipfile.ZipFile) -> None:
    names = _members(archive)
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or not all("/" in n for n in names):
        raise Refused(f"expected one top-level folder, found {sorted(roots)[:5]}")
    (root,) = roots
    inner = {n.split("/", 1)[1]: n for n in names}
    for rel in inner:
        if not _PROGRAM_MEMBERS.fullmatch(rel):
            raise Refused(f"member {inner[rel]!r} is not part of an exported program (loaders, pickles, libraries)")
    if "models/model.json" not in inner:
        raise Refused(f"no {root}/models/model.json")
    for config, pattern in _CONFIGS.items():
        if config in inner:
            _check_config(json.loads(archive.read(inner[config])), pattern, inner[config])
    if "data/sample_inputs/model.pt" in inner:
        _check_sample_inputs(archive.read(inner["data/sample_inputs/model.pt"]))
    _check_graph(archive.read(inner["models/model.json"]))


def _check_config(doc: Any, pattern: re.Pattern, member: str) -> None:
    entries = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise Refused(f"{member}: no config object")
    for fqn, meta in entries.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            raise Refused(f"{member}: {fqn!r} is stored as a pickle (use_pickle), which loading would run")
        if not (isinstance(meta.get("path_name"), str) and pattern.fullmatch(meta["path_name"])):
            raise Refused(f"{member}: {fqn!r} names file {meta.get('path_name')!r}")


def _check_sample_inputs(data: bytes) -> None:
    """torch.save's zip: its pickle may only rebuild tensors (torch retries a refused one unrestricted)."""
    if not data:
        return
    with zipfile.ZipFile(io.BytesIO(data)) as saved:
        pickles = [n for n in _members(saved) if n.endswith(".pkl")]
        if len(pickles) != 1:
            raise Refused(f"sample inputs hold {len(pickles)} pickles, expected 1")
        for op, arg, _ in pickletools.genops(saved.read(pickles[0])):
            if op.name in _PICKLE_REFUSED or (op.name == "GLOBAL" and not _PICKLE_GLOBALS.fullmatch(str(arg))):
                raise Refused(f"sample inputs' pickle uses {op.name} {arg!r}, which only code could need")


def _checked_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' hook for every object of model.json: its node targets, sizes and custom objects."""
    for key, value in pairs:
        if key == "target" and isinstance(value, str) and not _TARGETS.fullmatch(value):
            raise Refused(f"a graph node calls {value[:80]!r}, not an operator")
        if key == "expr_str" and not (isinstance(value, str) and safe_expression(value)):
            raise Refused(f"symbolic size {str(value)[:80]!r} is not a plain expression")
        if key == "custom_obj_values" and value:
            raise Refused("the graph holds custom (pickled) objects")
    return dict(pairs)


def _check_graph(data: bytes) -> None:
    doc = json.loads(data, object_pairs_hook=_checked_object)
    guards = doc.get("guards_code", []) if isinstance(doc, dict) else None
    if not isinstance(guards, list) or not all(isinstance(g, str) and _plain(g, _GUARD_TOKEN, _GUARD_WORDS)
                                               for g in guards):
        raise Refused(f"models/model.json carries guard code that is not a plain size comparison: {guards!r:.80}")


def safe_expression(text: str) -> bool:
    """Whether sympify(text) can only build an expression: symbol names, numbers, operators, known names."""
    return _plain(text, _EXPR_TOKEN, _SYMPY_NAMES)


def _plain(text: str, tokens: re.Pattern, words: frozenset[str]) -> bool:
    """Whether `text` is made of `tokens` only, each name among `words` or a symbol name (s0, u1)."""
    pos = 0
    while pos < len(text):
        m = tokens.match(text, pos)
        if m is None:
            return False
        token = m.group()
        if (token[0].isalpha() or token[0] == "_") and token not in words and not _SYMBOL.fullmatch(token) \
                and not token.startswith("L["):
            return False
        pos = m.end()
    return len(text) <= 10_000

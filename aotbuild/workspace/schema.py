"""BUILD and WORKSPACE files into targets and settings (only when re-planning), errors naming file, line and field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aotbuild import layout
from aotbuild.errors import LabelError, Location, TargetError
from aotbuild.text import human_bytes
from aotbuild.workspace.discovery import WORKSPACE_FILE
from aotbuild.workspace.fields import (
    FIELD_PARSERS,
    Ctx,
    callable_ref,
    check_keys,
    expect,
    parse_dims,
    parse_kwargs,
    parse_weights,
    strings,
)
from aotbuild.workspace.input_specs import TENSOR_EXAMPLE, input_bytes, parse_inputs
from aotbuild.workspace.labels import TARGET_NAME, Label, parse_pattern
from aotbuild.workspace.target import Target, WorkspaceConfig
from aotbuild.workspace.yaml_source import Node, load_yaml, parse_yaml

# Fields a `defaults:` block may set; model and inputs are per-target by nature.
DEFAULTABLE = tuple(FIELD_PARSERS)
TARGET_FIELDS = ("model", "kwargs", "weights", "inputs", "dims", *DEFAULTABLE)
BUILD_FILE_FIELDS = ("defaults", "targets")
WORKSPACE_FIELDS = ("defaults", "cache", "ignore", "executor")
_REQUIRED = {"model": "write model: package.module:factory", "inputs": f"write inputs: {{x: {TENSOR_EXAMPLE}}}"}


def _parse_defaults(ctx: Ctx, file: dict[str, Node]) -> dict[str, Node]:
    mapping = check_keys(ctx, file.get("defaults", Node({}, 1)), DEFAULTABLE, "defaults")
    for key, value in mapping.items():
        FIELD_PARSERS[key](ctx, value)  # validate early so the error points at the defaults block
    return mapping


def parse_workspace(node: Node, file: str) -> WorkspaceConfig:
    ctx = Ctx(file)
    mapping = check_keys(ctx, node, WORKSPACE_FIELDS, None)
    cache = check_keys(ctx, mapping.get("cache", Node({}, 1)), ("dir", "remote", "verify_keys"), "cache")
    cache_dir = expect(ctx, cache["dir"], "cache.dir", str, "a directory path") if "dir" in cache else None
    url = "a URL: http(s)://host/prefix or s3://bucket/prefix"
    remote = expect(ctx, cache["remote"], "cache.remote", str, url) if "remote" in cache else None
    verify_keys = _verify_keys(ctx, cache["verify_keys"]) if "verify_keys" in cache else ()
    ignore = strings(ctx, mapping.get("ignore", Node([], 1)), "ignore", "a list of directories", "a directory path")
    executor = (expect(ctx, mapping["executor"], "executor", str, "a URL: ray://HOST:PORT")
                if "executor" in mapping else None)
    return WorkspaceConfig(_parse_defaults(ctx, mapping), cache_dir,
                           tuple(text.strip("/") for _, text in ignore), remote, verify_keys, executor)


def _verify_keys(ctx: Ctx, node: Node) -> tuple[str, ...]:
    """Public keys whose signatures make a remote-cache entry acceptable (cache/signing.py checks the bytes)."""
    what = "a list of public keys, each 'ed25519:<base64>' as `aotbuild cache keygen` prints it"
    keys = strings(ctx, node, "cache.verify_keys", what, what)
    for item, key in keys:
        if not key.startswith("ed25519:"):
            raise ctx.error(item, "cache.verify_keys", f"expected {what}, found {key[:20]!r}",
                            "make a key pair with `aotbuild cache keygen`")
    return tuple(key for _, key in keys)


def parse_build_file(node: Node, file: str, package: str, workspace_defaults: dict[str, Node]
                     ) -> tuple[list[Target], dict[Label, TargetError]]:
    """A file-level problem raises; a bad target is returned apart, so its siblings can still build (-k)."""
    ctx = Ctx(file)
    mapping = check_keys(ctx, node, BUILD_FILE_FIELDS, None)
    file_defaults = _parse_defaults(ctx, mapping)
    defaults = {**workspace_defaults, **file_defaults}
    if "options" in workspace_defaults and "options" in file_defaults:  # options merge key by key, per level
        merged = {**workspace_defaults["options"].value, **file_defaults["options"].value}
        defaults["options"] = Node(merged, file_defaults["options"].line)
    targets_node = mapping.get("targets", Node({}, node.line))
    targets, errors = [], {}
    for name, spec in expect(ctx, targets_node, "targets", dict, "a mapping of target names").items():
        try:
            if not TARGET_NAME.fullmatch(name) or name == "all":
                # Recorded like any bad target, so its siblings still build; the selection shows it.
                raise Ctx(file, name).error(spec, None, f"invalid target name {name!r}",
                                            "use letters, digits, '_', '-' and '.'; 'all' is reserved")
            targets.append(_parse_target(Ctx(file, name), spec, Label(package, name), file, defaults))
        except TargetError as e:
            errors[Label(package, name)] = e
    return targets, errors


def _parse_target(ctx: Ctx, node: Node, label: Label, file: str, defaults: dict[str, Node]) -> Target:
    mapping = check_keys(ctx, node, TARGET_FIELDS, None, _REQUIRED)
    model = callable_ref(ctx, mapping["model"], "model", "write e.g. model: models.mlp:MLP")
    fields: dict[str, Any] = {key: FIELD_PARSERS[key](ctx, mapping.get(key) or defaults[key])
                              for key in DEFAULTABLE if key in mapping or key in defaults}
    if "options" in mapping and "options" in defaults:
        fields["options"] = {**defaults["options"].plain(), **fields["options"]}
    dims = parse_dims(ctx, mapping["dims"]) if "dims" in mapping else ()
    inputs = parse_inputs(ctx, mapping["inputs"], {d.name: d for d in dims})
    if isinstance(inputs, str) and dims:
        raise ctx.error(mapping["dims"], "dims", "dims need declared input shapes, not a callable",
                        "declare inputs by shape to use dynamic dimensions")
    if not isinstance(inputs, str):
        limit = fields.get("max_input_bytes", Target.max_input_bytes)
        size, biggest = input_bytes(inputs, dims)
        if size > limit:
            raise ctx.error(mapping["inputs"], "inputs",
                            f"the example inputs take {human_bytes(size)} at their largest declared sizes "
                            f"({biggest}), over the limit of {human_bytes(limit)}",
                            "declare smaller shapes or dims, or raise max_input_bytes (in the target or defaults)")
    kwargs = parse_kwargs(ctx, mapping["kwargs"]) if "kwargs" in mapping else {}
    weights = parse_weights(ctx, mapping["weights"], label.package) if "weights" in mapping else None
    return Target(label=label, build_file=file, line=node.line, model=model, kwargs=kwargs, weights=weights,
                  inputs=inputs, dims=dims, **fields)


@dataclass
class Package:
    """One package as parsed: its targets, or why its BUILD file or some of its targets are unusable."""

    targets: list[Target] = field(default_factory=list)
    broken: TargetError | None = None
    broken_targets: dict[Label, TargetError] = field(default_factory=dict)
    weights: set[str] = field(default_factory=set)  # every weights file named, found or not


def load_config(root: Path) -> WorkspaceConfig:
    return parse_workspace(load_yaml(root / WORKSPACE_FILE, WORKSPACE_FILE), WORKSPACE_FILE)


def load_package(root: Path, package: str, config: WorkspaceConfig, text: str | None = None) -> Package:
    """Never raises for the user's mistakes: a broken file or target is recorded, so the rest still builds."""
    file = layout.build_file(package)
    try:
        _check_package_name(package, file)
        node = load_yaml(root / file, file) if text is None else parse_yaml(text, file)
        targets, errors = parse_build_file(node, file, package, config.defaults)
    except TargetError as e:
        return Package(broken=e)
    result = Package(broken_targets=errors, weights={t.weights for t in targets if t.weights})
    for target in targets:
        try:
            if target.weights:
                _check_weights(root, target)
            result.targets.append(target)
        except TargetError as e:
            result.broken_targets[target.label] = e
    return result


def _check_package_name(package: str, file: str) -> None:
    """A directory name becomes part of labels, ninja paths and shell commands: it must be a valid label."""
    try:
        parse_pattern(f"//{package}:all")
    except LabelError as e:
        raise TargetError(Location(file), f"the directory '{package}' is not a valid package name: {e}",
                          "rename it with letters, digits, '_', '-', '.' and '+' only") from None


def _check_weights(root: Path, target: Target) -> None:
    where = Location(target.build_file, target.line, target.label.name, "weights")
    path = root / target.weights
    if not path.is_file():
        raise TargetError(where, f"weights file '{target.weights}' does not exist",
                          "give a state_dict file path relative to the package directory")
    # A symlink may point anywhere; the resolved file must still live inside the workspace.
    if not path.resolve().is_relative_to(root.resolve()):
        raise TargetError(where, f"weights file '{target.weights}' resolves outside the workspace",
                          "copy the checkpoint into the workspace")

"""The differential fuzzer's menu of edits: each takes the fuzzer and a random source, edits, and says what it did.

Most edits leave the edited file no newer than the last build (its old mtime restored, or an older file moved
over it), the way `cp -p`, `rsync -t`, tar, backups and some checkouts do: mtimes alone cannot see them.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import fuzz_workspace

DAY_NS = 86_400 * 10**9
SOURCES = {  # workspace file -> contents it may take
    "m/helper.py": ["K = 1\n", "K = 2\n", "K = 3\n"],
    "m/config.json": ['{"c": 1}\n', '{"c": 2}\n', '{"c": 5}\n'],
    "m/other.json": ['{"c": 2}\n', '{"c": 3}\n'],
    "m/tiny.py": [fuzz_workspace.MODEL, fuzz_workspace.MODEL + "# a comment\n"],
}


def _write_keeping_mtime(path: Path, text: str | bytes) -> None:
    st = path.stat() if path.exists() else None
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    if st is not None:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _move_older_over(path: Path, text: str | bytes) -> None:
    temp = path.with_name(f".{path.name}.new")
    temp.write_bytes(text.encode() if isinstance(text, str) else text)
    old = time.time_ns() - DAY_NS
    os.utime(temp, ns=(old, old))
    os.replace(temp, path)


def edit_source_old_mtime(fuzz: Any, rng: random.Random) -> str:
    rel = rng.choice(sorted(SOURCES))
    text = rng.choice(SOURCES[rel])
    _write_keeping_mtime(fuzz.ws / rel, text)
    return f"{rel} <- {text.strip()[:20]!r}, mtime kept"


def move_older_file_over(fuzz: Any, rng: random.Random) -> str:
    rel = rng.choice(sorted(SOURCES))
    text = rng.choice(SOURCES[rel])
    _move_older_over(fuzz.ws / rel, text)
    return f"{rel} <- {text.strip()[:20]!r}, an older file moved over it"


def edit_source(fuzz: Any, rng: random.Random) -> str:
    rel = rng.choice(sorted(SOURCES))
    text = rng.choice(SOURCES[rel])
    (fuzz.ws / rel).write_text(text)
    return f"{rel} <- {text.strip()[:20]!r}"


def touch(fuzz: Any, rng: random.Random) -> str:
    rel = rng.choice(sorted(SOURCES) + ["m/w.pt", "m/BUILD.aot.yaml", "m/__init__.py"])
    os.utime(fuzz.ws / rel)
    return rel


def retarget_weights(fuzz: Any, rng: random.Random) -> str:
    version = rng.choice(sorted(p.name for p in (fuzz.ws / "weights").iterdir()))
    link = fuzz.ws / "m" / "w.pt"
    temp = link.with_name(".w.pt.new")
    os.symlink(f"../weights/{version}", temp)
    os.replace(temp, link)
    return f"m/w.pt -> {version}"


def overwrite_weights_keeping_mtime(fuzz: Any, rng: random.Random) -> str:
    source = rng.choice(sorted((fuzz.ws / "weights").iterdir()))
    target = (fuzz.ws / "m" / "w.pt").resolve()
    _write_keeping_mtime(target, source.read_bytes())
    return f"{target.name} <- the bytes of {source.name}, mtime kept"


def toggle_optional_module(fuzz: Any, rng: random.Random) -> str:
    path = fuzz.ws / "m" / "opt_override.py"
    if path.exists() and rng.random() < 0.5:
        path.unlink()
        return "removed m/opt_override.py"
    text = f"SCALE = {rng.choice([2, 3])}\n"
    _move_older_over(path, text)
    return f"m/opt_override.py <- {text.strip()!r}, dated a day back"


def edit_external_module(fuzz: Any, rng: random.Random) -> str:
    directory = rng.choice(fuzz.external)
    text = f"E = {rng.choice([1, 2, 3])}\n"
    _write_keeping_mtime(directory / "extmod.py", text)
    return f"{directory.name}/extmod.py <- {text.strip()!r}, mtime kept"


def switch_pythonpath(fuzz: Any, rng: random.Random) -> str:
    choice = rng.choice([None, *fuzz.external])
    if choice is None:
        fuzz.env.pop("PYTHONPATH", None)
        return "PYTHONPATH unset"
    fuzz.env["PYTHONPATH"] = str(choice)
    return f"PYTHONPATH={choice.name}"


def set_env(fuzz: Any, rng: random.Random) -> str:
    value = rng.choice([None, "2"])
    if value is None:
        fuzz.env.pop("FUZZ_SCALE", None)
    else:
        fuzz.env["FUZZ_SCALE"] = value
    return f"FUZZ_SCALE={value}"


def damage_state_file(fuzz: Any, rng: random.Random) -> str:
    """Delete or empty a plan file or a content or distribution stamp, or delete an output. (An output edited
    in place is outside the contract, as for ninja and make: outputs are judged by presence and mtime, and
    only `aotbuild test` rehashes artifacts; README, "Damage repairs itself".)"""
    out = fuzz.ws / "aot-out"
    candidates = [p for pattern in (".aotbuild/pkgs/*", ".aotbuild/build.ninja", ".aotbuild/plan.json",
                                    ".aotbuild/inputs/*", ".aotbuild/dists/*", "*/@*/graph.json",
                                    "*/@*/reference_io.pt", ".aotbuild/toolchain.json")
                  for p in out.glob(pattern) if p.is_file()]
    if not candidates:
        return "nothing to damage"
    path = rng.choice(sorted(candidates))
    if rng.random() < 0.5 or "@" in path.parent.name:
        path.unlink()
        return f"removed {path.relative_to(out)}"
    path.write_bytes(b"")
    return f"emptied {path.relative_to(out)}"


def edit_build_files(fuzz: Any, rng: random.Random) -> str:
    """Add or remove a target, or a whole package, with the BUILD file's mtime restored."""
    if rng.random() < 0.5:
        build = fuzz.ws / "m" / "BUILD.aot.yaml"
        text = build.read_text()
        new = text.replace(fuzz_workspace.EXTRA_TARGET, "") if fuzz_workspace.EXTRA_TARGET in text \
            else text + fuzz_workspace.EXTRA_TARGET
        _write_keeping_mtime(build, new)
        return "toggled target //m:f, mtime kept"
    package = fuzz.ws / "p2"
    if package.exists():
        (package / "BUILD.aot.yaml").unlink()
        package.rmdir()
        return "removed package p2"
    package.mkdir()
    _move_older_over(package / "BUILD.aot.yaml", fuzz_workspace.P2_BUILD)
    return "added package p2 (an older BUILD file)"


def restore_snapshot(fuzz: Any, rng: random.Random) -> str:
    """What a checkout of another branch that keeps times does: several files at once, each an older file."""
    chosen = rng.sample(sorted(SOURCES), 2)
    for rel in chosen:
        _move_older_over(fuzz.ws / rel, rng.choice(SOURCES[rel]))
    return f"checked out {', '.join(chosen)} with old times"


Edit = Callable[[Any, random.Random], str]
MENU: list[tuple[str, Edit]] = [(f.__name__, f) for f in (
    edit_source_old_mtime, move_older_file_over, edit_source, touch, retarget_weights,
    overwrite_weights_keeping_mtime, toggle_optional_module, edit_external_module, switch_pythonpath, set_env,
    damage_state_file, edit_build_files, restore_snapshot)]

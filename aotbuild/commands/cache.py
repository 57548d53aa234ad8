"""`aotbuild cache path|stats|verify|gc|keygen`: inspect and maintain the local cache; make signing keys."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from aotbuild.engine import build as engine
from aotbuild.engine.context import open_workspace
from aotbuild.errors import UserError
from aotbuild.reports.outcomes import remote_lines
from aotbuild.text import human_bytes, plural, table

SIZE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _quantity(text: str | None, units: dict[str, int], flag: str, expected: str) -> float | None:
    """'500M' (bytes), '12h' (seconds) or a bare number; None stays None."""
    if text is None:
        return None
    value = text.strip().lower()
    if units is SIZE_UNITS:
        value = value.removesuffix("b")
    try:
        return float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected {expected}") from None


def _keygen(private_key: str) -> int:
    """Write a new private key to a file only its owner reads, and print the public key to distribute."""
    from aotbuild.cache import signing

    private, public = signing.generate()
    path = Path(private_key)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise UserError(f"{path} exists: keygen never overwrites a key\n  fix: choose another file") from None
    with os.fdopen(fd, "w") as f:
        f.write(private + "\n")
    print(f"aotbuild: private key written to {path} (give it to CI as AOTBUILD_SIGNING_KEY_FILE or the "
          "AOTBUILD_SIGNING_KEY secret)\npublic key, for AOTBUILD_REMOTE_VERIFY_KEYS on every machine that reads "
          f"the remote:\n{public}")
    return 0


def stats_lines(stats: dict[str, Any], temp_bytes: int, last: dict[str, Any] | None) -> list[str]:
    """`stats` from LocalStore.stats(); `temp_bytes` the compiler temp space; `last` last-build.json, if any."""
    rows = [("artifacts, programs (cas/)", stats["cas_entries"], stats["cas_bytes"]),
            ("action results (ac/)", stats["ac_entries"], stats["ac_bytes"])]
    cells = [(what, str(n), human_bytes(b)) for what, n, b in rows]
    cells += [("compiler temp space", "-", human_bytes(temp_bytes)),
              ("total", str(sum(r[1] for r in rows)), human_bytes(sum(r[2] for r in rows) + temp_bytes))]
    out = [f"cache {stats['root']}", *table(("", "entries", "size"), cells)]
    if last is not None:
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(last["outcomes"].items(), key=lambda kv: -kv[1]))
        out += ["", f"last build: {plural(last['hits'], 'hit')}, {plural(last['misses'], 'miss')}, "
                    f"{plural(last['actions'], 'action')}, {plural(len(last['corrupt']), 'corrupt entry')}",
                f"  targets: {outcomes or 'none'}"]
        for line in remote_lines(last["remote"]) if last.get("remote") else []:
            out.append(line.replace("aotbuild: remote cache", "last build: remote cache", 1))
    return out


def cmd_cache(args: argparse.Namespace) -> int:
    from aotbuild.cache import compiler_temp
    from aotbuild.cache.local import LocalStore

    if args.cache_command == "keygen":
        return _keygen(args.private_key)
    ctx = open_workspace(Path.cwd(), args.cache_dir)
    store = LocalStore(ctx.cache_dir)
    if args.cache_command == "path":
        print(ctx.cache_dir)
    elif args.cache_command == "stats":
        usage = engine.last_build(ctx.out_dir, ctx.cache_dir)
        print("\n".join(stats_lines(store.stats(), compiler_temp.usage().bytes, usage)))
    elif args.cache_command == "verify":
        from aotbuild.cache.eviction import target_dirs
        from aotbuild.engine.output_checks import repair_mismatched

        corrupt = store.verify()
        for name in corrupt:
            print(f"corrupt (removed): {name}")
        # What aot-out/ links to may be a copy, or changed after the cache entry was replaced: check it too.
        bad = [path for d in target_dirs(ctx.out_dir) for path in repair_mismatched(d)]
        for path in bad:
            print(f"corrupt (removed; the next build restores it): {path} differs from its manifest.json")
        print(f"aotbuild: cache verified, {plural(len(corrupt), 'corrupt entry')} removed; "
              f"{plural(len(bad), 'artifact')} in {ctx.out_dir} {'differs' if len(bad) == 1 else 'differ'} "
              "from their manifests")
        return 1 if corrupt or bad else 0
    elif args.cache_command == "gc":
        if not args.max_size and not args.max_age:
            raise UserError("cache gc needs --max-size and/or --max-age")
        budget = _quantity(args.max_size, SIZE_UNITS, "--max-size", "a size such as 500M, 10G or 1073741824")
        max_age = _quantity(args.max_age, AGE_UNITS, "--max-age", "an age such as 30d, 12h or 3600")
        gc = compiler_temp.collect(store, None if budget is None else int(budget), max_age)
        temp = f" and {human_bytes(gc.temp_reclaimed)} of compiler temp space" if gc.temp_reclaimed else ""
        kept = [f"{gc.kept_in_use} in use by a running build"] if gc.kept_in_use else []
        kept += ["the compiler temp space, in use by a running build or compile"] if gc.temp_kept_in_use else []
        print(f"aotbuild: evicted {plural(len(gc.removed), 'entry')}{temp}"
              + (f"; kept {' and '.join(kept)}" if kept else ""))
        if budget is not None:
            _check_budget(store.stats(), compiler_temp.usage().bytes, budget, args.max_size)
    return 0


def _check_budget(stats: dict[str, Any], temp: int, budget: float, text: str) -> None:
    """Say so when gc could not bring the cache within --max-size (entries in use, the compiler temp space)."""
    entries = stats["cas_bytes"] + stats["ac_bytes"]
    if entries + temp > budget:
        print(f"warning: the cache still holds {human_bytes(entries + temp)} ({human_bytes(entries)} of entries, "
              f"{human_bytes(temp)} of compiler temp space), over the --max-size {text} budget: what is left is in "
              "use by a running build or compile, or was used since one started; run gc again once it is done",
              file=sys.stderr)

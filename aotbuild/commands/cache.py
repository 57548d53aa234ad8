"""`aotbuild cache path|stats|verify|gc|keygen`: inspect and maintain the local cache; make signing keys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aotbuild.engine import build as engine
from aotbuild.engine.context import open_workspace
from aotbuild.errors import UserError
from aotbuild.text import plural

if TYPE_CHECKING:
    from aotbuild.cache.local import LocalStore


def _size(text: str) -> int:
    """'500M', '10G', '1024' -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B")
    try:
        return int(float(value[:-1]) * units[value[-1]]) if value and value[-1] in units else int(value)
    except ValueError:
        raise UserError(f"--max-size {text!r}: expected a size such as 500M, 10G or 1073741824") from None


def _age(text: str) -> float:
    """'30d', '12h', '90m', '3600' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = text.strip().lower()
    try:
        return float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
    except ValueError:
        raise UserError(f"--max-age {text!r}: expected an age such as 30d, 12h or 3600") from None


def _keygen(private_key: str) -> int:
    """Write a new private key to a file only its owner reads, and print the public key to distribute."""
    import os

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


def cmd_cache(args: argparse.Namespace) -> int:
    from aotbuild.cache.local import LocalStore

    if args.cache_command == "keygen":
        return _keygen(args.private_key)
    ctx = open_workspace(Path.cwd(), args.cache_dir)
    store = LocalStore(ctx.cache_dir)
    if args.cache_command == "path":
        print(ctx.cache_dir)
    elif args.cache_command == "stats":
        from aotbuild.cache import compiler_temp
        from aotbuild.reports.cache_report import stats_lines

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
        from aotbuild.cache import compiler_temp
        from aotbuild.text import human_bytes

        gc = compiler_temp.collect(store, _size(args.max_size) if args.max_size else None,
                                   _age(args.max_age) if args.max_age else None)
        temp = f" and {human_bytes(gc.temp_reclaimed)} of compiler temp space" if gc.temp_reclaimed else ""
        kept = [f"{gc.kept_in_use} in use by a running build"] if gc.kept_in_use else []
        kept += ["the compiler temp space, in use by a running build or compile"] if gc.temp_kept_in_use else []
        print(f"aotbuild: evicted {plural(len(gc.removed), 'entry')}{temp}"
              + (f"; kept {' and '.join(kept)}" if kept else ""))
        if args.max_size:
            _check_budget(store, _size(args.max_size), args.max_size)
    return 0


def _check_budget(store: LocalStore, budget: int, text: str) -> None:
    """Say so when gc could not bring the cache within --max-size (entries in use, the compiler temp space)."""
    from aotbuild.cache import compiler_temp
    from aotbuild.text import human_bytes

    stats = store.stats()
    entries, temp = stats["cas_bytes"] + stats["ac_bytes"], compiler_temp.usage().bytes
    if entries + temp > budget:
        print(f"warning: the cache still holds {human_bytes(entries + temp)} ({human_bytes(entries)} of entries, "
              f"{human_bytes(temp)} of compiler temp space), over the --max-size {text} budget: what is left is in "
              "use by a running build or compile, or was used since one started; run gc again once it is done",
              file=sys.stderr)

"""`aotbuild clean` waits for a running build (issue 27): removing aot-out/ under a build made it fail."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
from pathlib import Path

from .conftest import write


def test_clean_waits_for_the_build_lock(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / "WORKSPACE.aot.yaml", "")
    write(ws / "aot-out" / "m" / "@a" / "graph.json", "{}")
    lock = ws / "aot-out" / ".aotbuild" / "build.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what a running build (or its orphaned actions) holds
    try:
        clean = subprocess.Popen([sys.executable, "-m", "aotbuild", "clean"], cwd=ws, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        readable, _, _ = select.select([clean.stderr], [], [], 60)
        said = clean.stderr.readline() if readable else ""
        assert "waiting for another build" in said, said
        assert clean.poll() is None and (ws / "aot-out" / "m" / "@a" / "graph.json").exists()
    finally:
        os.close(fd)
    out, err = clean.communicate(timeout=60)
    assert clean.returncode == 0, out + err
    assert not (ws / "aot-out").exists()

"""What a model read while imported, built and exported: files opened (audit hook), imports not found."""

from __future__ import annotations

import os
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aotbuild import layout

# Where installations and the system keep files a model reads without their being its inputs.
_SYSTEM_PREFIXES = ("/proc/", "/dev/", "/sys/", "/etc/", "/usr/", "/lib/", "/lib64/", "/run/", "/var/")


def installed_roots() -> tuple[str, ...]:
    """Directories of versioned installations and the interpreter; aotbuild's own (its version is in every key)."""
    import aotbuild

    paths = sysconfig.get_paths()
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             *(paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")),
             str(Path(aotbuild.__file__).resolve().parent.parent)}
    return tuple(sorted(os.path.realpath(r) + "/" for r in roots if r))


def imported_files(root: Path, distributed: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The files of the imported modules: workspace .py files (relative), and absolute files outside the workspace
    and every installation (PYTHONPATH) that no distribution provides (`distributed`: packages_distributions()),
    hashed like workspace sources: no version covers them."""
    installed = installed_roots()
    prefix = f"{os.path.realpath(root)}/"
    inside, outside = set(), set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not isinstance(file, str) or not os.path.isabs(file):
            continue
        real = os.path.realpath(file)
        rel = real[len(prefix):]
        if not real.startswith(prefix):
            top = str(getattr(module, "__name__", "")).partition(".")[0]
            if top not in distributed and not real.startswith(installed) and "/site-packages/" not in real:
                outside.add(real)
        # Virtual environments inside the workspace are installed packages, tracked by version.
        elif real.endswith(".py") and not rel.startswith(f"{layout.OUT_DIR}/") and not any(
                part.startswith(".") or part == "site-packages" for part in rel.split("/")):
            inside.add(rel)
    return sorted(inside), sorted(outside)


@dataclass
class Recorder:
    """Records opens and failed imports while `active`; audit hooks cannot be removed, so it is switched off.
    A file read outside the workspace and every installation is warned about once: nothing can track it."""

    root: Path
    warn: Callable[[str], None]  # ActionContext.warn
    label: str
    active: bool = True
    opened: set[str] = field(default_factory=set)  # workspace-relative
    missing: set[tuple[str, tuple[str, ...] | None]] = field(default_factory=set)  # (module name, search path)
    warned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._prefix = f"{os.path.realpath(self.root)}/"
        self._out = f"{self._prefix}{layout.OUT_DIR}/"
        self._installed = installed_roots()
        temp = os.path.realpath(tempfile.gettempdir())
        # torch's and inductor's caches, and aotbuild's own temp space.
        self._quiet = self._installed + (f"{temp}/torchinductor_", f"{temp}/aotbuild-",
                                           os.path.expanduser("~/.cache/"), os.path.expanduser("~/.triton/"))

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or event != "open" or not args:
            return
        path, mode = args[0], args[1] if len(args) > 1 else "r"
        if isinstance(path, int) or path is None or (isinstance(mode, str) and any(c in mode for c in "wax+")):
            return
        self.active = False  # the hook's own file-system calls must not re-enter it
        try:
            self._saw(os.path.realpath(os.fsdecode(path)))
        finally:
            self.active = True

    def _saw(self, real: str) -> None:
        if real.startswith(self._prefix):
            rel = real[len(self._prefix):]
            # Bytecode caches follow their sources; hidden directories (.git, a .venv) are not model inputs.
            if not real.startswith(self._out) and not rel.endswith(".pyc") and not any(
                    part.startswith(".") or part == "__pycache__" for part in rel.split("/")) and os.path.isfile(real):
                self.opened.add(rel)
        elif not real.startswith(self._quiet + _SYSTEM_PREFIXES) and "/site-packages/" not in real \
                and real not in self.warned and os.path.isfile(real):
            self.warned.add(real)
            self.warn(f"{self.label}: the model read {real}, outside the workspace: aotbuild cannot see when "
                      "it changes\n  fix: move it into the workspace and list it under the target's `data:`")

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> None:
        if self.active and self._asked_by_model_code():
            self.missing.add((fullname, tuple(path) if path is not None else None))
        return None

    def _asked_by_model_code(self) -> bool:
        """Whether the failed import comes from code outside every installation: torch's own probes of optional
        packages depend on which process (a warm worker) imported what first."""
        frame = sys._getframe(2)
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                     or frame.f_code.co_filename.endswith(f"importlib{os.sep}__init__.py")):
            frame = frame.f_back
        if frame is None:
            return False
        real = os.path.realpath(frame.f_code.co_filename)
        return not real.startswith(self._installed) and "/site-packages/" not in real

    def absent_files(self, external_dirs: Sequence[str]) -> list[str]:
        """.py files (workspace-relative, or absolute outside) that would have satisfied a failed import, and do
        not exist."""
        found = set()
        for fullname, path in self.missing:
            last = fullname.rpartition(".")[2]
            dirs = path if path is not None else [str(self.root), *external_dirs]
            for d in dirs:
                real = os.path.realpath(d)
                for candidate in (f"{real}/{last}.py", f"{real}/{last}/__init__.py"):
                    if os.path.exists(candidate):
                        continue
                    if candidate.startswith(self._prefix) and not candidate.startswith(self._out):
                        found.add(candidate[len(self._prefix):])
                    elif real in external_dirs:
                        found.add(candidate)
        return sorted(found)


def start(root: Path, label: str, warn: Callable[[str], None]) -> Recorder:
    """Begin recording (call once per process, before the model is imported)."""
    recorder = Recorder(root, warn, label)
    sys.addaudithook(recorder.audit)
    sys.meta_path.append(recorder)  # type: ignore[arg-type]
    return recorder


def stop(recorder: Recorder) -> None:
    recorder.active = False
    sys.meta_path.remove(recorder)  # type: ignore[arg-type]

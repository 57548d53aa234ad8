"""Issue 21's forged cache entries, served by a malicious HTTP cache or planted in the local cache: each is
a miss with a warning (or used safely), no code from the cache runs, no file outside aot-out/ and the cache
changes, no traceback, exit 0. One warm build of a one-target workspace feeds every case."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aotbuild.cache.store import encode_action

from .conftest import TINY_MODEL, aotbuild, artifact_digests

pytestmark = pytest.mark.torch

EVIL_MODULE = "import pathlib\npathlib.Path({marker!r}).write_text('imported')\n"
Entries = dict[str, dict[str, Any]]


def _kind(payload: dict[str, Any]) -> str:
    for field, kind in (("lists", "export-deps"), ("graph_hash", "export"), ("pt2", "compile"),
                        ("rejected", "verify"), ("program", "program-of-graph")):
        if field in payload:
            return kind
    raise AssertionError(payload)


class Warm:
    """The warm build's workspace, entries and blobs, and where a case may not write."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.ws = base / "ws"
        self.outside = base / "outside"  # sentinels: must survive every case unchanged
        self.markers = base / "markers"  # code from the cache would create files here
        for d in (self.ws / "m", self.outside, self.markers):
            d.mkdir(parents=True)
        (self.ws / "WORKSPACE.aot.yaml").write_text("")
        (self.ws / "m" / "__init__.py").write_text("")
        (self.ws / "m" / "tiny.py").write_text(TINY_MODEL)
        (self.ws / "m" / "evil.py").write_text(EVIL_MODULE.format(marker=str(self.markers / "evil-imported")))
        (self.ws / "m" / "BUILD.aot.yaml").write_text(
            "targets:\n  a: {model: m.tiny:Tiny, inputs: {x: {shape: [2, 4], dtype: float32}}}\n")
        for name in ("one", "two"):
            (self.outside / name).write_text(f"sentinel {name}\n")
        cache = base / "warm-cache"
        run = aotbuild(["build", "//m:a"], self.ws, {"AOTBUILD_CACHE_DIR": str(cache)})
        assert run.code == 0, run.output
        self.digests = artifact_digests(self.ws)
        self.entries: Entries = {p.name: json.loads(p.read_bytes())["payload"] for p in (cache / "v1/ac").glob("*/*")}
        self.blobs = {p.name: p.read_bytes() for p in (cache / "v1/cas").glob("*/*")}

    def key(self, kind: str) -> str:
        (key,) = [k for k, v in self.entries.items() if _kind(v) == kind]
        return key

    def snapshot(self, ws: Path) -> dict[str, str]:
        """Every file outside aot-out/ (the workspace's sources, the sentinels), and the markers."""
        files = [p for p in ws.rglob("*") if p.is_file() and "aot-out" not in p.parts
                 and "__pycache__" not in p.parts and p.name != ".report.json"]  # the test's own report
        files += [p for d in (self.outside, self.markers) for p in d.rglob("*") if p.is_file()]
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Warm:
    return Warm(tmp_path_factory.mktemp("trust"))


class _Handler(BaseHTTPRequestHandler):
    """A read-only Bazel HTTP cache answering from the server's dictionaries."""

    def _body(self) -> bytes | None:
        kind, _, name = self.path.strip("/").partition("/")
        return self.server.ac.get(name) if kind == "ac" else self.server.cas.get(name)  # type: ignore[attr-defined]

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        body = self._body()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(200 if self._body() is not None else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:  # noqa: N802
        self.send_response(403)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def evil_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _store(entries: Entries, blobs: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    return {k: encode_action(k, v) for k, v in entries.items()}, blobs


def _plant(cache: Path, entries: Entries, blobs: dict[str, bytes]) -> None:
    ac, cas = _store(entries, blobs)
    for kind, items in (("ac", ac), ("cas", cas)):
        for name, data in items.items():
            path = cache / "v1" / kind / name[:2] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def _add_blob(blobs: dict[str, bytes], data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest


def _rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, replace.pop(name) if name in replace else src.read(name))
        for name, member in replace.items():
            dst.writestr(name, member)
    return out.getvalue()


class _OpensAFile:
    """Pickled, it calls open(path, 'w') when unpickled: a stand-in for any code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


# -- the forgeries: each changes the warm entries and blobs, and returns the key that must be named

def pickled_weight_program(warm: Warm, entries: Entries, blobs: dict[str, bytes]) -> str:
    import torch

    key = warm.key("export")
    program = blobs[entries[key]["program"]]
    with zipfile.ZipFile(io.BytesIO(program)) as z:
        config_name = next(n for n in z.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(z.read(config_name))
    fqn, meta = next(iter(config["config"].items()))
    meta["use_pickle"] = True
    buffer = io.BytesIO()
    torch.save(_OpensAFile(str(warm.markers / "unpickled")), buffer)
    forged = _rezip(program, {config_name: json.dumps(config).encode(),
                              config_name.rsplit("/", 1)[0] + "/" + meta["path_name"]: buffer.getvalue()})
    digest = _add_blob(blobs, forged)
    entries[key]["program"] = digest
    entries[key]["blobs"][0] = digest
    entries[warm.key("program-of-graph")] = {"program": digest, "blobs": [digest]}
    del entries[warm.key("compile")]  # so the compile loads the program (torch.export.load) instead of hitting
    return key


def _export_field(path: list[str], value: Any) -> Callable[[Warm, Entries, dict[str, bytes]], str]:
    def forge(warm: Warm, entries: Entries, blobs: dict[str, bytes]) -> str:
        key = warm.key("export")
        target = entries[key]
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
        return key
    return forge


def _without_compile(forge: Callable[[Warm, Entries, dict[str, bytes]], str]) -> Callable:
    """No compile entry: the compile then imports requires_imports and loads the program itself."""
    def without(warm: Warm, entries: Entries, blobs: dict[str, bytes]) -> str:
        key = forge(warm, entries, blobs)
        del entries[warm.key("compile")]
        return key
    return without


def _export_deps(lists: Any) -> Callable[[Warm, Entries, dict[str, bytes]], str]:
    def forge(warm: Warm, entries: Entries, blobs: dict[str, bytes]) -> str:
        key = warm.key("export-deps")
        entries[key] = {"lists": lists}
        return key
    return forge


EXPORT_CASES = {
    "pickled-weight-program": pickled_weight_program,
    "requires-imports-paths": _export_field(["interface", "requires_imports"],
                                            ["this", "aot-out.models.@mlp_dynamic.mlp_dynamic"]),
    "requires-imports-workspace-module": _without_compile(_export_field(["interface", "requires_imports"], ["m.evil"])),
    "requires-imports-stdlib": _export_field(["interface", "requires_imports"], ["this"]),
    "deps-packages-path": _export_field(["deps", "packages"], ["evil/stamp"]),
    "export-deps-absolute-file": _export_deps([{"files": ["/etc/hostname"], "packages": []}]),
    "export-deps-dev-zero": _export_deps([{"files": ["/dev/zero"], "packages": []}]),
    "export-deps-malformed": _export_deps([{"files": 5}]),
}


def _build(warm: Warm, tmp_path: Path, forge: Callable, where: str, server: ThreadingHTTPServer | None,
           args: list[str]) -> tuple[Path, dict[str, str], str, Any, Entries]:
    entries, blobs = copy.deepcopy(warm.entries), dict(warm.blobs)
    key = forge(warm, entries, blobs)
    ws = tmp_path / "client"
    shutil.copytree(warm.ws, ws, ignore=shutil.ignore_patterns("aot-out", "__pycache__", ".report.json"))
    cache = tmp_path / "client-cache"
    extra: list[str] = []
    if where == "local":
        _plant(cache, entries, blobs)
    else:
        assert server is not None
        server.ac, server.cas = _store(entries, blobs)  # type: ignore[attr-defined]
        extra = ["--remote-cache", f"http://127.0.0.1:{server.server_address[1]}/"]
    env = {"AOTBUILD_CACHE_DIR": str(cache)}
    before = warm.snapshot(ws)
    run = aotbuild([*args, *extra], ws, env)
    return ws, before, key, (run, env, extra), entries


def _check_clean(warm: Warm, ws: Path, before: dict[str, str], run: Any, key: str) -> None:
    assert run.code == 0, run.output
    assert "Traceback" not in run.output, run.output
    assert warm.snapshot(ws) == before, "a file outside aot-out/ changed, or code from the cache ran"
    warnings = [w for w in run.report.get("remote", {}).get("warnings", []) if key in w]
    assert len(warnings) == 1, (key, run.report.get("remote"), run.stderr)
    assert run.stderr.count(key) == 1, run.stderr


@pytest.mark.parametrize("where", ["remote", "local"])
@pytest.mark.parametrize("case", sorted(EXPORT_CASES))
def test_a_forged_export_entry_is_a_miss_with_one_warning(warm: Warm, tmp_path: Path, evil_server, case: str,
                                                          where: str) -> None:
    ws, before, key, (run, env, extra), entries = _build(warm, tmp_path, EXPORT_CASES[case], where, evil_server,
                                                         ["build", "//m:a"])
    _check_clean(warm, ws, before, run, key)
    if warm.key("compile") in entries:
        assert run.report["targets"] == {"//m:a": "artifact-cache hit"}  # exported here, the compile entry hit
        assert artifact_digests(ws) == warm.digests
    else:
        assert run.report["targets"] == {"//m:a": "compiled"}
    # A later build (no remote) finds everything in order; a leftover non-stamp in the stamps dir is skipped.
    (ws / "aot-out" / ".aotbuild" / "dists" / "evil" / "stamp").mkdir(parents=True, exist_ok=True)
    again = aotbuild(["build", "//m:a", "--remote-cache", ""], ws, env)
    assert again.code == 0 and "Traceback" not in again.output, again.output


def compile_file_fields(warm: Warm, entries: Entries, blobs: dict[str, bytes]) -> str:
    key = warm.key("compile")
    entries[key]["pt2"]["file"] = str(warm.outside / "one")
    entries[key]["so"]["file"] = "../" * 40 + str(warm.outside / "two").lstrip("/")
    return key


def compile_climbing_member(warm: Warm, entries: Entries, blobs: dict[str, bytes]) -> str:
    key = warm.key("compile")
    member = "model/data/aotinductor/model/" + "../" * 40 + str(warm.outside / "escaped").lstrip("/")
    forged = _rezip(blobs[entries[key]["pt2"]["sha256"]], {member: b"escaped\n"})
    digest = _add_blob(blobs, forged)
    entries[key]["pt2"] = {"sha256": digest, "size": len(forged)}
    entries[key]["blobs"][0] = digest
    return key


@pytest.mark.parametrize(("case", "where"), [("file-fields", "remote"), ("climbing-member", "remote"),
                                             ("climbing-member", "local")])
def test_a_forged_compile_entry_is_compiled_here_and_test_and_verify_touch_nothing_outside(
        warm: Warm, tmp_path: Path, evil_server, case: str, where: str) -> None:
    forge = compile_file_fields if case == "file-fields" else compile_climbing_member
    ws, before, key, (run, env, extra), _ = _build(warm, tmp_path, forge, where, evil_server, ["build", "//m:a"])
    _check_clean(warm, ws, before, run, key)
    assert run.report["targets"] == {"//m:a": "compiled"}
    manifest = json.loads((ws / "aot-out/m/@a/manifest.json").read_text())
    # The names are the local plan's (a-<digest>.so), never the entry's paths.
    assert {a["file"] for a in manifest["artifacts"].values()} == {Path(p).name for p in artifact_digests(ws)}
    for args in (["test", "//m:a", *extra], ["cache", "verify"]):
        after = aotbuild(args, ws, env)
        assert after.code == 0 and "Traceback" not in after.output, after.output
        assert warm.snapshot(ws) == before

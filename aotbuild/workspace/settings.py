"""The one place aotbuild reads environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aotbuild.errors import UserError

CACHE_DIR_VAR = "AOTBUILD_CACHE_DIR"
GPU_ARCH_VAR = "AOTBUILD_GPU_ARCH"  # the GPU arch CUDA artifacts are keyed for where none is visible (CPU-only CI)
# The CPU ISA this machine reports in its toolchain fingerprint instead of the one its CPU flags give: a client
# keying CPU artifacts for its build cluster's CPU family, or a test simulating a node with another CPU.
CPU_ISA_VAR = "AOTBUILD_CPU_ISA"
# Where export and compile misses run (executors/): a ray://HOST:PORT cluster; the CLI reads it (after
# --executor), and tells its actions the socket of its broker instead (EXECUTOR_SOCKET_VAR).
EXECUTOR_VAR = "AOTBUILD_EXECUTOR"
EXECUTOR_SOCKET_VAR = "AOTBUILD_EXECUTOR_SOCKET"
EXECUTOR_REQUIRED_VAR = "AOTBUILD_EXECUTOR_REQUIRED"  # "1": an action the cluster could not run fails the build
EXECUTOR_DEADLINE_VAR = "AOTBUILD_EXECUTOR_DEADLINE"  # seconds one cluster attempt may take before it is retried
CACHE_READONLY_VAR = "AOTBUILD_CACHE_READONLY"  # set by the CLI when the cache cannot be written
EVENTS_VAR = "AOTBUILD_EVENTS"  # set by the CLI so actions can report what they did; unset under plain ninja
# "0": each action in a process of its own (--no-workers); else warm workers. Read by aotbuild.workers.client,
# which imports nothing of aotbuild and so names it itself; a test keeps the two equal.
WORKERS_VAR = "AOTBUILD_WORKERS"
WORKER_PID_VAR = "AOTBUILD_WORKER_PID"  # set by a warm worker in each action it forks: its own pid, for reports
# The remote cache, as the CLI resolved it (remote_url) and exported it, with its policies, to the actions.
REMOTE_VAR = "AOTBUILD_REMOTE_CACHE"
REMOTE_UPLOAD_VAR = "AOTBUILD_REMOTE_UPLOAD"
REMOTE_REQUIRED_VAR = "AOTBUILD_REMOTE_REQUIRED"
# Credentials for an HTTP remote (else ~/.netrc, or $NETRC); S3 uses boto3's own chain (AWS_* variables,
# ~/.aws, instance roles). Never copied into any message, report or log.
REMOTE_TOKEN_VAR = "AOTBUILD_REMOTE_TOKEN"
REMOTE_USER_VAR = "AOTBUILD_REMOTE_USER"
REMOTE_PASSWORD_VAR = "AOTBUILD_REMOTE_PASSWORD"
S3_ENDPOINT_VAR = "AOTBUILD_S3_ENDPOINT"  # an S3-compatible store (MinIO, moto); boto3 also reads AWS_ENDPOINT_URL
# Limits on each remote request: seconds for the whole answer, and bytes for a blob whose entry declares no size.
REMOTE_DEADLINE_VAR = "AOTBUILD_REMOTE_DEADLINE"
REMOTE_MAX_BLOB_VAR = "AOTBUILD_REMOTE_MAX_BLOB"
# Signed action entries (cache/signing.py): CI signs what it uploads with the private key (text, or a file); a
# machine that lists public keys accepts only remote entries signed by one of them.
SIGNING_KEY_VAR = "AOTBUILD_SIGNING_KEY"
SIGNING_KEY_FILE_VAR = "AOTBUILD_SIGNING_KEY_FILE"
VERIFY_KEYS_VAR = "AOTBUILD_REMOTE_VERIFY_KEYS"
# "0": no cache pass in the CLI (engine/cache_hits.py): every hit runs its action process.
CACHE_PASS_VAR = "AOTBUILD_CACHE_PASS"
# "0": every build runs ninja, even where the no-op stamp (engine/noop_stamp.py) proves it would run nothing.
NOOP_STAMP_VAR = "AOTBUILD_NOOP_STAMP"
# Variables that change what inductor generates, so they belong in the artifact key.
TOOLCHAIN_PREFIXES = ("TORCHINDUCTOR_", "AOT_INDUCTOR_", "AOTI_", "TORCH_COMPILE_")
TOOLCHAIN_VARS = ("CXX", "CC", "CUDA_HOME", "TORCH_CUDA_ARCH_LIST")
# Inductor variables that only move files around or change logging; keying on them would split the cache.
NOT_IN_KEY = ("TORCHINDUCTOR_CACHE_DIR", "TORCHINDUCTOR_FX_GRAPH_CACHE", "TORCHINDUCTOR_AUTOGRAD_CACHE",
              "TORCH_COMPILE_DEBUG_DIR", "TORCHINDUCTOR_COMPILE_THREADS", "AOTI_RUNTIME_CHECK_INPUTS")


def environ() -> Mapping[str, str]:
    return os.environ


def cache_dir(env: Mapping[str, str], flag: str | None, workspace_setting: str | None, root: Path) -> Path:
    """Precedence: --cache-dir, AOTBUILD_CACHE_DIR, WORKSPACE.aot.yaml's cache.dir, then the XDG cache home."""
    if flag or env.get(CACHE_DIR_VAR):
        return Path(flag or env[CACHE_DIR_VAR]).expanduser().resolve()
    if workspace_setting:
        return (root / Path(workspace_setting).expanduser()).resolve()
    return (Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aotbuild").resolve()


def declared_gpu_arch(env: Mapping[str, str]) -> str | None:
    """A compute capability such as '9.0', or several comma-separated; None when not declared."""
    return ",".join(sorted(a.strip() for a in env.get(GPU_ARCH_VAR, "").split(",") if a.strip())) or None


def declared_cpu_isa(env: Mapping[str, str]) -> str | None:
    return env.get(CPU_ISA_VAR, "").strip() or None


def executor_url(env: Mapping[str, str], flag: str | None, workspace_setting: str | None) -> str | None:
    """--executor (empty turns it off), then AOTBUILD_EXECUTOR, then WORKSPACE's executor."""
    return (flag if flag is not None else env.get(EXECUTOR_VAR, workspace_setting)) or None


def executor_deadline(env: Mapping[str, str]) -> float:
    return _positive(env, EXECUTOR_DEADLINE_VAR, 3600.0)


def executor_socket(env: Mapping[str, str]) -> Path | None:
    value = env.get(EXECUTOR_SOCKET_VAR)
    return Path(value) if value else None


def executor_required(env: Mapping[str, str]) -> bool:
    return env.get(EXECUTOR_REQUIRED_VAR) == "1"


def events_file(env: Mapping[str, str]) -> Path | None:
    value = env.get(EVENTS_VAR)
    return Path(value) if value else None


def toolchain_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(env.items())
            if (k.startswith(TOOLCHAIN_PREFIXES) or k in TOOLCHAIN_VARS) and k not in NOT_IN_KEY}


def worker_pid(env: Mapping[str, str]) -> int | None:
    value = env.get(WORKER_PID_VAR)
    return int(value) if value and value.isdigit() else None


def cache_read_only(env: Mapping[str, str]) -> bool:
    return env.get(CACHE_READONLY_VAR) == "1"


@dataclass(frozen=True, repr=False)  # the default object repr: nothing of the secrets
class RemoteSettings:
    """What an action needs to reach the remote cache."""

    url: str
    upload: bool
    required: bool
    token: str | None = None
    user: str | None = None
    password: str | None = None
    netrc: Path | None = None
    s3_endpoint: str | None = None
    deadline_s: float = 600.0
    max_blob_bytes: int = 4 << 30
    signing_key: str | None = None
    signing_key_file: Path | None = None
    verify_keys: tuple[str, ...] = ()


def remote_url(env: Mapping[str, str], flag: str | None, workspace_setting: str | None) -> str | None:
    """--remote-cache (empty turns the remote off), then AOTBUILD_REMOTE_CACHE, then WORKSPACE's cache.remote."""
    return (flag if flag is not None else env.get(REMOTE_VAR, workspace_setting)) or None


def remote_settings(env: Mapping[str, str]) -> RemoteSettings | None:
    """The remote an action uses, as the CLI exported it; None when there is none."""
    url = env.get(REMOTE_VAR)
    if not url:
        return None
    home = env.get("HOME")
    netrc = env.get("NETRC") or (str(Path(home) / ".netrc") if home else None)
    key_file = env.get(SIGNING_KEY_FILE_VAR)
    return RemoteSettings(url=url, upload=env.get(REMOTE_UPLOAD_VAR) == "1",
                          required=env.get(REMOTE_REQUIRED_VAR) == "1",
                          token=env.get(REMOTE_TOKEN_VAR) or None, user=env.get(REMOTE_USER_VAR) or None,
                          password=env.get(REMOTE_PASSWORD_VAR) or None, netrc=Path(netrc) if netrc else None,
                          s3_endpoint=env.get(S3_ENDPOINT_VAR) or None,
                          deadline_s=_positive(env, REMOTE_DEADLINE_VAR, RemoteSettings.deadline_s),
                          max_blob_bytes=int(_positive(env, REMOTE_MAX_BLOB_VAR, RemoteSettings.max_blob_bytes)),
                          signing_key=env.get(SIGNING_KEY_VAR) or None,
                          signing_key_file=Path(key_file).expanduser() if key_file else None,
                          verify_keys=tuple(env.get(VERIFY_KEYS_VAR, "").replace(",", " ").split()))


def _positive(env: Mapping[str, str], var: str, default: float) -> float:
    text = env.get(var, "").strip()
    if not text:
        return default
    try:
        if float(text) > 0:  # NaN is not
            return float(text)
    except ValueError:
        pass
    raise UserError(f"{var}={text[:40]!r}: expected a positive number\n  fix: set it to e.g. 600, or unset it")


def remote_down_file(events: Path) -> Path:
    """Touched by the first action that finds the remote failing, so the build's other actions skip it."""
    return events.with_name(events.name + ".remote-down")


def remote_failed_file(events: Path) -> Path:
    """Blobs the remote failed to deliver in this build, one digest a line (cache/layered.py)."""
    return events.with_name(events.name + ".remote-failed")


def clear_remote_marks(events: Path) -> None:
    """A new build asks the remote afresh."""
    remote_down_file(events).unlink(missing_ok=True)
    remote_failed_file(events).unlink(missing_ok=True)


def remote_env(url: str | None, upload: bool, required: bool, verify_keys: tuple[str, ...] = ()) -> dict[str, str]:
    """The variables the CLI passes to actions (an empty URL overrides one inherited from the user). The public
    keys of WORKSPACE.aot.yaml's cache.verify_keys apply unless the user's environment lists its own."""
    env = {REMOTE_VAR: url or "", REMOTE_UPLOAD_VAR: str(int(upload)), REMOTE_REQUIRED_VAR: str(int(required))}
    if verify_keys and not environ().get(VERIFY_KEYS_VAR):
        env[VERIFY_KEYS_VAR] = " ".join(verify_keys)
    return env


def switched_on(var: str) -> bool:
    """A switch such as AOTBUILD_CACHE_PASS: on unless set to "0"."""
    return environ().get(var, "1") != "0"

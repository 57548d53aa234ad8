"""A remote cache in an S3 bucket (or any S3-compatible store): <prefix>/ac/<key> and <prefix>/cas/<sha256>.

Needs boto3 (`pip install 'aotbuild[s3]'`); credentials come from boto3's usual chain and never reach a message.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from aotbuild.cache import remote_url
from aotbuild.cache.signing import Signer, Verifier
from aotbuild.cache.store import (
    IntegrityError,
    Kind,
    RemoteError,
    check_hex,
    copy_stream,
    decode_action,
    encode_action,
    verified_download,
)
from aotbuild.errors import UserError

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
MAX_ATTEMPTS = 3  # botocore's count includes the first try
MAX_ACTION_BYTES = 16 << 20
DEADLINE_S = 600.0  # per download, whole body included
MAX_BLOB_BYTES = 4 << 30  # a blob whose entry declares no size


class S3Store:
    def __init__(self, url: str, *, endpoint: str | None = None, client: Any = None, deadline: float = DEADLINE_S,
                 max_blob_bytes: int = MAX_BLOB_BYTES, signer: Signer | None = None,
                 verifier: Verifier | None = None) -> None:
        """`client`: an existing boto3 S3 client to share (building one reads botocore's models: ~0.5 s)."""
        try:
            parts = remote_url.parse(url)
        except remote_url.BadUrl as e:
            raise UserError(f"{e}; expected s3://bucket/prefix") from None
        if parts.scheme != "s3":
            raise UserError(f"remote cache {parts.redacted}: expected s3://bucket/prefix")
        self._deadline, self._max_blob = deadline, max_blob_bytes
        self._signer, self._verifier = signer, verifier
        try:
            import boto3
            import boto3.exceptions
            import botocore.config
            import botocore.exceptions
        except ImportError:
            raise UserError("an s3:// remote cache needs boto3\n  fix: pip install 'aotbuild[s3]'") from None
        self._errors = botocore.exceptions
        self._upload_failed = boto3.exceptions.S3UploadFailedError
        self.bucket = parts.host
        self.prefix = parts.path.strip("/")
        self.name = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        config = botocore.config.Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                                        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"})
        if client is None:
            session = boto3.session.Session()
            client = session.client("s3", endpoint_url=endpoint, config=config,
                                    region_name=session.region_name or "us-east-1")
        self._client = client
        self.counters = {"requests": 0, "bytes_down": 0, "bytes_up": 0}

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}/{kind}/{key}" if self.prefix else f"{kind}/{key}"

    def get_blob(self, digest: str, dest: Path, limit: int | None = None) -> bool:
        key = self._key("cas", check_hex("digest", digest))
        limit = self._max_blob if limit is None else min(limit, self._max_blob)
        response = self._call("GET", key, lambda: self._client.get_object(Bucket=self.bucket, Key=key))
        if response is None:
            return False
        body = response["Body"]
        expected = response.get("ContentLength")
        if isinstance(expected, int) and expected > limit:
            body.close()
            raise IntegrityError(f"remote cache {self.name}: GET {key} announced {expected} bytes, more than the "
                                 f"{limit} expected; not downloaded")
        # The read timeout bounds each read, not the body: closing it at the deadline ends a trickle.
        watchdog = threading.Timer(self._deadline, body.close)
        watchdog.daemon = True
        watchdog.start()
        try:
            with verified_download(dest, digest, self.name, limit) as out:
                try:
                    n = self._copy(body, out, key)
                finally:
                    if watchdog.finished.is_set():  # the body was closed under the copy: a deadline, not a cut
                        raise RemoteError(f"remote cache {self.name}: GET {key} got no complete answer within "
                                          f"{self._deadline:g} s")
                if expected is not None and n != expected:
                    raise IntegrityError(f"remote cache {self.name}: GET {key} was cut off after {n} of {expected} bytes")
        finally:
            watchdog.cancel()
            body.close()
        return True

    def _copy(self, body: Any, out: Any, key: str) -> int:
        try:
            n = copy_stream(body, out)
        except IntegrityError:
            raise
        except Exception as e:  # botocore, urllib3 and socket errors alike: a body that did not arrive whole
            raise IntegrityError(f"remote cache {self.name}: GET {key} was cut off: {type(e).__name__}") from None
        self.counters["bytes_down"] += n
        return n

    def put_blob(self, digest: str, src: Path) -> None:
        key = self._key("cas", check_hex("digest", digest))
        # upload_file streams from disk, in parts for large files.
        self._call("PUT", key, lambda: self._client.upload_file(str(src), self.bucket, key))
        self.counters["bytes_up"] += src.stat().st_size

    def get_action(self, key: str) -> dict[str, Any] | None:
        return self._get_action(key, self._verifier)

    def _get_action(self, key: str, verifier: Verifier | None) -> dict[str, Any] | None:
        name = self._key("ac", check_hex("key", key))
        response = self._call("GET", name, lambda: self._client.get_object(Bucket=self.bucket, Key=name))
        if response is None:
            return None
        body = response["Body"]
        try:
            raw = body.read(MAX_ACTION_BYTES + 1)
        except Exception as e:  # botocore, urllib3 and socket errors alike
            raise RemoteError(f"remote cache {self.name}: GET {name} was cut off: {type(e).__name__}") from None
        finally:
            body.close()
        self.counters["bytes_down"] += len(raw)
        if len(raw) > MAX_ACTION_BYTES:
            raise IntegrityError(f"remote cache {self.name}: GET {name} is larger than an action entry can be")
        return decode_action(key, raw, self.name, verifier)

    def put_action(self, key: str, value: dict[str, Any]) -> None:
        name = self._key("ac", check_hex("key", key))
        body = encode_action(key, value, self._signer)
        self._call("PUT", name, lambda: self._client.put_object(Bucket=self.bucket, Key=name, Body=body))
        self.counters["bytes_up"] += len(body)

    def contains(self, kind: Kind, key: str) -> bool:
        if kind == "ac" and self._signer is not None:
            # A signing uploader overwrites an entry it did not sign (older, unsigned): readers would refuse it.
            try:
                return self._get_action(key, self._signer.verifier()) is not None
            except IntegrityError:
                return False
        name = self._key(kind, check_hex("key", key))
        return self._call("HEAD", name, lambda: self._client.head_object(Bucket=self.bucket, Key=name)) is not None

    def stats(self) -> dict[str, Any]:
        return {"url": self.name, **self.counters}

    def _call(self, method: str, key: str, op: Any) -> Any:
        """Run one S3 call; a missing object is None, any other failure a RemoteError without secrets."""
        self.counters["requests"] += 1
        try:
            return op()
        except self._errors.ClientError as e:
            error = e.response.get("Error", {})
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or error.get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise RemoteError(f"remote cache {self.name}: {method} {key} failed: {error.get('Code', status)} "
                              f"{error.get('Message', '')}".rstrip()) from None
        except (self._errors.BotoCoreError, self._upload_failed, OSError) as e:
            # Covers connection failures, timeouts and missing credentials (NoCredentialsError).
            raise RemoteError(f"remote cache {self.name}: {method} {key} failed: {type(e).__name__}: {e}") from None
        except Exception as e:
            # Anything else the client raises (a RecursionError from a redirect loop, a parser's ValueError) is
            # the remote's failure too, never the build's; its text is left out, it may quote the request.
            raise RemoteError(f"remote cache {self.name}: {method} {key} failed: {type(e).__name__}") from None

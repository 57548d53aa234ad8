"""A remote cache in an S3 bucket (or any S3-compatible store), through boto3 and its credential chain."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from aotbuild.cache.remote import DEADLINE_S, MAX_BLOB_BYTES, RemoteStore, Sink, parse
from aotbuild.cache.signing import Signer, Verifier
from aotbuild.cache.store import RemoteError
from aotbuild.errors import UserError

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
MAX_ATTEMPTS = 3  # botocore's count includes the first try


class S3Store(RemoteStore):
    def __init__(self, url: str, *, endpoint: str | None = None, client: Any = None, deadline: float = DEADLINE_S,
                 max_blob_bytes: int = MAX_BLOB_BYTES, signer: Signer | None = None,
                 verifier: Verifier | None = None) -> None:
        """`client`: an existing boto3 S3 client to share (building one reads botocore's models: ~0.5 s)."""
        super().__init__(deadline, max_blob_bytes, signer, verifier)
        try:
            parts = parse(url)
        except ValueError as e:
            raise UserError(f"{e}; expected s3://bucket/prefix") from None
        if parts.scheme != "s3":
            raise UserError(f"remote cache {parts.redacted}: expected s3://bucket/prefix")
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
        prefix = parts.path.strip("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self.name = f"s3://{self.bucket}/{prefix}".rstrip("/")
        if client is None:
            config = botocore.config.Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                                            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"})
            session = boto3.session.Session()
            client = session.client("s3", endpoint_url=endpoint, config=config,
                                    region_name=session.region_name or "us-east-1")
        self._client = client

    def _get(self, path: str, limit: int, sink: Sink) -> bool:
        response = self._call("GET", path, lambda: self._client.get_object(Bucket=self.bucket, Key=path))
        if response is None:
            return False
        body = response["Body"]
        # The read timeout bounds each read, not the body: closing it at the deadline ends a trickle.
        watchdog = threading.Timer(self._deadline, body.close)
        watchdog.daemon = True
        watchdog.start()
        try:
            with sink() as out:
                self._receive(body, response.get("ContentLength"), out, limit, f"GET {path}", watchdog.finished.is_set)
        finally:
            watchdog.cancel()
            body.close()
        return True

    def _put(self, path: str, body: Path | bytes, size: int) -> None:
        if isinstance(body, Path):  # upload_file streams from disk, in parts for large files
            self._call("PUT", path, lambda: self._client.upload_file(str(body), self.bucket, path))
        else:
            self._call("PUT", path, lambda: self._client.put_object(Bucket=self.bucket, Key=path, Body=body))
        self.counters["bytes_up"] += size

    def _head(self, path: str) -> bool:
        return self._call("HEAD", path, lambda: self._client.head_object(Bucket=self.bucket, Key=path)) is not None

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

"""Multipart uploads of large bodies, part by part, through botocore's S3 client.

obstore 0.12 uploads a multipart body in one call (`obstore.put(use_multipart=True)`):
it exposes no upload id and no part, retries nothing itself once `max_retries` is 0, and
on any failure sends AbortMultipartUpload and reports *that* request's error. A
PutObject-only key may not abort, so one transient fault on one part came back as the
abort's 403 and held the destination with "Access denied … need s3:PutObject". Here each
part is its own request: a transient failure retries that part alone, with the delivery
policy's backoff (`MultipartOptions.part_delay`); an upload that fails for good is
aborted where the key may, and an abort that is refused is recorded as an orphan
(`OrphanedUpload`), never diagnosed.

botocore and not a hand-written signer: it signs (SigV4), parses S3's XML, resolves each
partition's endpoints and speaks through proxies. Its ~2 ms of CPU per request does not
matter for parts of megabytes; the small-object hot path stays on obstore (s3/writer.py).

Restart, not resume: an attempt that fails for good leaves nothing to continue from (the
upload is aborted, or recorded as an orphan for the bucket's lifecycle rule to remove);
the message's next attempt starts a new upload from its first part. Resuming would need
ListParts (s3:ListMultipartUploadParts, which a PutObject-only key lacks) or the parts'
ETags stored, and re-reading the stored body up to the first missing part anyway.
"""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from s3dest.errors import DeliveryError, OrphanedUpload, TransientDeliveryError
from s3dest.s3 import reply_text
from s3dest.s3.diagnosis import Target, diagnose

# S3's smallest part: memory per upload is what matters here (a 2 GiB request is 410
# parts, far from S3's 10,000), and 5 MiB parts are within 5% of 8 MiB ones in time.
PART_SIZE = 5 * 1024 * 1024
# Parts in flight per upload. Memory of one upload: PART_SIZE × (this + 1), the part being
# cut included, and botocore's S3 client (~13 MB, once per process). With 4 parts of
# 8 MiB, a 200 MiB message took the server from 187 MB to 269 MB peak RSS; with 2 of
# 5 MiB, see tests/integration/test_large_messages.py.
PART_CONCURRENCY = 2
PART_ATTEMPTS = 4  # per part, within one attempt of the message


def _default_delay(attempt: int) -> float:
    # The delivery policy's default (retry_base_seconds 0.5, full jitter); the worker
    # passes its own policy's `next_delay`.
    return random.uniform(0.0, min(8.0, 0.5 * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class MultipartOptions:
    """How large bodies go up: part size, parts in flight, and per-part retries."""

    part_size: int = PART_SIZE
    concurrency: int = PART_CONCURRENCY
    part_attempts: int = PART_ATTEMPTS
    part_delay: Callable[[int], float] = field(default=_default_delay, compare=False)


@dataclass(frozen=True, slots=True)
class Uploaded:
    etag: str | None
    version: str | None
    already_present: bool = False  # create-only: the key exists (412 on Complete)
    orphan: OrphanedUpload | None = None


@dataclass(frozen=True, slots=True)
class _Part:
    number: int
    etag: str
    md5: bytes


class _Failed(Exception):
    """A part failed for good; `error` is its classified error."""

    def __init__(self, error: DeliveryError) -> None:
        super().__init__(error.message)
        self.error = error


def classify(exc: BaseException, target: Target) -> DeliveryError:
    """A botocore failure as s3dest's error, with the same diagnoses as the small path."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        headers = meta.get("HTTPHeaders", {}) or {}
        status = meta.get("HTTPStatusCode")
        code = str(error.get("Code") or "") or None
        if code is not None and code.isdigit():  # botocore's stand-in for a missing code
            code = None
        text = f"<Message>{error.get('Message') or ''}</Message>"
        if error.get("Region"):
            text += f"<Region>{error['Region']}</Region>"
        return diagnose(
            status=status,
            s3_code=code,
            text=text,
            target=target,
            region_header=headers.get("x-amz-bucket-region"),
        )
    if isinstance(exc, BotoCoreError):
        # Connection refused or reset, timeouts, a proxy that did not answer.
        where = f"endpoint {target.endpoint_url}" if target.endpoint_url else "S3"
        return TransientDeliveryError(
            f"could not reach {where} ({reply_text.message(str(exc), 200)}); retrying",
            s3_code=None,
            status=None,
        )
    return TransientDeliveryError(
        f"a large body could not be uploaded ({type(exc).__name__}); retrying",
        s3_code=None,
        status=None,
    )


def body_parts(body: bytes | Path | Iterator[bytes], size: int) -> Iterator[bytes | bytearray]:
    """The body cut into parts of `size` bytes (the last one shorter); at least one part."""
    if isinstance(body, bytes):
        for start in range(0, max(1, len(body)), size):
            yield body[start : start + size]
        return
    if isinstance(body, Path):
        with body.open("rb") as source:
            first = True
            while (part := source.read(size)) or first:
                first = False
                yield part
        return
    # Each chunk is copied once, into the part it belongs to, and dropped: a part in the
    # making costs its own size, not its size twice (chunks kept, then joined).
    buf = bytearray(size)
    have = 0
    sent = False
    for chunk in body:
        with memoryview(chunk) as view:
            start = 0
            while start < len(view):
                take = min(size - have, len(view) - start)
                buf[have : have + take] = view[start : start + take]
                have += take
                start += take
                if have == size:
                    sent = True
                    yield buf
                    buf, have = bytearray(size), 0
    if have or not sent:
        del buf[have:]
        yield buf


class Upload:
    """One multipart upload of one object (blocking; parts go up on a small pool)."""

    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        key: str,
        create_args: dict[str, Any],
        create_only: bool,
        target: Target,
        options: MultipartOptions,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.create_args = create_args
        self.create_only = create_only
        self.target = target
        self.options = options
        self._stop = threading.Event()  # a part failed for good: the others give up

    def run(self, body: bytes | Path | Iterator[bytes]) -> Uploaded:
        try:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, **self.create_args
            )
        except Exception as exc:  # nothing was started: nothing to abort
            raise classify(exc, self.target) from None
        upload_id: str = created["UploadId"]
        try:
            parts = self._send_parts(upload_id, body)
            return self._complete(upload_id, parts)
        except BaseException as exc:
            error = exc.error if isinstance(exc, _Failed) else classify(exc, self.target)
            error.orphan = self.abort(upload_id, error)
            raise error from None

    # -- parts -----------------------------------------------------------------------------

    def _send_parts(self, upload_id: str, body: bytes | Path | Iterator[bytes]) -> list[_Part]:
        done: list[_Part] = []
        in_flight: deque[Future[_Part]] = deque()
        pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="s3dest-part")
        parts = enumerate(body_parts(body, self.options.part_size), 1)
        try:
            while True:
                # A slot first, then the next part: no part waits in memory for a slot.
                while len(in_flight) >= self.options.concurrency:
                    done.append(in_flight.popleft().result())
                item = next(parts, None)
                if item is None:
                    break
                in_flight.append(pool.submit(self._send_part, upload_id, *item))
                del item
            while in_flight:
                done.append(in_flight.popleft().result())
        finally:
            if in_flight:  # a part failed, or reading the body did: stop the others
                self._stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
        return done

    def _send_part(self, upload_id: str, number: int, data: bytes | bytearray) -> _Part:
        md5 = hashlib.md5(data).digest()
        attempt = 0
        while True:
            attempt += 1
            try:
                reply = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    # S3 and RGW check it: a part corrupted on the way is refused (BadDigest)
                    # and sent again, not stored.
                    ContentMD5=base64.b64encode(md5).decode(),
                )
            except Exception as exc:
                error = classify(exc, self.target)
                if (
                    error.kind != "transient"
                    or attempt >= self.options.part_attempts
                    or self._stop.is_set()
                ):
                    raise _Failed(error) from None
                if self._stop.wait(self.options.part_delay(attempt)):
                    raise _Failed(error) from None
                continue
            etag = reply_text.etag(reply.get("ETag") or None) or f'"{md5.hex()}"'
            return _Part(number, etag, md5)

    # -- the end ---------------------------------------------------------------------------

    def _complete(self, upload_id: str, parts: list[_Part]) -> Uploaded:
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if self.create_only else {}
        attempt = 0
        while True:
            attempt += 1
            try:
                reply = self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"ETag": p.etag, "PartNumber": p.number} for p in parts]
                    },
                    **extra,
                )
                break
            except Exception as exc:
                if _status(exc) == 412 and self.create_only:
                    # The key exists: the parts are not needed; say so the way a PUT does.
                    orphan = self.abort(upload_id, None)
                    return Uploaded(None, None, already_present=True, orphan=orphan)
                error = classify(exc, self.target)
                if error.kind != "transient" or attempt >= self.options.part_attempts:
                    raise _Failed(error) from None
                self._stop.wait(self.options.part_delay(attempt))
        # RGW answers with an empty <ETag/>; HEAD would need s3:GetObject. S3's multipart
        # ETag is the MD5 of the parts' MD5s and their count: the same value, computed.
        etag = reply_text.etag(reply.get("ETag") or None) or (
            f'"{hashlib.md5(b"".join(p.md5 for p in parts)).hexdigest()}-{len(parts)}"'
        )
        return Uploaded(etag, reply_text.version_id(reply.get("VersionId") or None))

    def abort(self, upload_id: str, cause: DeliveryError | None) -> OrphanedUpload | None:
        """Abort where the key may; otherwise the upload is an orphan (its parts stay, and
        are billed, until a lifecycle rule removes them). The abort's own error is only
        ever the orphan's reason, never the diagnosis of the destination."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
            return None
        except Exception as exc:
            refused = classify(exc, self.target)
            why = refused.s3_code or (f"HTTP {refused.status}" if refused.status else "no answer")
            return OrphanedUpload(
                bucket=self.bucket,
                key=self.key,
                upload_id=upload_id,
                reason=(
                    f"AbortMultipartUpload failed ({why}) after "
                    + (cause.s3_code or "an error" if cause else "a create-only collision")
                ),
            )


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None

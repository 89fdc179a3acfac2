"""Every call Sluice makes to the usage exports' bucket, through boto3, and nothing else.

Objects are written once: each write carries ``If-None-Match: *`` (``IfNoneMatch="*"``), so S3
refuses it (412) when the key already holds an object, and nothing Sluice wrote is ever
replaced. A gzip object is streamed: CSV text goes through zlib in chunks, and the compressed
bytes up to S3 in one PutObject while they stay under
``SLUICE_EXPORT_MULTIPART_THRESHOLD_BYTES``, in parts of ``SLUICE_EXPORT_PART_SIZE_BYTES``
once they pass it; at most one part is held in memory. Its size and SHA-256 are counted as it
goes, for the manifest.

Credentials are boto3's own chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, the
instance's role). Download links are pre-signed GETs, made locally (no call to S3).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import zlib
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

GZIP_CONTENT_TYPE = "application/gzip"
JSON_CONTENT_TYPE = "application/json"
# zlib's window bits for a gzip stream (a header and trailer around deflate): its header's
# time is 0 and it names no file, so the same rows always give the same bytes and hash.
GZIP_WBITS = 16 + zlib.MAX_WBITS
READ_BLOCK = 1024 * 1024

# What an S3 call may raise: a refusal (ClientError) or no answer (BotoCoreError).
StoreError = (BotoCoreError, ClientError)


@dataclass(frozen=True)
class StoredObject:
    key: str
    bytes: int
    sha256: str  # of the bytes as stored, hex


class ObjectExists(Exception):
    """The key already holds an object (S3 answered 412 to If-None-Match: *)."""

    def __init__(self, key: str, attempted: StoredObject) -> None:
        super().__init__(f"{key} already exists: objects are written once")
        self.key = key
        self.attempted = attempted  # what this write would have stored


def store_configured() -> bool:
    return bool(settings.SLUICE_EXPORT_BUCKET)


def s3_client():
    """The client of the configured endpoint and region: one per process (boto3's clients are
    safe to share between threads, and making one costs more than a request)."""
    return _client(settings.SLUICE_EXPORT_ENDPOINT_URL or None, settings.SLUICE_EXPORT_REGION)


@functools.cache
def _client(endpoint: str | None, region: str):
    config = Config(
        signature_version="s3v4",
        # Path-style on an endpoint of our own (no wildcard DNS for bucket names there).
        s3={"addressing_style": "path" if endpoint else "auto"},
        retries={"mode": "standard", "max_attempts": 3},
    )
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def put_once(client, *, bucket: str, key: str, body: bytes, content_type: str) -> StoredObject:
    """Write ``body`` at ``key`` unless the key holds an object already (``ObjectExists``)."""
    stored = StoredObject(key=key, bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
    try:
        client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*"
        )
    except ClientError as error:
        _raise_if_exists(error, stored)
        raise
    return stored


def _raise_if_exists(error: ClientError, attempted: StoredObject) -> None:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status == 412 or error.response.get("Error", {}).get("Code") == "PreconditionFailed":
        raise ObjectExists(attempted.key, attempted) from error


class GzipObjectWriter:
    """One gzip object, written as it is produced: ``add`` text, then ``close``.

    The compressed bytes are buffered; once the buffer passes the multipart threshold a
    multipart upload begins and every full part is sent as it fills. ``close`` sends what is
    left (in one PutObject if no upload began) and completes the upload with If-None-Match, so
    the object appears whole or not at all. A failure aborts the upload (no parts are left
    behind to pay for)."""

    def __init__(self, client, *, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.threshold = settings.SLUICE_EXPORT_MULTIPART_THRESHOLD_BYTES
        self.part_size = settings.SLUICE_EXPORT_PART_SIZE_BYTES
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, GZIP_WBITS)
        self.buffer = bytearray()
        self.digest = hashlib.sha256()
        self.size = 0
        self.upload_id: str | None = None
        self.parts: list[dict] = []

    @property
    def multipart(self) -> bool:
        return self.upload_id is not None

    def add(self, text: str) -> None:
        try:
            self._take(self.compressor.compress(text.encode()))
        except BaseException:
            self.abort()
            raise

    def close(self) -> StoredObject:
        try:
            self._take(self.compressor.flush())
            stored = StoredObject(key=self.key, bytes=self.size, sha256=self.digest.hexdigest())
            if not self.multipart:
                put_once(
                    self.client,
                    bucket=self.bucket,
                    key=self.key,
                    body=bytes(self.buffer),
                    content_type=GZIP_CONTENT_TYPE,
                )
            else:
                self._send_part(bytes(self.buffer))
                self._complete(stored)
        except BaseException:
            self.abort()
            raise
        return stored

    def abort(self) -> None:
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        # Should this fail too, the bucket's lifecycle rule for incomplete uploads sweeps it.
        with contextlib.suppress(*StoreError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)

    def _take(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.buffer += data
        if not self.multipart and len(self.buffer) > self.threshold:
            self.upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=GZIP_CONTENT_TYPE
            )["UploadId"]
        if self.multipart:
            while len(self.buffer) >= self.part_size:
                self._send_part(bytes(self.buffer[: self.part_size]))
                del self.buffer[: self.part_size]

    def _send_part(self, data: bytes) -> None:
        if not data and self.parts:
            return  # the last full part was the end
        number = len(self.parts) + 1
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def _complete(self, stored: StoredObject) -> None:
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
                IfNoneMatch="*",
            )
        except ClientError as error:
            _raise_if_exists(error, stored)
            raise
        self.upload_id = None  # complete: nothing to abort


def stored_sha256(client, *, bucket: str, key: str) -> str:
    """The SHA-256 of the object at ``key``, read through in blocks."""
    digest = hashlib.sha256()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for block in iter(lambda: body.read(READ_BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()


def download_url(client, *, bucket: str, key: str, filename: str) -> str:
    """A pre-signed GET of the object, valid ``SLUICE_EXPORT_URL_EXPIRY_SECONDS``, that saves
    it as ``filename``."""
    return client.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        },
        ExpiresIn=settings.SLUICE_EXPORT_URL_EXPIRY_SECONDS,
    )

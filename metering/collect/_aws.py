"""The only module that imports boto3.

Clients come from the standard boto3 chain: ``AWS_ENDPOINT_URL`` (and the per-service
``AWS_ENDPOINT_URL_S3`` etc.), profiles, instance roles. Errors are re-raised as
``InputError`` with the bucket/key or table and AWS's error code, never with credentials.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from functools import cache
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from metering.collect.files import InputObject
from metering.errors import InputError

_RETRIES = BotoConfig(retries={"max_attempts": 10, "mode": "adaptive"}, max_pool_connections=32)
_lock = threading.Lock()


@cache
def client(service: str, region: str | None = None) -> Any:
    """A shared, thread-safe boto3 client for ``service``."""
    with _lock:
        session = boto3.session.Session()
        return session.client(service, region_name=region, config=_RETRIES)


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix)."""
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InputError(f"{uri}: an S3 URI needs a bucket, e.g. s3://my-bucket/prefix")
    return bucket, prefix


def _explain(uri: str, exc: Exception) -> InputError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        message = error.get("Message", "")
        return InputError(f"{uri}: AWS refused the request ({code}): {message}")
    return InputError(f"{uri}: cannot reach AWS: {type(exc).__name__}: {exc}")


def list_objects(root: str, keep: Callable[[str], bool]) -> list[InputObject]:
    """All objects under an ``s3://bucket/prefix``, paginated."""
    bucket, prefix = split_s3(root)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    found = []
    try:
        paginator = client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                if name and not name.endswith("/") and keep(name):
                    found.append(
                        InputObject(
                            f"s3://{bucket}/{item['Key']}",
                            name,
                            int(item["Size"]),
                            str(item.get("ETag", "")).strip('"'),
                        )
                    )
    except (ClientError, BotoCoreError) as exc:
        raise _explain(root, exc) from None
    return found


def find_object(uri: str, name: str) -> InputObject | None:
    """The S3 object ``uri`` (None when there is none), as ``list_objects`` would give it,
    under ``name``."""
    bucket, key = split_s3(uri)
    try:
        head = client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _explain(uri, exc) from None
    except BotoCoreError as exc:
        raise _explain(uri, exc) from None
    return InputObject(uri, name, int(head["ContentLength"]), str(head.get("ETag", "")).strip('"'))


def object_pieces(uri: str, size: int) -> Iterator[bytes]:
    """The bytes of one S3 object, ``size`` bytes at a time (never all of it at once)."""
    bucket, key = split_s3(uri)
    try:
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        with closing(body):
            yield from body.iter_chunks(size)
    except (ClientError, BotoCoreError) as exc:
        raise _explain(uri, exc) from None


class TablePages:
    """Read a DynamoDB table's items page by page, following ``LastEvaluatedKey``.

    Throttling (``ProvisionedThroughputExceededException``, ``ThrottlingException``) is
    retried by botocore's adaptive retry mode with backoff; every retry it made is added to
    ``retries`` so the run can report it.
    """

    def __init__(self, table: str, region: str | None) -> None:
        self.table = table
        self.client = client("dynamodb", region)
        self.retries = 0
        self._lock = threading.Lock()

    def _pages(self, call: Callable[..., Any], uri: str, **kwargs: Any) -> Any:
        start: dict[str, Any] | None = None
        while True:
            try:
                page = call(
                    TableName=self.table,
                    **kwargs,
                    **({"ExclusiveStartKey": start} if start else {}),
                )
            except (ClientError, BotoCoreError) as exc:
                raise _explain(uri, exc) from None
            with self._lock:
                self.retries += int(page.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            yield page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:  # an empty key is the end; a present one does not promise more
                return

    def query(self, pk: str) -> Any:
        """Every item of partition ``pk``, one list per page."""
        return self._pages(
            self.client.query,
            f"dynamodb://{self.table}/{pk}",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
        )

    def scan(self, segment: int, segments: int, start: str, end: str) -> Any:
        """Items of one parallel-scan segment whose ``ts`` is in [start, end)."""
        return self._pages(
            self.client.scan,
            f"dynamodb://{self.table}#segment{segment}",
            Segment=segment,
            TotalSegments=segments,
            FilterExpression="#ts >= :start AND #ts < :end",
            ExpressionAttributeNames={"#ts": "ts"},
            ExpressionAttributeValues={":start": {"S": start}, ":end": {"S": end}},
        )

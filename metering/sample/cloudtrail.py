"""Write CloudTrail log files for the sample's calls, as a trail delivers them to S3.

Layout and timing follow AWS_FACTS: ``AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/``
folders named by delivery time, records arriving 20 s to 10 min after their events,
unordered inside a file. Files hold ``DELIVERY_MINUTES`` of arrivals each (by default two
hours): a real trail writes a file about every 5 minutes (``delivery_minutes=5``, what the
benchmark uses), but a gzip file of a handful of records is mostly overhead, and the sample
must stay small. On top of the Data API calls:

- noise from other services (S3 reads by the tenants' roles, STS AssumeRole, KMS Decrypt),
  which meter must skip;
- calls at 23:59:5x on the month's last day land in next month's first folder;
- one batch of the month's last evening is delivered late, on the next month's second day;
- one file is delivered twice (same records, another name): its events are duplicates;
- calls to a Serverless v1 cluster are management events of ``rdsdata.amazonaws.com``;
- a ``CloudTrail-Digest/`` folder (hourly digests of the first day) that meter must skip.

Everything is drawn from one seeded generator and gzipped with ``mtime=0``: a seed always
gives the same bytes. Records of one kind (a tenant's ExecuteStatement on a cluster, say)
differ only in a few values (``Slots``), so each kind's JSON is written once, by the
functions below, as a ``Template``; a file's records are templates filled in row by row.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from metering.month import Month
from metering.sample._files import Jobs, write_gzip
from metering.sample.calls import ACCOUNT, REGION

LEGACY_CLUSTER_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:saas-legacy-v1"  # Serverless v1
ANALYTICS_CLUSTER_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:saas-analytics"  # not on the trail
TRAIL = "saas-trail"
BUCKET = "saas-cloudtrail-logs"
USER_AGENT = (
    "Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#6.1.102 md/arch#x86_64 lang/python#3.12.7 "
    "md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.35.36"
)
APP_IP = "203.0.113.24"
MASKED = "**********"
NOISE_PER_CALL = 0.3  # noise records per Data API record unless a noise share is asked for
DELIVERY_MINUTES = 120  # minutes of arrivals per file (a real trail: about 5)
ERROR_MESSAGES = {
    "BadRequestException": 'ERROR: syntax error at or near "FROM"',
    "StatementTimeoutException": "Request timed out",
}
DATA_API = "rdsdata"  # the kind of a Data API record; noise kinds are s3, sts and kms
NOISE_KINDS = ("s3", "sts", "kms")
_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE_US = 60_000_000


@dataclass(frozen=True, slots=True)
class TrailSample:
    """What was written: files, Data API records, noise records, records delivered twice."""

    files: int
    data_api: int
    noise: int
    duplicated: int


class Slots(NamedTuple):
    """The values that change between two records of one kind, as they appear in the JSON."""

    creation: str  # the session's creationDate: the event's hour
    time: str  # eventTime
    request_id: str
    event_id: str
    extra: str = ""  # an S3 object's number, or the expiry of STS credentials


_MARKS = Slots(*(f"<<{name}>>" for name in Slots._fields))


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _console_time(t: datetime) -> str:
    """STS's credential expiry as CloudTrail prints it: ``Oct 2, 2019, 11:12:29 PM``."""
    return (
        f"{t:%b} {t.day}, {t.year}, {t.hour % 12 or 12}:{t:%M:%S} {'PM' if t.hour >= 12 else 'AM'}"
    )


def _hex_id(random: bytes) -> str:
    text = random.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _code(seed: str, size: int = 16) -> str:
    """A stable uppercase identifier (access key ids, principal ids)."""
    return hashlib.sha256(seed.encode()).hexdigest()[:size].upper()


def _tenant_identity(tenant_id: str, creation: str) -> dict[str, Any]:
    role = f"tenant-{tenant_id}"
    role_id = "AROA" + _code(role)
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:app",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/app",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIA" + _code(f"key/{role}"),
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                "accountId": ACCOUNT,
                "userName": role,
            },
            "attributes": {"creationDate": creation, "mfaAuthenticated": "false"},
        },
    }


def _secret_arn(tenant_id: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:tenant-{tenant_id}-AbCdEf"


def _parameters(operation: str, tenant_id: str, cluster: str) -> dict[str, Any]:
    common = {"resourceArn": cluster, "secretArn": _secret_arn(tenant_id)}
    if operation == "ExecuteStatement":
        return {
            "continueAfterTimeout": False,
            "database": MASKED,
            "includeResultMetadata": True,
            "parameters": [],
            **common,
            "schema": MASKED,
            "sql": MASKED,
        }
    if operation == "BatchExecuteStatement":
        return {"database": MASKED, **common, "schema": MASKED, "sql": MASKED}
    if operation == "BeginTransaction":
        return {"database": MASKED, **common, "schema": MASKED}
    return common  # CommitTransaction, RollbackTransaction


def data_api_record(
    tenant_id: str, operation: str, cluster: str, error_code: str | None, slots: Slots
) -> dict[str, Any]:
    """The CloudTrail record of one Data API call (v2 data event, or v1 management event)."""
    v1 = cluster == LEGACY_CLUSTER_ARN
    record: dict[str, Any] = {
        "eventVersion": "1.08" if v1 else "1.09",
        "userIdentity": _tenant_identity(tenant_id, slots.creation),
        "eventTime": slots.time,
        "eventSource": "rdsdata.amazonaws.com" if v1 else "rdsdataapi.amazonaws.com",
        "eventName": operation,
        "awsRegion": REGION,
        "sourceIPAddress": APP_IP,
        "userAgent": USER_AGENT,
    }
    if error_code is not None:
        record["errorCode"] = error_code
        record["errorMessage"] = ERROR_MESSAGES.get(error_code, "The request failed")
    record |= {
        "requestParameters": _parameters(operation, tenant_id, cluster),
        "responseElements": None,
        "requestID": slots.request_id,
        "eventID": slots.event_id,
    }
    if v1:
        record |= {
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        }
    else:
        record |= {
            "readOnly": False,
            "resources": [{"accountId": ACCOUNT, "type": "AWS::RDS::DBCluster", "ARN": cluster}],
            "eventType": "Rds Data Service",
            "managementEvent": False,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Data",
        }
    record["tlsDetails"] = {
        "tlsVersion": "TLSv1.3",
        "cipherSuite": "TLS_AES_128_GCM_SHA256",
        "clientProvidedHostHeader": f"rds-data.{REGION}.amazonaws.com",
    }
    return record


def noise_record(kind: str, tenant_id: str, slots: Slots) -> dict[str, Any]:
    """A record of another service, around the same tenants: meter must skip it."""
    base: dict[str, Any] = {"eventTime": slots.time, "awsRegion": REGION}
    if kind == "s3":
        key = f"{tenant_id}/exports/{slots.extra}.csv"
        return {
            "eventVersion": "1.10",
            "userIdentity": _tenant_identity(tenant_id, slots.creation),
            **base,
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "sourceIPAddress": APP_IP,
            "userAgent": "[Boto3/1.35.36]",
            "requestParameters": {
                "bucketName": "saas-tenant-files",
                "Host": "saas-tenant-files.s3.us-east-1.amazonaws.com",
                "key": key,
            },
            "responseElements": None,
            "requestID": slots.request_id,
            "eventID": slots.event_id,
            "readOnly": True,
            "resources": [
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::saas-tenant-files/{key}"},
                {
                    "accountId": ACCOUNT,
                    "type": "AWS::S3::Bucket",
                    "ARN": "arn:aws:s3:::saas-tenant-files",
                },
            ],
            "eventType": "AwsApiCall",
            "managementEvent": False,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Data",
        }
    if kind == "sts":
        task = f"arn:aws:sts::{ACCOUNT}:assumed-role/saas-app-task/{_code('task', 32).lower()}"
        return {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROA" + _code("saas-app-task") + ":" + _code("task", 32).lower(),
                "arn": task,
                "accountId": ACCOUNT,
                "accessKeyId": "ASIA" + _code("key/saas-app-task"),
            },
            **base,
            "eventSource": "sts.amazonaws.com",
            "eventName": "AssumeRole",
            "sourceIPAddress": APP_IP,
            "userAgent": USER_AGENT,
            "requestParameters": {
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/tenant-{tenant_id}",
                "roleSessionName": "app",
                "durationSeconds": 3600,
            },
            "responseElements": {
                "credentials": {
                    "accessKeyId": "ASIA" + _code(f"key/tenant-{tenant_id}"),
                    "expiration": slots.extra,
                },
                "assumedRoleUser": {
                    "assumedRoleId": "AROA" + _code(f"tenant-{tenant_id}") + ":app",
                    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-{tenant_id}/app",
                },
            },
            "requestID": slots.request_id,
            "eventID": slots.event_id,
            "readOnly": True,
            "resources": [
                {
                    "accountId": ACCOUNT,
                    "type": "AWS::IAM::Role",
                    "ARN": f"arn:aws:iam::{ACCOUNT}:role/tenant-{tenant_id}",
                }
            ],
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        }
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{_code('kms', 32).lower()}"
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "AWSService", "invokedBy": "secretsmanager.amazonaws.com"},
        **base,
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "sourceIPAddress": "secretsmanager.amazonaws.com",
        "userAgent": "secretsmanager.amazonaws.com",
        "requestParameters": {
            "encryptionContext": {"SecretARN": _secret_arn(tenant_id)},
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
        },
        "responseElements": None,
        "requestID": slots.request_id,
        "eventID": slots.event_id,
        "readOnly": True,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


# What makes a record's kind: its template's key. Noise kinds leave the last three None.
KIND_COLUMNS = ("kind", "tenant_id", "operation", "cluster", "error_code")


class Template(NamedTuple):
    """A record kind's compact JSON, ready to fill in with ``Slots``."""

    text: str  # %-escaped, a %s where each slot's value goes
    pick: Callable[[Sequence[str]], tuple[str, ...]]  # Slots values -> the %s values

    def render(self, slots: Sequence[str]) -> str:
        return self.text % self.pick(slots)


@functools.cache
def record_template(
    kind: str,
    tenant_id: str,
    operation: str | None = None,
    cluster: str | None = None,
    error_code: str | None = None,
) -> Template:
    """The template of a record of this kind: its JSON, with the slots marked."""
    if kind == DATA_API:
        if operation is None or cluster is None:
            raise ValueError("a Data API record needs an operation and a cluster")
        record = data_api_record(tenant_id, operation, cluster, error_code, _MARKS)
    else:
        record = noise_record(kind, tenant_id, _MARKS)
    text = json.dumps(record, separators=(",", ":")).replace("%", "%%")
    marks = re.compile("|".join(_MARKS))
    # Every kind has at least an eventTime and an eventID: itemgetter returns a tuple.
    order = [_MARKS.index(found) for found in marks.findall(text)]
    return Template(marks.sub("%s", text), operator.itemgetter(*order))


def _stamps(seconds: pl.Expr) -> pl.Expr:
    return pl.from_epoch(seconds, "s").dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_file(paths: list[Path], kinds: list[tuple[Any, ...]], rows: pl.DataFrame) -> None:
    """Write one log file (and its repeated deliveries) of ``rows``, in their order.

    ``rows`` has template (an index into ``kinds``), time (epoch seconds), request_id,
    event_id and extra.
    """
    templates = [record_template(*kind) for kind in kinds]
    slots = rows.select(
        "template",
        _stamps(pl.col("time") // 3600 * 3600).alias("creation"),
        _stamps(pl.col("time")).alias("time"),
        "request_id",
        "event_id",
        pl.col("extra").fill_null(""),
    )
    records = (templates[t].render(values) for t, *values in slots.iter_rows())
    write_gzip(paths, ['{"Records":[', ",".join(records), "]}"])


def _noise(rng: np.random.Generator, month: Month, tenants: list[str], count: int) -> pl.DataFrame:
    """``count`` records of other services, around the clock, also the day before and after
    the month; in time order, with KIND_COLUMNS and the columns ``_write_file`` reads."""
    start = month.start - timedelta(days=1)
    span = int((month.end + timedelta(days=1) - start).total_seconds())
    offsets = np.sort(rng.integers(0, span, count))
    kinds = rng.choice(NOISE_KINDS, count, p=[0.4, 0.3, 0.3])
    who = rng.integers(0, len(tenants), count)
    # Each record's own draws, in the order the records come: same seed, same ids.
    request_ids, event_ids, extras = [], [], []
    for offset, kind in zip(offsets.tolist(), kinds.tolist(), strict=True):
        if kind == "s3":
            extras.append(f"{int(rng.integers(1, 400)):04d}")  # which object is read
            request_ids.append(_code(f"s3/{rng.integers(1 << 62)}"))
            event_ids.append(_hex_id(rng.bytes(16)))
        else:
            expiry = start + timedelta(seconds=offset, hours=1)  # of the STS credentials
            extras.append(_console_time(expiry) if kind == "sts" else "")
            ids = rng.bytes(32)  # the request's id, then the event's
            request_ids.append(_hex_id(ids[:16]))
            event_ids.append(_hex_id(ids[16:]))
    return pl.DataFrame(
        {
            "kind": kinds,
            "tenant_id": np.array(tenants)[who],
            "time": offsets + int(start.timestamp()),
            "request_id": request_ids,
            "event_id": event_ids,
            "extra": extras,
        },
        schema_overrides={"kind": pl.Categorical, "tenant_id": pl.Categorical, "time": pl.Int64},
    )


@dataclass(frozen=True, slots=True)
class _Records:
    """Every record a trail holds, one row each: the Data API calls first, then the noise."""

    rows: pl.DataFrame  # template, time (epoch seconds), request_id, event_id, extra
    kinds: list[tuple[Any, ...]]  # a template's KIND_COLUMNS values, by template number
    data_api: int  # the first data_api rows are the Data API records
    noise: int


def _records(
    calls: pl.DataFrame, month: Month, rng: np.random.Generator, noise_share: float | None
) -> _Records:
    data_api = calls.sort("ts", "request_id").select(
        # Categorical: the kind columns repeat a few values over millions of rows.
        pl.lit(DATA_API).cast(pl.Categorical).alias("kind"),
        pl.col("tenant_id", "operation").cast(pl.Categorical),
        pl.col("resource_arn").cast(pl.Categorical).alias("cluster"),
        pl.col("error_code").cast(pl.Categorical),
        pl.col("ts").dt.epoch("s").alias("time"),
        "request_id",
        "event_id",
        pl.lit(None, pl.String).alias("extra"),
    )
    if noise_share is None:
        count = int(data_api.height * NOISE_PER_CALL)
    else:
        count = round(data_api.height * noise_share / (1 - noise_share))
    noise = _noise(rng, month, sorted(set(calls["tenant_id"])), count)
    rows = pl.concat([data_api, noise], how="diagonal_relaxed")
    kinds = rows.select(KIND_COLUMNS).unique(maintain_order=True).with_row_index("template")
    rows = rows.join(
        kinds, on=KIND_COLUMNS, how="left", nulls_equal=True, maintain_order="left"
    ).select("template", "time", "request_id", "event_id", "extra")
    return _Records(rows, kinds.drop("template").rows(), data_api.height, noise.height)


def _deliveries(
    times: np.ndarray, month: Month, rng: np.random.Generator, minutes: int
) -> list[tuple[datetime, np.ndarray]]:
    """When each log file is delivered, and which records (by row number) it holds.

    Records arrive 20 s to ~10 min after their event (median ~200 s) and are batched by
    arrival time, ``minutes`` of a day at a time; a file is delivered at the first 5-minute
    mark after its last arrival.
    """
    lags = np.clip(rng.lognormal(np.log(200), 0.45, len(times)), 20, 594)
    arrival = times * 1_000_000 + np.round(lags * 1e6).astype(np.int64)  # microseconds
    minute = arrival // _MINUTE_US  # minutes since the epoch
    batch = minute - minute % (24 * 60) % minutes
    order = np.argsort(batch, kind="stable")
    keys, starts = np.unique(batch[order], return_index=True)
    batches = dict(zip(keys.tolist(), np.split(order, starts[1:]), strict=True))

    # One batch of the month's last evening is held back and delivered a day late.
    last_evening = int((month.end - timedelta(minutes=minutes)).timestamp()) // 60
    late = batches.pop(last_evening, None)
    files = []
    for indexes in batches.values():
        latest = _EPOCH + timedelta(microseconds=int(arrival[indexes].max()))
        delivered = latest + timedelta(minutes=5 - latest.minute % 5, seconds=-latest.second)
        files.append((delivered, indexes))
    if late is not None:
        files.append((month.end + timedelta(days=1, hours=3, minutes=40), late))
    return files


def write_trail(
    out: Path,
    calls: pl.DataFrame,
    month: Month,
    seed: int,
    noise_share: float | None = None,
    jobs: Jobs | None = None,
    delivery_minutes: int = DELIVERY_MINUTES,
) -> TrailSample:
    """Write the trail's files under ``out`` for ``calls`` (every call AWS saw).

    ``calls`` has request_id, event_id, tenant_id, ts, operation, resource_arn, error_code.
    ``noise_share`` is the share of the trail's records that come from other services
    (``NOISE_PER_CALL`` of them per Data API record when not given). ``jobs`` writes the
    files (inline when not given). A file holds ``delivery_minutes`` of arrivals.
    """
    rng = np.random.default_rng(seed)
    records = _records(calls, month, rng, noise_share)
    files = _deliveries(records.rows["time"].to_numpy(), month, rng, delivery_minutes)

    # The file of day 14 with the most Data API records is delivered twice.
    def data_api(indexes: np.ndarray) -> int:
        return int((indexes < records.data_api).sum())

    day14 = (month.start + timedelta(days=13)).date()
    on_day14 = [i for i, (delivered, _) in enumerate(files) if delivered.date() == day14]
    repeat = max(on_day14, key=lambda i: data_api(files[i][1]), default=None)

    jobs = jobs or Jobs()
    jobs.stage("cloudtrail files", len(files))
    written: list[tuple[datetime, str]] = []
    duplicated = 0
    for index, (delivered, indexes) in enumerate(files):
        rows = records.rows[indexes[rng.permutation(len(indexes))]]
        deliveries = [(delivered, _file_key(delivered, rng))]
        if index == repeat:
            # The same file delivered again five minutes later, under another name.
            again = delivered + timedelta(minutes=5)
            deliveries.append((again, _file_key(again, rng)))
            duplicated = data_api(indexes)
        jobs.submit(_write_file, [out / key for _, key in deliveries], records.kinds, rows)
        written += deliveries
    _write_digests(out, month, written)
    return TrailSample(len(written), records.data_api, records.noise, duplicated)


def _file_key(delivered: datetime, rng: np.random.Generator) -> str:
    suffix = "".join(rng.choice(_ALPHABET, 16))
    stamp = delivered.strftime("%Y%m%dT%H%MZ")
    return (
        f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{delivered:%Y/%m/%d}/"
        f"{ACCOUNT}_CloudTrail_{REGION}_{stamp}_{suffix}.json.gz"
    )


def _write(root: Path, key: str, body: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def _gzip_json(document: object) -> bytes:
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)


def _write_digests(root: Path, month: Month, written: list[tuple[datetime, str]]) -> None:
    """Hourly digest files of the month's first day (real trails write them every hour)."""
    previous = ""
    for hour in range(24):
        start = month.start + timedelta(hours=hour)
        end = start + timedelta(hours=1)
        logs = [key for delivered, key in written if start <= delivered < end]
        stamp = end.strftime("%Y%m%dT%H%M%SZ")
        key = (
            f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{end:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail-Digest_{REGION}_{TRAIL}_{REGION}_{stamp}.json.gz"
        )
        digest = {
            "awsAccountId": ACCOUNT,
            "digestStartTime": _stamp(start),
            "digestEndTime": _stamp(end),
            "digestS3Bucket": BUCKET,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": _code("public-key", 32).lower(),
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": _stamp(end - timedelta(seconds=1)),
            "oldestEventTime": _stamp(start),
            "previousDigestS3Bucket": BUCKET if previous else None,
            "previousDigestS3Object": previous or None,
            "previousDigestHashValue": _code(previous, 64).lower() if previous else None,
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": _code(f"sig/{previous}", 64).lower() if previous else None,
            "logFiles": [
                {
                    "s3Bucket": BUCKET,
                    "s3Object": log,
                    "hashValue": _code(log, 64).lower(),
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": _stamp(end - timedelta(seconds=1)),
                    "oldestEventTime": _stamp(start - timedelta(minutes=10)),
                }
                for log in logs
            ],
        }
        _write(root, key, _gzip_json(digest))
        previous = key


__all__ = [
    "ANALYTICS_CLUSTER_ARN",
    "LEGACY_CLUSTER_ARN",
    "Slots",
    "Template",
    "TrailSample",
    "data_api_record",
    "noise_record",
    "record_template",
    "write_trail",
]

"""Write CloudTrail log files for the sample's calls, as a trail delivers them to S3.

Layout and timing follow AWS_FACTS: ``AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/``
folders named by delivery time, records arriving 20 s to 10 min after their events,
unordered inside a file. Files hold ``BATCH_HOURS`` of arrivals each: a real trail writes a
file about every 5 minutes, but a gzip file of a handful of records is mostly overhead, and
the sample must stay small. On top of the Data API calls:

- noise from other services (S3 reads by the tenants' roles, STS AssumeRole, KMS Decrypt),
  which meter must skip;
- calls at 23:59:5x on the month's last day land in next month's first folder;
- one batch of the month's last evening is delivered late, on the next month's second day;
- one file is delivered twice (same records, another name): its events are duplicates;
- calls to a Serverless v1 cluster are management events of ``rdsdata.amazonaws.com``;
- a ``CloudTrail-Digest/`` folder (hourly digests of the first day) that meter must skip.

Everything is drawn from one seeded generator and gzipped with ``mtime=0``: a seed always
gives the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from metering.month import Month
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
NOISE_SHARE = 0.3  # noise records per Data API record
BATCH_HOURS = 2  # hours of arrivals per file
ERROR_MESSAGES = {
    "BadRequestException": 'ERROR: syntax error at or near "FROM"',
    "StatementTimeoutException": "Request timed out",
}
_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))


@dataclass(frozen=True, slots=True)
class TrailSample:
    """What was written: files, Data API records, noise records, records delivered twice."""

    files: int
    data_api: int
    noise: int
    duplicated: int


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _console_time(t: datetime) -> str:
    """STS's credential expiry as CloudTrail prints it: ``Oct 2, 2019, 11:12:29 PM``."""
    return (
        f"{t:%b} {t.day}, {t.year}, {t.hour % 12 or 12}:{t:%M:%S} {'PM' if t.hour >= 12 else 'AM'}"
    )


def _hex_id(rng: np.random.Generator, upper: bool = False) -> str:
    text = rng.bytes(16).hex()
    uid = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return uid.upper() if upper else uid


def _code(seed: str, size: int = 16) -> str:
    """A stable uppercase identifier (access key ids, principal ids)."""
    return hashlib.sha256(seed.encode()).hexdigest()[:size].upper()


def _tenant_identity(tenant_id: str) -> dict[str, Any]:
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
            "attributes": {"creationDate": "", "mfaAuthenticated": "false"},
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


def data_api_record(row: dict[str, Any], when: datetime) -> dict[str, Any]:
    """The CloudTrail record of one Data API call (v2 data event, or v1 management event)."""
    cluster = row["resource_arn"]
    v1 = cluster == LEGACY_CLUSTER_ARN
    identity = _tenant_identity(row["tenant_id"])
    identity["sessionContext"]["attributes"]["creationDate"] = _stamp(
        when.replace(minute=0, second=0, microsecond=0)
    )
    record: dict[str, Any] = {
        "eventVersion": "1.08" if v1 else "1.09",
        "userIdentity": identity,
        "eventTime": _stamp(when),
        "eventSource": "rdsdata.amazonaws.com" if v1 else "rdsdataapi.amazonaws.com",
        "eventName": row["operation"],
        "awsRegion": REGION,
        "sourceIPAddress": APP_IP,
        "userAgent": USER_AGENT,
    }
    if row["error_code"] is not None:
        record["errorCode"] = row["error_code"]
        record["errorMessage"] = ERROR_MESSAGES.get(row["error_code"], "The request failed")
    record |= {
        "requestParameters": _parameters(row["operation"], row["tenant_id"], cluster),
        "responseElements": None,
        "requestID": row["request_id"],
        "eventID": row["event_id"],
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


def noise_record(
    kind: str, tenant_id: str, when: datetime, rng: np.random.Generator
) -> dict[str, Any]:
    """A record of another service, around the same tenants: meter must skip it."""
    base: dict[str, Any] = {"eventTime": _stamp(when), "awsRegion": REGION}
    if kind == "s3":
        key = f"{tenant_id}/exports/{int(rng.integers(1, 400)):04d}.csv"
        identity = _tenant_identity(tenant_id)
        identity["sessionContext"]["attributes"]["creationDate"] = _stamp(
            when.replace(minute=0, second=0, microsecond=0)
        )
        return {
            "eventVersion": "1.10",
            "userIdentity": identity,
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
            "requestID": _code(f"s3/{rng.integers(1 << 62)}"),
            "eventID": _hex_id(rng),
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
                    "expiration": _console_time(when + timedelta(hours=1)),
                },
                "assumedRoleUser": {
                    "assumedRoleId": "AROA" + _code(f"tenant-{tenant_id}") + ":app",
                    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-{tenant_id}/app",
                },
            },
            "requestID": _hex_id(rng),
            "eventID": _hex_id(rng),
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
        "requestID": _hex_id(rng),
        "eventID": _hex_id(rng),
        "readOnly": True,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


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


def write_trail(out: Path, calls: pl.DataFrame, month: Month, seed: int) -> TrailSample:
    """Write the trail's files under ``out`` for ``calls`` (every call AWS saw).

    ``calls`` has request_id, event_id, tenant_id, ts, operation, resource_arn, error_code.
    """
    rng = np.random.default_rng(seed)
    tenants = sorted(set(calls["tenant_id"]))

    # (event time, record, is Data API) for every record the trail holds.
    events: list[tuple[datetime, dict[str, Any], bool]] = []
    for row in calls.sort("ts", "request_id").iter_rows(named=True):
        when = row["ts"].replace(microsecond=0)
        events.append((when, data_api_record(row, when), True))
    data_api = len(events)
    # Other services go on around the clock, also the day before and after the month.
    noise_start = month.start - timedelta(days=1)
    span = int((month.end + timedelta(days=1) - noise_start).total_seconds())
    noise = int(data_api * NOISE_SHARE)
    noise_at = np.sort(rng.integers(0, span, noise))
    kinds = rng.choice(["s3", "sts", "kms"], noise, p=[0.4, 0.3, 0.3])
    who = rng.integers(0, len(tenants), noise)
    for offset, kind, tenant in zip(noise_at, kinds, who, strict=True):
        when = noise_start + timedelta(seconds=int(offset))
        events.append((when, noise_record(str(kind), tenants[tenant], when, rng), False))

    # Delivery: 20 s to ~10 min after the event (median ~200 s), batched by arrival time.
    lags = np.clip(rng.lognormal(np.log(200), 0.45, len(events)), 20, 594)
    batches: dict[datetime, list[int]] = defaultdict(list)
    for index, ((when, _, _), lag) in enumerate(zip(events, lags, strict=True)):
        arrival = when + timedelta(seconds=float(lag))
        hour = arrival.replace(minute=0, second=0, microsecond=0)
        batches[hour - timedelta(hours=hour.hour % BATCH_HOURS)].append(index)

    # One batch of the month's last evening is held back and delivered a day late.
    last_evening = month.end - timedelta(hours=BATCH_HOURS)
    late = batches.pop(last_evening, [])
    files: list[tuple[datetime, list[int]]] = []
    for hour in sorted(batches):
        indexes = batches[hour]
        latest = max(events[i][0] + timedelta(seconds=float(lags[i])) for i in indexes)
        delivered = latest + timedelta(minutes=5 - latest.minute % 5, seconds=-latest.second)
        files.append((delivered, indexes))
    if late:
        files.append((month.end + timedelta(days=1, hours=3, minutes=40), late))

    root = out
    written: list[tuple[datetime, str]] = []
    duplicated = 0
    day14 = month.start + timedelta(days=13)
    repeat = max(
        (f for f in files if f[0].date() == day14.date()),
        key=lambda f: sum(events[i][2] for i in f[1]),
        default=None,
    )
    for delivered, indexes in files:
        order = rng.permutation(len(indexes))
        body = _gzip_json({"Records": [events[indexes[i]][1] for i in order]})
        key = _file_key(delivered, rng)
        _write(root, key, body)
        written.append((delivered, key))
        if repeat is not None and indexes is repeat[1]:
            # The same file delivered again five minutes later, under another name.
            again = delivered + timedelta(minutes=5)
            again_key = _file_key(again, rng)
            _write(root, again_key, body)
            written.append((again, again_key))
            duplicated = sum(events[i][2] for i in indexes)
    _write_digests(root, month, written)
    return TrailSample(len(written), data_api, noise, duplicated)


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
    "TrailSample",
    "data_api_record",
    "noise_record",
    "write_trail",
]

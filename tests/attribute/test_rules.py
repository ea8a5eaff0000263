"""Attribution rules (SPEC 3): each rule, their order, and the rule name stored per call."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from metering.config import load_config
from metering.errors import ConfigError
from metering.month import Month
from metering.pipeline import bill
from tests.helpers import export_records, record

OCT = Month(2026, 10)
ACCOUNT = "123456789012"
MAIN = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:main"
OTHER = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:other"
PATTERN = "(?:^|/)tenant-(?P<tenant>[a-z0-9]+)"  # on ARNs and on a bare sourceIdentity


def secret(name: str) -> str:
    return f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf"


def event(
    request_id: str,
    *,
    user: str = f"arn:aws:sts::{ACCOUNT}:assumed-role/shared-app/worker",
    issuer: str = f"arn:aws:iam::{ACCOUNT}:role/shared-app",
    source_identity: str | None = None,
    secret_arn: str = secret("shared"),
    cluster: str = OTHER,
) -> dict[str, object]:
    context: dict[str, object] = {"sessionIssuer": {"type": "Role", "arn": issuer}}
    if source_identity is not None:
        context["sourceIdentity"] = source_identity
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "arn": user, "sessionContext": context},
        "eventTime": "2026-10-07T09:30:00Z",
        "eventSource": "rdsdataapi.amazonaws.com",
        "eventName": "ExecuteStatement",
        "requestParameters": {"resourceArn": cluster, "secretArn": secret_arn, "sql": "**********"},
        "responseElements": None,
        "requestID": request_id,
        "eventID": f"event-{request_id}",
        "eventType": "Rds Data Service",
    }


# Each call, and which rules could name its tenant:
#   all          record rec, secret sec, principal prin (user ARN; the issuer says other), cluster res
#   secret       secret sec2, principal prin2, cluster res
#   issuer       principal beta, from the session issuer's ARN only
#   source-id    principal gamma, from sourceIdentity only; cluster res
#   cluster      cluster res only
#   nothing      no rule matches
#   meter-only   a metering record without a CloudTrail event
EVENTS = [
    event(
        "all",
        user=f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-prin/app",
        issuer=f"arn:aws:iam::{ACCOUNT}:role/tenant-other",
        secret_arn=secret("sec"),
        cluster=MAIN,
    ),
    event(
        "secret",
        user=f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-prin2/app",
        secret_arn=secret("sec2"),
        cluster=MAIN,
    ),
    event("issuer", issuer=f"arn:aws:iam::{ACCOUNT}:role/tenant-beta"),
    event("source-id", source_identity="tenant-gamma", cluster=MAIN),
    event("cluster", cluster=MAIN),
    event("nothing"),
]
RECORDS = [
    record("all", "rec", "2026-10-07T09:30:00.120Z", 40000, 100),
    record("meter-only", "rec-only", "2026-10-08T10:00:00.000Z"),
]

RULES = {
    "metering_record": 'kind = "metering_record"',
    "secret_arn": (
        'kind = "secret_arn"\n[attribution.rules.map]\n'
        f'"{secret("sec")}" = "sec"\n"{secret("sec2")}" = "sec2"'
    ),
    "principal": f"kind = \"principal\"\npattern = '{PATTERN}'",
    "resource_arn": f'kind = "resource_arn"\n[attribution.rules.map]\n"{MAIN}" = "res"',
}


def _bill_with(
    tmp_path: Path, rules: list[str], unattributed: str = "platform"
) -> list[tuple[str, str, str]]:
    trail = tmp_path / "trail"
    trail.mkdir(exist_ok=True)
    (trail / "events.json").write_text(json.dumps({"Records": EVENTS}))
    export_records(tmp_path / "dynamodb", RECORDS)
    text = (
        '[warehouse]\npath = "meter.duckdb"\n\n'
        '[sources.cloudtrail]\nuris = ["trail"]\n\n'
        '[sources.metering]\nexports = ["dynamodb"]\n\n'
        f'[attribution]\nunattributed = "{unattributed}"\n'
    )
    for rule in rules:  # a kind from RULES, or a rule's own TOML
        text += f"[[attribution.rules]]\n{RULES.get(rule, rule)}\n"
    (tmp_path / "meter.toml").write_text(text)
    result = bill(load_config(tmp_path / "meter.toml"), OCT)
    assert result.counters.calls_billed == 7
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT request_id, tenant_id, attribution FROM calls ORDER BY request_id"
        ).fetchall()
    finally:
        con.close()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            ["metering_record", "secret_arn", "principal", "resource_arn"],
            {
                "all": ("rec", "metering_record"),
                "cluster": ("res", "resource_arn"),
                "issuer": ("beta", "principal"),
                "meter-only": ("rec-only", "metering_record"),
                "nothing": ("__unattributed__", "unattributed"),
                "secret": ("sec2", "secret_arn"),
                "source-id": ("gamma", "principal"),
            },
        ),
        (
            ["resource_arn", "principal", "secret_arn", "metering_record"],
            {
                "all": ("res", "resource_arn"),
                "cluster": ("res", "resource_arn"),
                "issuer": ("beta", "principal"),
                "meter-only": ("rec-only", "metering_record"),  # no other evidence exists
                "nothing": ("__unattributed__", "unattributed"),
                "secret": ("res", "resource_arn"),
                "source-id": ("res", "resource_arn"),
            },
        ),
        (
            ["principal", "secret_arn"],
            {
                "all": ("prin", "principal"),  # the caller's ARN before the issuer's
                "cluster": ("__unattributed__", "unattributed"),
                "issuer": ("beta", "principal"),
                "meter-only": ("rec-only", "metering_record"),
                "nothing": ("__unattributed__", "unattributed"),
                "secret": ("prin2", "principal"),
                "source-id": ("gamma", "principal"),
            },
        ),
        (
            ["secret_arn", "metering_record"],
            {
                "all": ("sec", "secret_arn"),
                "cluster": ("__unattributed__", "unattributed"),
                "issuer": ("__unattributed__", "unattributed"),
                "meter-only": ("rec-only", "metering_record"),
                "nothing": ("__unattributed__", "unattributed"),
                "secret": ("sec2", "secret_arn"),
                "source-id": ("__unattributed__", "unattributed"),
            },
        ),
    ],
    ids=["spec-order", "reversed", "principal-first", "secret-first"],
)
def test_first_matching_rule_wins_and_is_stored(
    tmp_path: Path, rules: list[str], expected: dict[str, tuple[str, str]]
) -> None:
    got = _bill_with(tmp_path, rules)
    assert got == [(rid, *expected[rid]) for rid in sorted(expected)]


def test_metering_record_rule_takes_sizes_and_tenant(tmp_path: Path) -> None:
    _bill_with(tmp_path, ["metering_record", "principal"])
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.execute(
        "SELECT request_id, request_bytes, response_bytes, units, source, size_estimated "
        "FROM calls WHERE request_id IN ('all', 'cluster') ORDER BY 1"
    ).fetchall() == [
        ("all", 40000, 100, 2, "both", False),
        ("cluster", None, None, 1, "cloudtrail", True),
    ]


def test_share_pro_rata_moves_the_unattributed_cost(tmp_path: Path) -> None:
    """8 units at 0.35 per million: the 5 unattributed units' cost goes to the tenants 2:1."""
    _bill_with(tmp_path, ["metering_record"], unattributed="share_pro_rata")
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.execute(
        "SELECT tenant_id, calls, units, cost_exact FROM tenant_month ORDER BY 1"
    ).fetchall() == [
        ("__unattributed__", 5, 5, Decimal("0")),
        ("rec", 1, 2, Decimal("0.000001866667")),
        ("rec-only", 1, 1, Decimal("0.000000933333")),
    ]


def test_principal_pattern_polars_cannot_run_is_a_config_error(tmp_path: Path) -> None:
    lookahead = "kind = \"principal\"\npattern = '(?=x)tenant-(?P<tenant>[a-z]+)'"
    with pytest.raises(ConfigError, match="look-arounds and back-references are not supported"):
        _bill_with(tmp_path, [lookahead])

"""The same month billed by both engines gives the same bill: byte-identical finance CSVs,
the same counters, quarantine, conflicts, days and reconciliation, and the same calls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from metering.config import load_config
from metering.month import Month
from metering.outputs import export
from metering.pipeline import bill
from metering.schemas import BillResult
from tests.attribute.test_rules import EVENTS as RULE_EVENTS
from tests.attribute.test_rules import RECORDS as RULE_RECORDS
from tests.attribute.test_rules import RULES
from tests.collect.test_cloudtrail import event, key, put
from tests.helpers import copy_sample, lines_of, record, write_data_file

OCT = Month(2026, 10)
CALLS = (
    "SELECT request_id, event_id, event_time, tenant_id, operation, request_bytes, "
    "response_bytes, units, attribution, source, size_estimated FROM calls "
    "ORDER BY request_id, event_id"
)


def _both(config: Path, spark: Any) -> tuple[BillResult, BillResult, Path, Path]:
    """``config``'s folder billed by DuckDB, and a copy of it (the same bytes) by Spark."""
    duck_folder = config.parent
    spark_folder = duck_folder.with_name(duck_folder.name + "-spark")
    shutil.copytree(duck_folder, spark_folder)
    duck = bill(load_config(config), OCT)
    sparked = bill(load_config(spark_folder / config.name), OCT, engine="spark")
    return duck, sparked, duck_folder, spark_folder


def _same_bill(duck: BillResult, sparked: BillResult, a: Path, b: Path) -> None:
    assert sparked.run_id == duck.run_id  # the same config bytes and inputs: the same run
    assert sparked.counters == duck.counters
    assert [
        (q.source_uri.replace(str(b), str(a)), q.locator, q.reason) for q in sparked.quarantine
    ] == [(q.source_uri, q.locator, q.reason) for q in duck.quarantine]
    assert sparked.conflicts.rows() == duck.conflicts.rows()
    assert sparked.tenant_day.equals(duck.tenant_day)
    assert sparked.reconciliation.equals(duck.reconciliation)
    assert sparked.tenant_month.equals(duck.tenant_month)
    assert sparked.overhead == duck.overhead
    assert sparked.charges.equals(duck.charges)  # shared costs, split by the Spark sums too
    assert sparked.shared_costs.equals(duck.shared_costs)
    for format in ("finance", "focus"):  # focus reads `calls`: Parquet, for Spark's
        exported = [export(load_config(folder / "meter.toml"), OCT, format) for folder in (a, b)]
        assert exported[0] == exported[1]
    calls = []
    for folder in (a, b):
        con = duckdb.connect(str(folder / "meter.duckdb"), read_only=True)
        calls.append(con.execute(CALLS).fetchall())
        con.close()
    assert calls[0] == calls[1]
    assert len(calls[0]) == duck.counters.calls_billed


def test_the_sample_month_bills_the_same_on_spark(tmp_path: Path, spark: Any) -> None:
    duck, sparked, a, b = _both(copy_sample(tmp_path / "sample"), spark)
    assert duck.counters.calls_billed > 9_000 and duck.quarantine  # the sample's bad records
    assert duck.shared_costs.height and duck.charges.height  # its CUR export's shared costs
    _same_bill(duck, sparked, a, b)
    # Spark's calls are Parquet beside the warehouse, partitioned by day, read by `calls`.
    days = sorted(p.name for p in (b / "meter.calls" / "month=2026-10").glob("*/day=*"))
    assert days[0] == "day=2026-09-30" and "day=2026-10-31" in days
    assert not (a / "meter.calls").exists()  # DuckDB keeps its calls in the warehouse
    assert duck.calls_at is None
    assert sparked.calls_at is not None and Path(sparked.calls_at).parent.name == "month=2026-10"


ACCOUNT = "123456789012"
PATTERN = r"assumed-role/tenant-(?P<tenant>[a-z0-9]+)/[^/\s]+$"


def _adversarial(folder: Path) -> Path:
    """A month of every hard case: duplicates and copies that disagree in both sources, a
    late file, calls on both month edges, CloudTrail-only, metering-only, rejected and
    Serverless v1 calls, quarantined records and a truncated file, every attribution rule."""
    trail = folder / "trail"
    user = f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-globex/app"
    e1 = event("e1", "2026-10-05T12:00:00Z")  # matched by record req-e1
    e2 = event("e2", "2026-10-05T12:00:01Z", user=user)  # CloudTrail only, principal
    e3 = event("e3", "2026-10-05T12:00:02Z")
    e3_rejected = event("e3", "2026-10-05T12:00:02Z", error="BadRequestException")
    e4 = event("e4", "2026-10-06T00:00:00Z", request_id="shared")
    e5 = event("e5", "2026-10-06T00:00:00Z", request_id="shared", user=user)
    v1 = event("v1", "2026-10-07T08:00:00Z", source="rdsdata.amazonaws.com", name="ExecuteSql")
    anon = event("anon", "2026-10-07T09:00:00Z", user="arn:aws:iam::1:user/x", issuer=None)
    failed = event("bad", "2026-10-08T10:00:00Z", error="StatementTimeoutException")
    sept = event("sept", "2026-09-30T23:59:59Z")
    last = event("last", "2026-10-31T23:59:59Z", user=user)  # in the late file
    nov = event("nov", "2026-11-01T00:00:00Z")
    put(trail, key("2026-10-01", "a"), [sept, e1])
    put(trail, key("2026-10-05", "a"), [e1, e2, e3, e4, v1, anon, failed])
    put(trail, key("2026-10-05", "b"), [e2, e3_rejected, e5, e3])  # a second delivery
    put(trail, key("2026-11-02", "late"), [last, nov])
    cut = put(
        trail, key("2026-10-09", "cut"), [event(f"c{i}", "2026-10-09T01:00:00Z") for i in range(50)]
    )
    cut.write_bytes(cut.read_bytes()[:-40])  # a truncated gzip: the records before the cut bill
    (trail / "rules.json").write_text(json.dumps({"Records": RULE_EVENTS}))
    records = [
        record("req-e1", "acme", "2026-10-05T12:00:00.100Z", 40000, 30000),
        record("only", "initech", "2026-10-10T00:00:00.000Z", 70000, 5),  # metering only
        record("twice", "acme", "2026-10-11T00:00:00.000Z"),
        record("twice", "acme", "2026-10-11T00:00:00.000Z"),  # an exact duplicate
        record("differ", "acme", "2026-10-12T00:00:00.000Z"),
        record("differ", "umbrella", "2026-10-12T00:00:00.000Z", 9),  # copies that disagree
        record("sept-rec", "acme", "2026-09-30T23:59:59.999Z"),
        record("oct-first", "acme", "2026-10-01T00:00:00.000Z", 32768, 0),
        record("oct-last", "acme", "2026-10-31T23:59:59.999Z", 32769, 0),
        record("nov-rec", "acme", "2026-11-01T00:00:00.000Z"),
        record("rejected", "hooli", "2026-10-13T00:00:00.000Z") | {"error_code": "500"},
        record("req-bad", "hooli", "2026-10-08T10:00:00.000Z"),  # only CloudTrail saw it fail
        record("describe", "acme", "2026-10-14T00:00:00.000Z", op="DescribeTable"),
        *RULE_RECORDS,
    ]
    bad = json.dumps({"Item": {"request_id": {"S": "bad"}, "request_bytes": {"S": "x"}}})
    lines = [*lines_of(records), bad, "not json"]
    write_data_file(folder / "dynamodb" / "data" / "a.json.gz", lines)
    rules = "\n".join(
        f"[[attribution.rules]]\n{text}"
        for text in (
            RULES["metering_record"],
            RULES["secret_arn"],
            f"kind = \"principal\"\npattern = '{PATTERN}'",
            RULES["resource_arn"],
        )
    )
    config = folder / "meter.toml"
    config.write_text(
        '[warehouse]\npath = "meter.duckdb"\n\n'
        '[pricing]\ntiers = [ { per_million = "250000" } ]\n\n'
        '[sources.cloudtrail]\nuris = ["trail"]\n\n'
        '[sources.metering]\nexports = ["dynamodb"]\n\n'
        f'[attribution]\nunattributed = "platform"\n{rules}\n'
    )
    return config


def test_an_adversarial_month_bills_the_same_on_spark(tmp_path: Path, spark: Any) -> None:
    (tmp_path / "hard").mkdir()
    duck, sparked, a, b = _both(_adversarial(tmp_path / "hard"), spark)
    counted = {name: n for name, n in duck.counters.as_dict().items() if n}
    assert counted == {
        "files_read": 7,
        "records_seen": 86,
        "calls_billed": 65,
        "skipped_operations": 1,
        "duplicates": 7,
        "errored_calls": 3,
        "out_of_month": 4,
        "quarantined": 3,  # a mistyped record, a line that is no JSON, the truncated gzip
        "joined": 3,
        "conflicting_duplicates": 3,
        "error_disagreements": 1,
    }
    assert list(duck.tenant_month["tenant_id"]) == [
        "__unattributed__",
        "acme",
        "globex",  # principal
        "initech",  # metering only
        "rec",
        "rec-only",
        "res",  # resource_arn
        "sec2",  # secret_arn
    ]
    assert sum(duck.tenant_month["amount"]) > 0  # real money, largest remainder and all
    _same_bill(duck, sparked, a, b)
    # Billed again: the new run's calls replace the last one's folder; billed by DuckDB, the
    # warehouse holds the calls again and names no Parquet.
    bill(load_config(b / "meter.toml"), OCT, engine="spark")
    assert len(list((b / "meter.calls" / "month=2026-10").iterdir())) == 1
    bill(load_config(b / "meter.toml"), OCT)
    con = duckdb.connect(str(b / "meter.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM month_call_files").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM call_rows").fetchall()[0][0] > 65
    assert len(con.execute(CALLS).fetchall()) == 65
    con.close()


@pytest.mark.parametrize(
    ("pattern", "refused"),
    [
        (r"tenant-(?P<tenant>[a-z]+)\b", "\\b"),
        (r"(?m)tenant-(?P<tenant>[a-z]+)$", "flags"),
        (r"tenant-(?P<tenant>[a-z]+)\v", "\\v"),
    ],
)
def test_patterns_java_reads_otherwise_are_refused_for_spark(
    tmp_path: Path, pattern: str, refused: str
) -> None:
    """Refused before any Spark starts (and before any input is read)."""
    from metering.errors import ConfigError

    config = tmp_path / "meter.toml"
    config.write_text(
        '[warehouse]\npath = "meter.duckdb"\n[sources.metering]\nexports = ["d"]\n'
        f"[[attribution.rules]]\nkind = \"principal\"\npattern = '{pattern}'\n"
    )
    with pytest.raises(ConfigError, match="would match differently on Spark") as caught:
        bill(load_config(config), OCT, engine="spark")
    assert refused in str(caught.value)


def test_patterns_match_alike_in_java_and_re2(spark: Any) -> None:
    """What each engine's regexp_extract gives for the rule's patterns, over awkward ARNs."""
    from metering.attribute.principal import java_pattern
    from metering.sql import SPARK

    patterns = [
        PATTERN,
        r"(?i)TENANT-(?P<tenant>[a-zé]+)",
        r"tenant-(?P<tenant>.+)",
        r"(?s)tenant-(?P<tenant>.+)",
        r"x\s(?P<tenant>\S+)",
    ]
    texts = [
        f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-acme/app",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-acme/app\n",
        "tenant-AcmÉ",
        "tenant-a\rb\u2028c\nd",
        "x\x0bvt x\tok",
    ]
    rows = [(p, t) for p in patterns for t in texts]
    con = duckdb.connect()
    expected = [
        con.execute("SELECT regexp_extract(?, ?, 1)", [t, p]).fetchall()[0][0] for p, t in rows
    ]
    con.close()
    got = [
        spark.sql(
            f"SELECT regexp_extract({SPARK.literal(t)}, {SPARK.literal(java_pattern(p))}, 1)"
        ).collect()[0][0]
        for p, t in rows
    ]
    assert got == expected


def test_a_spark_job_is_finished_from_its_aggregates(tmp_path: Path, spark: Any) -> None:
    """meter spark-job writes the month's sums and accounting; meter bill --from-aggregates
    prices them elsewhere into the bill the DuckDB engine makes of the same inputs."""
    from metering.errors import ConfigError, UsageError
    from metering.spark.bill import bill_from_aggregates, spark_job

    (tmp_path / "hard").mkdir()
    config = _adversarial(tmp_path / "hard")
    small = tmp_path / "small"
    shutil.copytree(config.parent, small)
    duck = bill(load_config(config), OCT)
    out = tmp_path / "job"
    # The job keeps its steps in a checkpoint folder (as on a cluster with dynamic
    # allocation) rather than on the executors; the session keeps it from here on.
    checkpoints = tmp_path / "checkpoints"
    (config.parent / "job.toml").write_text(
        config.read_text() + f'[engine.conf]\n"spark.checkpoint.dir" = "{checkpoints}"\n'
    )
    spark_job(load_config(config.parent / "job.toml"), OCT, str(out))
    assert (out / "calls" / "month=2026-10").is_dir()
    assert any(p.is_file() for p in checkpoints.rglob("*"))
    with pytest.raises(UsageError, match="is of 2026-10, not of 2026-11"):
        bill_from_aggregates(load_config(small / "meter.toml"), Month(2026, 11), str(out))
    finished = bill_from_aggregates(load_config(small / "meter.toml"), OCT, str(out))
    _same_bill(duck, finished, config.parent, small)
    other = small / "meter.toml"
    other.write_text(other.read_text().replace("[pricing]", "[pricing]\nblock_bytes = 1024"))
    with pytest.raises(ConfigError, match="other \\[pricing\\] or \\[attribution\\] settings"):
        bill_from_aggregates(load_config(other), OCT, str(out))


def test_rows_read_without_files_reach_spark_whole(spark: Any) -> None:
    """A live table's records (read on the driver) are handed to Spark as they are."""
    import polars as pl

    from metering.schemas import RECORDS, Collected, Counters
    from metering.spark import SparkSpool

    frame = pl.DataFrame(
        {
            "request_id": ["a", "b"],
            "tenant_id": ["acme", "globex"],
            "ts": ["2026-10-01T00:00:00.001", "2026-10-31T23:59:59.999"],
            "operation": ["ExecuteStatement"] * 2,
            "request_bytes": [1, 2],
            "response_bytes": [3, None],
            "resource_arn": [None, "arn"],
            "principal_arn": [None, None],
            "error_code": [None, "500"],
            "written_us": [None, 7],
        },
    ).with_columns(pl.col("ts").str.to_datetime(time_unit="ms", time_zone="UTC"))
    spool = SparkSpool(spark)
    kept = spool.put(
        "records", "dynamodb://t/2026-10", Collected(frame.cast(RECORDS), Counters(records_seen=2))
    )  # type: ignore[arg-type]
    assert (kept.parquet_rows, kept.counters.records_seen) == (2, 2)
    back = [row.asDict() for row in spool.frame("records").orderBy("request_id").collect()]
    assert [
        (r["request_id"], r["ts"].isoformat(), r["response_bytes"], r["written_us"]) for r in back
    ] == [
        ("a", "2026-10-01T00:00:00.001000", 3, None),
        ("b", "2026-10-31T23:59:59.999000", None, 7),
    ]

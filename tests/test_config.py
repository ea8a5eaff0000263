"""meter.toml: exactly SPEC section 4's keys; errors name the key and the file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from metering.config import PrincipalRule, SecretArnRule, load_config
from metering.errors import ConfigError

MINIMAL = '[sources.metering]\nexports = ["dynamodb"]\n'


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "meter.toml"
    path.write_text(text)
    return load_config(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return str(caught.value)


def test_spec_example_loads_with_defaults_and_resolved_paths(tmp_path: Path) -> None:
    spec = (Path(__file__).parent.parent / "sample_data" / "meter.toml").read_text()
    config = _load(tmp_path, spec)
    assert config.pricing.block_bytes == 32768
    assert config.pricing.tiers[0].per_million == Decimal("0.35")
    assert config.pricing.tiers[1].per_million == Decimal("0.20")
    assert config.warehouse.path == str(tmp_path / "meter.duckdb")
    assert config.sources.metering is not None
    assert config.sources.metering.exports == (str(tmp_path / "dynamodb"),)
    assert [r.kind for r in config.attribution.rules] == ["metering_record", "principal"]
    assert len(config.sha256) == 64


def test_s3_uris_are_kept(tmp_path: Path) -> None:
    config = _load(tmp_path, '[sources.metering]\nexports = ["s3://bucket/exports", "local"]\n')
    assert config.sources.metering is not None
    assert config.sources.metering.exports == ("s3://bucket/exports", str(tmp_path / "local"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "[pricing]\nblock_size = 1\n", "pricing.block_size: unknown key"),
        (MINIMAL + "[pricng]\n", "pricng: unknown key"),
        (
            MINIMAL + "[pricing]\nblock_bytes = 0\n",
            "pricing.block_bytes: Input should be greater than or equal to 1, not 0",
        ),
        (MINIMAL + "[pricing]\nblock_bytes = -5\n", "pricing.block_bytes"),
        (
            MINIMAL + '[pricing]\ntiers = [{ per_million = "-0.35" }]\n',
            "price per million must be a number from 0 to 1000000, not -0.35",
        ),
        (
            MINIMAL
            + '[pricing]\ntiers = [{ up_to = 10, per_million = "1" }, { up_to = 5, per_million = "1" }, { per_million = "1" }]\n',
            "tier 2: up_to = 5 must be above the previous tier's 10",
        ),
        (
            MINIMAL + '[pricing]\ntiers = [{ up_to = 10, per_million = "1" }]\n',
            "the last tier must have no up_to",
        ),
        (
            MINIMAL + '[pricing]\ntiers = [{ per_million = "1" }, { per_million = "1" }]\n',
            "tier 1 needs up_to",
        ),
        (MINIMAL + '[pricing]\nmeasure = "both"\n', "pricing.measure"),
        (
            MINIMAL + '[[attribution.rules]]\nkind = "principal"\npattern = "role/(.*)"\n',
            "has no (?P<tenant>...) group",
        ),
        (MINIMAL + '[[attribution.rules]]\nkind = "magic"\n', "attribution.rules.0"),
        (
            "[warehouse]\npath = 'x.duckdb'\n",
            "configure [sources.cloudtrail], [sources.metering] or both",
        ),
        ("[sources.metering]\n", "give exports = [...] or table"),
        ("[pricing\n", "not valid TOML"),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    message = _error(tmp_path, text)
    assert expected in message
    assert str(tmp_path / "meter.toml") in message or "meter.toml" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


def test_rules_are_a_discriminated_union(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        MINIMAL
        + '[[attribution.rules]]\nkind = "secret_arn"\nmap = { "arn:s" = "t1" }\n'
        + '[[attribution.rules]]\nkind = "principal"\npattern = "tenant-(?P<tenant>\\\\w+)"\n',
    )
    first, second = config.attribution.rules
    assert isinstance(first, SecretArnRule) and first.map == {"arn:s": "t1"}
    assert isinstance(second, PrincipalRule)


def test_float_prices_become_exact_decimals(tmp_path: Path) -> None:
    config = _load(tmp_path, MINIMAL + "[pricing]\ntiers = [{ per_million = 0.35 }]\n")
    assert config.pricing.tiers[0].per_million == Decimal("0.35")


CT = '[sources.cloudtrail]\nuris = ["trail"]\n'
TABLE = '[sources.metering]\ntable = "DataApiMetering"\n'


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        # ints are ints: no booleans, strings or floats
        (MINIMAL + "[pricing]\nblock_bytes = true\n", "pricing.block_bytes", "not true"),
        (MINIMAL + '[pricing]\nblock_bytes = "32768"\n', "pricing.block_bytes", 'not "32768"'),
        (MINIMAL + "[pricing]\nblock_bytes = 2.0\n", "pricing.block_bytes", "not 2.0"),
        (
            MINIMAL + "[pricing]\nunknown_size_units = true\n",
            "pricing.unknown_size_units",
            "integer",
        ),
        (CT + "late_days = 2.0\n", "sources.cloudtrail.late_days", "valid integer, not 2.0"),
        (
            MINIMAL
            + '[pricing]\ntiers = [{ up_to = "1000", per_million = "1" }, { per_million = "1" }]\n',
            "pricing.tiers.0.up_to",
            'valid integer, not "1000"',
        ),
        (
            MINIMAL
            + '[pricing]\ntiers = [{ up_to = true, per_million = "1" }, { per_million = "1" }]\n',
            "pricing.tiers.0.up_to",
            "valid integer, not true",
        ),
        # bools are bools
        (MINIMAL + '[pricing]\nbill_errors = "yes"\n', "pricing.bill_errors", 'boolean, not "yes"'),
        (MINIMAL + "[pricing]\nbill_errors = 1\n", "pricing.bill_errors", "boolean, not 1"),
        (TABLE + "scan = 1\n", "sources.metering.scan", "boolean, not 1"),
        # ranges that keep the warehouse's BIGINT and DECIMAL columns from overflowing
        (
            MINIMAL + "[pricing]\nblock_bytes = 1_073_741_825\n",
            "pricing.block_bytes",
            "less than or equal to 1073741824",
        ),
        (
            MINIMAL + "[pricing]\nunknown_size_units = 1_000_001\n",
            "pricing.unknown_size_units",
            "less than or equal to 1000000",
        ),
        (
            MINIMAL
            + '[pricing]\ntiers = [{ up_to = 1_000_000_000_000_001, per_million = "1" }, { per_million = "1" }]\n',
            "pricing.tiers.0.up_to",
            "less than or equal to 1000000000000000",
        ),
        (
            MINIMAL + '[pricing]\ntiers = [{ per_million = "1000000.000001" }]\n',
            "pricing.tiers.0.per_million",
            "from 0 to 1000000, not 1000000.000001",
        ),
        # prices: at most 6 decimals, and numbers
        (
            MINIMAL + '[pricing]\ntiers = [{ per_million = "0.1234567" }]\n',
            "pricing.tiers.0.per_million",
            "0.1234567 has more than 6 decimal places",
        ),
        (
            MINIMAL + "[pricing]\ntiers = [{ per_million = 0.1234567 }]\n",
            "pricing.tiers.0.per_million",
            "0.1234567 has more than 6 decimal places",
        ),
        (
            MINIMAL + "[pricing]\ntiers = [{ per_million = true }]\n",
            "pricing.tiers.0.per_million",
            "price per million true is not a number",
        ),
        (
            MINIMAL + '[pricing]\ntiers = [{ per_million = "35 cents" }]\n',
            "pricing.tiers.0.per_million",
            'price per million "35 cents" is not a number',
        ),
    ],
)
def test_values_are_never_coerced_and_stay_in_range(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    message = _error(tmp_path, text)
    assert f"{tmp_path / 'meter.toml'}: {key}: " in message
    assert expected in message


def test_the_accepted_forms_load_exactly(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        MINIMAL
        + "[pricing]\n"
        + "block_bytes = 1_073_741_824\nunknown_size_units = 1_000_000\nbill_errors = true\n"
        + 'operations = ["ExecuteStatement", "ExecuteSql"]\n'
        + "tiers = [\n"
        + '  { up_to = 1_000, per_million = "0.35" },\n'
        + "  { up_to = 2_000, per_million = 2 },\n"
        + "  { up_to = 3_000, per_million = 0.1 },\n"
        + '  { up_to = 1_000_000_000_000_000, per_million = "0.123456000" },\n'
        + '  { per_million = "1000000" },\n'
        + "]\n",
    )
    pricing = config.pricing
    assert (pricing.block_bytes, pricing.unknown_size_units, pricing.bill_errors) == (
        2**30,
        10**6,
        True,
    )
    assert pricing.operations == ("ExecuteStatement", "ExecuteSql")
    prices = [str(tier.per_million) for tier in pricing.tiers]
    assert prices == ["0.35", "2", "0.1", "0.123456000", "1000000"]
    assert [tier.up_to for tier in pricing.tiers] == [1_000, 2_000, 3_000, 10**15, None]


@pytest.mark.parametrize("currency", ["USD", "JPY", "CLF"])
def test_the_ranges_cannot_overflow(currency: str) -> None:
    """The extreme month the ranges allow: 10^8 calls of 20 MiB billed in 1-byte blocks at
    the highest prices, in a currency of 2, 0 and 4 decimals. Every amount is exact (no
    Decimal rounding) and fits its column."""
    from decimal import Inexact, localcontext

    import duckdb

    from metering.config import MAX_UP_TO, PricingConfig, Tier
    from metering.rate import price
    from metering.store.schema import AMOUNT

    pricing = PricingConfig(
        currency=currency,
        block_bytes=1,
        tiers=(
            Tier(up_to=MAX_UP_TO, per_million=Decimal("999999.999999")),
            Tier(per_million=Decimal(10**6)),
        ),
    )
    total = 10**8 * 20 * 2**20
    units = {"a": total // 3 + 1, "b": total // 7, "__unattributed__": 0}
    units["__unattributed__"] = total - units["a"] - units["b"]
    with localcontext() as context:
        context.traps[Inexact] = True
        bill = price(units, pricing)
        amounts = [bill.account_cost, bill.amount]
        for tenant, line in bill.lines.items():
            amounts += [line.cost_exact, line.amount, bill.day_cost(tenant, units[tenant] // 31)]
    assert (
        bill.account_cost
        == (MAX_UP_TO * Decimal("999999.999999") + (total - MAX_UP_TO) * Decimal(10**6)) / 10**6
    )
    assert sum(line.amount for line in bill.lines.values()) == bill.amount
    con = duckdb.connect()
    assert con.execute("SELECT ?::BIGINT", [total]).fetchone() == (total,)
    for amount in amounts:
        stored = con.execute("SELECT ?::VARCHAR::DECIMAL(38, 12)", [str(amount)]).fetchone()
        assert stored == (amount,)
    for amount in [bill.amount, *(line.amount for line in bill.lines.values())]:
        assert con.execute(f"SELECT ?::VARCHAR::{AMOUNT}", [str(amount)]).fetchone() == (amount,)


def test_overhead_prices_default_to_aws_public_prices(tmp_path: Path) -> None:
    overhead = _load(tmp_path, MINIMAL).overhead
    assert overhead.cloudtrail_per_100k_events == Decimal("0.10")
    assert overhead.dynamodb_per_million_writes == Decimal("0.625")


def test_overhead_prices_load_exactly(tmp_path: Path) -> None:
    text = "[overhead]\ncloudtrail_per_100k_events = 0.1\ndynamodb_per_million_writes = 1\n"
    overhead = _load(tmp_path, MINIMAL + text).overhead
    assert str(overhead.cloudtrail_per_100k_events) == "0.1"
    assert str(overhead.dynamodb_per_million_writes) == "1"
    text = (
        '[overhead]\ncloudtrail_per_100k_events = "2.000001"\ndynamodb_per_million_writes = "0"\n'
    )
    overhead = _load(tmp_path, MINIMAL + text).overhead
    assert (overhead.cloudtrail_per_100k_events, overhead.dynamodb_per_million_writes) == (
        Decimal("2.000001"),
        Decimal(0),
    )


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ('cloudtrail_per_100k = "0.10"', "overhead.cloudtrail_per_100k", "unknown key"),
        (
            'cloudtrail_per_100k_events = "-0.10"',
            "overhead.cloudtrail_per_100k_events",
            "price must be a number from 0 to 1000000, not -0.10",
        ),
        (
            'dynamodb_per_million_writes = "1000000.5"',
            "overhead.dynamodb_per_million_writes",
            "price must be a number from 0 to 1000000, not 1000000.5",
        ),
        (
            'dynamodb_per_million_writes = "0.6251234"',
            "overhead.dynamodb_per_million_writes",
            "price 0.6251234 has more than 6 decimal places; round it to 6",
        ),
        (
            "cloudtrail_per_100k_events = true",
            "overhead.cloudtrail_per_100k_events",
            "price true is not a number; write it as a decimal string, e.g. "
            'cloudtrail_per_100k_events = "0.10"',
        ),
        (
            'dynamodb_per_million_writes = "62.5 cents"',
            "overhead.dynamodb_per_million_writes",
            'price "62.5 cents" is not a number; write it as a decimal string, e.g. '
            'dynamodb_per_million_writes = "0.625"',
        ),
        (
            'cloudtrail_per_100k_events = "NaN"',
            "overhead.cloudtrail_per_100k_events",
            "Input should be a finite number",
        ),
    ],
)
def test_overhead_errors_name_the_key(tmp_path: Path, line: str, key: str, expected: str) -> None:
    message = _error(tmp_path, f"{MINIMAL}[overhead]\n{line}\n")
    assert f"{tmp_path / 'meter.toml'}: {key}: " in message
    assert expected in message


def test_invoice_defaults_and_resolved_uris(tmp_path: Path) -> None:
    config = _load(tmp_path, MINIMAL + '[invoice]\nuris = ["cur", "s3://billing/cur2"]\n')
    invoice = config.invoice
    assert invoice is not None
    assert invoice.uris == (str(tmp_path / "cur"), "s3://billing/cur2")
    assert (invoice.format, invoice.allocate, invoice.include_tax) == ("cur2", "model", False)
    assert invoice.data_api_usage_types == ("%DataAPI%", "%Data_API%")
    assert invoice.tolerance == Decimal("0.01")
    assert _load(tmp_path, MINIMAL).invoice is None
    exact = _load(tmp_path, MINIMAL + '[invoice]\nuris = ["cur"]\ntolerance = 0.001\n').invoice
    assert exact is not None and exact.tolerance == Decimal("0.001")


INVOICE = MINIMAL + '[invoice]\nuris = ["cur"]\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (INVOICE + 'format = "cur"\n', "invoice.format: Input should be 'cur2' or 'focus'"),
        (INVOICE + 'allocate = "both"\n', "invoice.allocate: Input should be 'model' or 'invoice'"),
        (INVOICE + 'include_tax = "yes"\n', "invoice.include_tax: Input should be a valid boolean"),
        (
            INVOICE + 'tolerance = "2"\n',
            "invoice.tolerance: tolerance must be a share of the invoiced requests from 0 to 1, "
            'not "2"; e.g. tolerance = "0.01" (1 %)',
        ),
        (INVOICE + 'tolerance = "1 %"\n', "invoice.tolerance: tolerance must be a share"),
        (INVOICE + "tolerance = true\n", "invoice.tolerance: tolerance must be a share"),
        (
            INVOICE + 'tolerance = "0.0000001"\n',
            "invoice.tolerance: tolerance 1E-7 has more than 6 decimal places",
        ),
        (
            INVOICE + 'data_api_usage_types = ["%%"]\n',
            "invoice.data_api_usage_types: usage type pattern '%%' matches every usage type",
        ),
        (INVOICE + "data_api_usage_types = []\n", "invoice.data_api_usage_types: Tuple should"),
        (MINIMAL + "[invoice]\nuris = []\n", "invoice.uris: Tuple should have at least 1 item"),
        (MINIMAL + "[invoice]\n", "invoice.uris: Field required"),
        (INVOICE + 'uri = "x"\n', "invoice.uri: unknown key"),
    ],
)
def test_invoice_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    message = _error(tmp_path, text)
    assert expected in message
    assert message.startswith(f"{tmp_path / 'meter.toml'}: invoice.")


def test_the_engine_section(tmp_path: Path) -> None:
    """[engine]: duckdb by default; spark with its master, settings and calls folder
    (resolved like every path; s3:// kept); anything else named with the file."""
    assert _load(tmp_path, MINIMAL).engine.kind == "duckdb"
    config = _load(
        tmp_path,
        MINIMAL + '[engine]\nkind = "spark"\nmaster = "local[2]"\ncalls = "calls"\n'
        '[engine.conf]\n"spark.executor.memory" = "4g"\n',
    )
    assert (config.engine.kind, config.engine.master) == ("spark", "local[2]")
    assert config.engine.calls == str(tmp_path / "calls")
    assert config.engine.conf == {"spark.executor.memory": "4g"}
    s3 = _load(tmp_path, MINIMAL + '[engine]\ncalls = "s3://bucket/calls"\n')
    assert s3.engine.calls == "s3://bucket/calls"
    assert "engine.kind" in _error(tmp_path, MINIMAL + '[engine]\nkind = "flink"\n')
    said = _error(tmp_path, MINIMAL + '[engine.conf]\n"executor.memory" = "4g"\n')
    assert "meter.toml: engine.conf: 'executor.memory' is not a Spark setting" in said
    assert "engine.memory" in _error(tmp_path, MINIMAL + '[engine]\nmemory = "4g"\n')

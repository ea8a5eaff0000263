"""Strict models for ``meter.toml`` (SPEC section 4) and ``load_config``.

Every table forbids unknown keys; errors name the key and the file. Values are never
coerced: ``block_bytes = "32768"`` or ``bill_errors = "yes"`` is an error, not a guess (only
a price may be a string, an integer or a float: it becomes an exact ``Decimal``). Numbers
have ranges that keep every sum and amount inside the warehouse's BIGINT and DECIMAL
columns (see ``MAX_BLOCK_BYTES`` and its neighbours). Relative paths are resolved against the folder
of the config file, ``s3://`` URIs are kept as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from metering.errors import ConfigError

DEFAULT_OPERATIONS = (
    "ExecuteStatement",
    "BatchExecuteStatement",
    "BeginTransaction",
    "CommitTransaction",
    "RollbackTransaction",
    "ExecuteSql",
)

Measure = Literal["request", "response", "request+response", "max"]

# The ranges, chosen so that no month can overflow the warehouse. A call is billed on at
# most 4 MiB of request plus 10 MB of response (collect.records), under 20 MiB; so a month
# of 10^8 calls is at most 10^8 * 20 MiB = 2.1e15 units even with 1-byte blocks, or 10^14
# units of unknown size: far inside BIGINT (9.2e18). A price of at most 10^6 per million
# is at most 1 per unit, so the month costs at most 2.1e15. The tightest limits, the
# amounts' DECIMAL(20, 4) (below 10^16) and, for a cost to 12 decimals, Python's 28-digit
# Decimal context (2.1e27 < 10^28), leave room for about 4x more; DECIMAL(38, 12) far more.
# At most 6 decimals per million keep a unit's cost, and so the account cost, exact in 12
# decimals. tests/test_config.py prices that extreme month.
MAX_BLOCK_BYTES = 2**30  # 1 GiB: far above any call, so every call is then one unit
MAX_UNKNOWN_SIZE_UNITS = 1_000_000  # 31 GiB at 32 KiB blocks: far above any call
MAX_UP_TO = 10**15  # units in a month: a million times AWS's tier edge (10^9)
MAX_PER_MILLION = Decimal(10**6)  # 1 per unit
PRICE_PLACES = 6  # decimals of a price per million: a unit's cost has at most 12


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarehouseConfig(_Strict):
    path: StrictStr = "meter.duckdb"


def _decimal(value: object, what: str, example: str) -> Decimal:
    """A price as an exact ``Decimal``: a TOML string, integer or float (turned into its
    shortest decimal text, never a binary fraction); a bool, an int in Python, is refused."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise ValueError(
        f"{what} {_toml(value)} is not a number; write it as a decimal string, e.g. {example}"
    )


def _price(value: Decimal, what: str, kept: str = "a unit's cost") -> Decimal:
    """``value`` if it is a price from 0 to MAX_PER_MILLION with at most PRICE_PLACES
    decimals (so ``kept``, the price of one, is exact in 12), else ValueError naming
    ``what``."""
    if not value.is_finite() or not 0 <= value <= MAX_PER_MILLION:
        raise ValueError(f"{what} must be a number from 0 to {MAX_PER_MILLION}, not {value}")
    if value != value.quantize(Decimal(1).scaleb(-PRICE_PLACES)):
        raise ValueError(
            f"{what} {value} has more than {PRICE_PLACES} decimal places; "
            f"round it to {PRICE_PLACES} ({kept} is kept to 12 decimals)"
        )
    return value


class Tier(_Strict):
    up_to: StrictInt | None = Field(default=None, ge=1, le=MAX_UP_TO)
    per_million: Decimal

    @field_validator("per_million", mode="before")
    @classmethod
    def _exact(cls, value: object) -> Decimal:
        return _decimal(value, "price per million", 'per_million = "0.35"')

    @field_validator("per_million")
    @classmethod
    def _in_range(cls, value: Decimal) -> Decimal:
        return _price(value, "price per million")


class PricingConfig(_Strict):
    currency: StrictStr = "USD"  # ISO 4217, with a minor unit (rate.money.currency_problem)
    block_bytes: StrictInt = Field(default=32768, ge=1, le=MAX_BLOCK_BYTES)
    measure: Measure = "request+response"
    unknown_size_units: StrictInt = Field(default=1, ge=1, le=MAX_UNKNOWN_SIZE_UNITS)
    bill_errors: StrictBool = False
    operations: tuple[StrictStr, ...] = DEFAULT_OPERATIONS
    tiers: tuple[Tier, ...] = (
        Tier(up_to=1_000_000_000, per_million=Decimal("0.35")),
        Tier(per_million=Decimal("0.20")),
    )

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, code: str) -> str:
        from metering.rate.money import currency_problem  # (rate imports this module)

        problem = currency_problem(code)
        if problem is not None:
            raise ValueError(problem)
        return code

    @field_validator("tiers")
    @classmethod
    def _ladder(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if not tiers:
            raise ValueError('at least one tier is needed, e.g. [{ per_million = "0.35" }]')
        *bounded, last = tiers
        if last.up_to is not None:
            raise ValueError("the last tier must have no up_to: it prices every unit above")
        previous = 0
        for index, tier in enumerate(bounded):
            if tier.up_to is None:
                raise ValueError(f"tier {index + 1} needs up_to: only the last tier is open")
            if tier.up_to <= previous:
                raise ValueError(
                    f"tier {index + 1}: up_to = {tier.up_to} must be above the previous "
                    f"tier's {previous}"
                )
            previous = tier.up_to
        return tiers

    @field_validator("operations")
    @classmethod
    def _some_operations(cls, operations: tuple[str, ...]) -> tuple[str, ...]:
        if not operations:
            raise ValueError("list at least one billable operation")
        return operations


# How a CloudTrail URI's files are read: ``auto``, log files and query results (``.csv``,
# ``.csv.gz``) told apart by name and first line; ``json``, log files only; ``csv``, every
# file is a query result (Athena, CloudTrail Lake), whatever its name.
TrailFormat = Literal["auto", "json", "csv"]


class TrailUri(_Strict):
    """A CloudTrail folder or prefix written as a table: ``{ uri = "...", format = "csv" }``."""

    uri: StrictStr
    format: TrailFormat = "auto"


class CloudTrailSource(_Strict):
    uris: tuple[TrailUri, ...]  # in meter.toml: plain strings, or tables with a format
    late_days: StrictInt = Field(default=3, ge=0, le=31)

    @field_validator("uris", mode="before")
    @classmethod
    def _tables(cls, uris: object) -> object:
        if isinstance(uris, list | tuple):
            return [{"uri": u} if isinstance(u, str) else u for u in uris]
        return uris

    @field_validator("uris")
    @classmethod
    def _one_format_each(cls, uris: tuple[TrailUri, ...]) -> tuple[TrailUri, ...]:
        formats: dict[str, str] = {}
        for entry in uris:
            if formats.setdefault(entry.uri, entry.format) != entry.format:
                raise ValueError(
                    f"{entry.uri} is listed with format {formats[entry.uri]!r} and "
                    f"{entry.format!r}; keep one"
                )
        return uris

    @property
    def paths(self) -> list[str]:
        """The configured folders and prefixes."""
        return [entry.uri for entry in self.uris]

    @property
    def formats(self) -> dict[str, TrailFormat]:
        """How each one's files are read."""
        return {entry.uri: entry.format for entry in self.uris}


class MeteringSource(_Strict):
    exports: tuple[StrictStr, ...] = ()
    table: StrictStr | None = None
    region: StrictStr | None = None
    scan: StrictBool = False

    @model_validator(mode="after")
    def _something(self) -> MeteringSource:
        if not self.exports and self.table is None:
            raise ValueError('give exports = [...] or table = "..." (or both)')
        return self


class SourcesConfig(_Strict):
    cloudtrail: CloudTrailSource | None = None
    metering: MeteringSource | None = None


class TenantsConfig(_Strict):
    registry: StrictStr | None = None


class MeteringRecordRule(_Strict):
    kind: Literal["metering_record"]


class SecretArnRule(_Strict):
    kind: Literal["secret_arn"]
    map: dict[StrictStr, StrictStr]


class PrincipalRule(_Strict):
    kind: Literal["principal"]
    pattern: StrictStr

    @field_validator("pattern")
    @classmethod
    def _has_tenant_group(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a valid regex: {exc}") from None
        if "tenant" not in compiled.groupindex:
            raise ValueError(f"pattern {pattern!r} has no (?P<tenant>...) group")
        return pattern


class ResourceArnRule(_Strict):
    kind: Literal["resource_arn"]
    map: dict[StrictStr, StrictStr]


Rule = Annotated[
    MeteringRecordRule | SecretArnRule | PrincipalRule | ResourceArnRule,
    Field(discriminator="kind"),
]


class AttributionConfig(_Strict):
    unattributed: Literal["platform", "share_pro_rata"] = "platform"
    rules: tuple[Rule, ...] = Field(
        default=(MeteringRecordRule(kind="metering_record"),), min_length=1
    )


class PublishConfig(_Strict):
    """``meter publish``: where tenants' usage goes (README "Tenant-facing usage")."""

    dsn: StrictStr | None = None  # else METER_PUBLISH_DSN, else --dsn
    schema_name: StrictStr = Field(default="meter_usage", alias="schema")
    role: StrictStr = "app"

    @model_validator(mode="after")
    def _names(self) -> PublishConfig:
        from metering.errors import UsageError
        from metering.rls import quote_ident

        for what, name in (("schema", self.schema_name), ("role", self.role)):
            try:
                quote_ident(name, what)
            except UsageError as exc:
                raise ValueError(str(exc)) from None
        return self


class OverheadConfig(_Strict):
    """What the metering itself costs, for the estimate ``meter bill`` and ``meter report``
    show beside the bill (never allocated to tenants). Defaults: AWS's public prices in
    us-east-1 (CloudTrail data events; DynamoDB on-demand writes since November 2024), in
    the currency of ``[pricing]``."""

    cloudtrail_per_100k_events: Decimal = Decimal("0.10")
    dynamodb_per_million_writes: Decimal = Decimal("0.625")

    @field_validator("cloudtrail_per_100k_events", "dynamodb_per_million_writes", mode="before")
    @classmethod
    def _exact(cls, value: object, info: ValidationInfo) -> Decimal:
        default = cls.model_fields[str(info.field_name)].default
        return _decimal(value, "price", f'{info.field_name} = "{default}"')

    @field_validator("cloudtrail_per_100k_events", "dynamodb_per_million_writes")
    @classmethod
    def _in_range(cls, value: Decimal) -> Decimal:
        return _price(value, "price", "the cost of one event or write")


# The usage types of RDS Data API requests in AWS's bills (SPEC 8), as LIKE patterns matched
# without regard to case. AWS's documentation does not spell the Data API's usage type out
# (its pricing pages say "Data API requests"), so the default covers the plausible
# spellings after a region prefix: "DataAPI" in any case (USE1-Aurora:DataAPIRequests,
# EUW2-RDS:DataAPIUsage) and "Data" and "API" with one separator between them
# (USE1-Data-API-Requests). Look at your invoice's line_item_usage_type and set
# data_api_usage_types when yours differs (README, "Tying out to the AWS invoice").
DEFAULT_DATA_API_USAGE_TYPES = ("%DataAPI%", "%Data_API%")
TOLERANCE_PLACES = 6


class InvoiceConfig(_Strict):
    """``[invoice]``: AWS Data Exports of the billed month, to tie out to and to allocate."""

    uris: tuple[StrictStr, ...] = Field(min_length=1)
    format: Literal["cur2", "focus"] = "cur2"
    data_api_usage_types: tuple[StrictStr, ...] = Field(
        default=DEFAULT_DATA_API_USAGE_TYPES, min_length=1
    )
    allocate: Literal["model", "invoice"] = "model"
    include_tax: StrictBool = False
    tolerance: Decimal = Decimal("0.01")

    @field_validator("data_api_usage_types")
    @classmethod
    def _patterns(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            if not pattern.strip("%_"):
                raise ValueError(
                    f"usage type pattern {pattern!r} matches every usage type; name the Data "
                    'API\'s, e.g. "%DataAPI%"'
                )
        return patterns

    @field_validator("tolerance", mode="before")
    @classmethod
    def _exact_tolerance(cls, value: object) -> Decimal:
        exact: Decimal | None = None
        if isinstance(value, Decimal):
            exact = value
        elif isinstance(value, str):
            try:
                exact = Decimal(value)
            except InvalidOperation:
                exact = None
        elif isinstance(value, float):
            exact = Decimal(repr(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            exact = Decimal(value)
        if exact is None or not exact.is_finite() or not 0 <= exact <= 1:
            raise ValueError(
                "tolerance must be a share of the invoiced requests from 0 to 1, not "
                f'{_toml(value)}; e.g. tolerance = "0.01" (1 %)'
            )
        if exact != exact.quantize(Decimal(1).scaleb(-TOLERANCE_PLACES)):
            raise ValueError(
                f"tolerance {exact} has more than {TOLERANCE_PLACES} decimal places "
                f"(a millionth of the requests is the finest)"
            )
        return exact


SPARK_CONF_KEY = re.compile(r"spark\.[A-Za-z0-9_.-]+")


class EngineConfig(_Strict):
    """Where a bill's calls are joined, attributed and rated (README "Billing on Apache
    Spark"): DuckDB on this machine, or Spark. Pricing and the warehouse stay in Python."""

    kind: Literal["duckdb", "spark"] = "duckdb"
    master: StrictStr | None = None  # Spark's master URL; default: spark-submit's, else local[*]
    calls: StrictStr | None = None  # where Spark writes per-call Parquet; default beside warehouse
    conf: dict[StrictStr, StrictStr] = {}  # extra Spark settings, e.g. spark.executor.memory

    @field_validator("conf")
    @classmethod
    def _spark_keys(cls, conf: dict[str, str]) -> dict[str, str]:
        for key in conf:
            if not SPARK_CONF_KEY.fullmatch(key):
                raise ValueError(f"{key!r} is not a Spark setting (they start with spark.)")
        return conf


# What a shared cost is split by (SPEC 8): each tenant's billed units, billed calls, or the
# bytes its calls were billed on ([pricing] measure; a call of unknown size counts none).
Driver = Literal["units", "calls", "bytes"]
# The charge name of the Data API's own line among a tenant's charges (tenant_charges).
DATA_API_CHARGE = "data_api"
_CHARGE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


class SharedCostConfig(_Strict):
    """A ``[[shared_costs]]`` entry: other RDS lines of the tenants' clusters, split over
    the tenants by their share of ``driver`` (README, "Shared costs")."""

    name: StrictStr
    usage_types: tuple[StrictStr, ...] = Field(min_length=1)
    clusters: tuple[StrictStr, ...] = ()  # cluster ARNs; empty: the clusters the calls name
    driver: Driver = "units"

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _CHARGE_NAME.fullmatch(name) or name == DATA_API_CHARGE:
            raise ValueError(
                f"name {name!r} must be lower-case letters, digits and _ (starting with a "
                f'letter, at most 63), and not "{DATA_API_CHARGE}" (the Data API\'s own '
                'charge); e.g. name = "aurora_compute"'
            )
        return name

    @field_validator("usage_types")
    @classmethod
    def _patterns(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            if not pattern.strip("%_"):
                raise ValueError(
                    f"usage type pattern {pattern!r} matches every usage type; name the "
                    'cost\'s, e.g. "%Aurora:ServerlessV2Usage%"'
                )
        return patterns

    @field_validator("clusters")
    @classmethod
    def _arns(cls, clusters: tuple[str, ...]) -> tuple[str, ...]:
        for arn in clusters:
            if not re.fullmatch(r"arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster:[^\s]+", arn):
                raise ValueError(
                    f"{arn!r} is not a cluster ARN (arn:aws:rds:REGION:ACCOUNT:cluster:NAME, "
                    "as the Data API calls name it)"
                )
        return clusters


class Config(_Strict):
    warehouse: WarehouseConfig = WarehouseConfig()
    pricing: PricingConfig = PricingConfig()
    sources: SourcesConfig = SourcesConfig()
    tenants: TenantsConfig = TenantsConfig()
    attribution: AttributionConfig = AttributionConfig()
    publish: PublishConfig = PublishConfig()
    overhead: OverheadConfig = OverheadConfig()
    invoice: InvoiceConfig | None = None
    shared_costs: tuple[SharedCostConfig, ...] = ()
    engine: EngineConfig = EngineConfig()

    _path: Path | None = PrivateAttr(default=None)
    _sha256: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _some_source(self) -> Config:
        if self.sources.cloudtrail is None and self.sources.metering is None:
            raise ValueError("configure [sources.cloudtrail], [sources.metering] or both")
        return self

    @model_validator(mode="after")
    def _shared_costs(self) -> Config:
        if self.shared_costs and self.invoice is None:
            raise ValueError(
                "[[shared_costs]] split lines of the AWS invoice: configure [invoice] uris "
                "(AWS Data Exports) too"
            )
        names = [entry.name for entry in self.shared_costs]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"[[shared_costs]] names {', '.join(twice)} more than once")
        return self

    @property
    def path(self) -> Path | None:
        """The file this config was read from."""
        return self._path

    def command(self, text: str) -> str:
        """A ``meter`` command to suggest, with ``--config`` when this config is not the one
        ``meter`` finds by itself (``find_config``), so it can be pasted as it is."""
        if self._path is None or self._path == find_config().resolve():
            return text
        return f"{text} --config {shlex.quote(str(self._path))}"

    @property
    def sha256(self) -> str:
        """SHA-256 of the config file's bytes (recorded in ``bill_runs``)."""
        return self._sha256


def _resolve(base: Path, uri: str) -> str:
    if uri.startswith("s3://"):
        return uri
    path = Path(uri).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _resolved(raw: dict[str, object], base: Path) -> dict[str, object]:
    """Rewrite the path-valued keys of a raw config mapping against ``base``."""

    def table(*keys: str) -> dict[str, object] | None:
        node: object = raw
        for key in keys:
            if not isinstance(node, dict) or not isinstance(node.get(key), dict):
                return None
            node = node[key]
        return node if isinstance(node, dict) else None

    singles: tuple[tuple[tuple[str, ...], str], ...] = (
        (("warehouse",), "path"),
        (("engine",), "calls"),
        (("tenants",), "registry"),
    )
    for keys, field in singles:
        node = table(*keys)
        if node and isinstance(value := node.get(field), str):
            node[field] = _resolve(base, value)
    lists = (
        (("sources", "cloudtrail"), "uris"),
        (("sources", "metering"), "exports"),
        (("invoice",), "uris"),
    )
    for keys, field in lists:
        node = table(*keys)
        if node and isinstance(values := node.get(field), list):
            node[field] = [_resolved_uri(base, u) for u in values]
    return raw


def _resolved_uri(base: Path, entry: object) -> object:
    """A listed path, or a table's ``uri`` key, resolved against ``base``."""
    if isinstance(entry, str):
        return _resolve(base, entry)
    if isinstance(entry, dict) and isinstance(entry.get("uri"), str):
        return {**entry, "uri": _resolve(base, entry["uri"])}
    return entry


def _toml(value: object) -> str:
    """``value`` as it was written in TOML (``true``, ``"32768"``, ``2.0``)."""
    if isinstance(value, bool | int | str):
        return json.dumps(value)
    return repr(value)


def _describe(error: ValidationError, path: Path) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the README's config reference)"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        elif isinstance(item["input"], bool | int | float | str):
            message = f"{message}, not {_toml(item['input'])}"
        lines.append(f"{path}: {where}: {message}")
    return "\n".join(lines)


CONFIG_ENV = "METER_CONFIG"
DEFAULT_CONFIG = Path("meter.toml")


def find_config(path: str | Path | None = None) -> Path:
    """Which meter.toml to use: ``path`` when given, else $METER_CONFIG, else
    ``./meter.toml`` (the CLI, ``pipelines/`` and the notebook all find it so)."""
    if path is not None:
        return Path(path)
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else DEFAULT_CONFIG


def load_config(path: str | Path | None = None) -> Config:
    """Read, validate and resolve ``meter.toml`` (``find_config`` says which)."""
    path = find_config(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file; pass --config PATH or run `meter sample --out DIR` "
            "for an example"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    base = path.resolve().parent
    try:
        config = Config.model_validate(_resolved(raw, base))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    config._path = path.resolve()
    config._sha256 = hashlib.sha256(data).hexdigest()
    return config

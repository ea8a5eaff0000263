"""Strict models for ``meter.toml`` (SPEC section 4) and ``load_config``.

Every table forbids unknown keys; errors name the key and the file. Relative paths are
resolved against the folder of the config file, ``s3://`` URIs are kept as they are.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarehouseConfig(_Strict):
    path: str = "meter.duckdb"


class Tier(_Strict):
    up_to: int | None = Field(default=None, gt=0)
    per_million: Decimal

    @field_validator("per_million", mode="before")
    @classmethod
    def _exact(cls, value: object) -> object:
        # TOML floats are turned into their shortest decimal text, never binary fractions.
        if isinstance(value, float):
            return Decimal(repr(value))
        return value

    @field_validator("per_million")
    @classmethod
    def _not_negative(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value < 0:
            raise ValueError(f"price per million must be a finite number >= 0, not {value}")
        return value


class PricingConfig(_Strict):
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    block_bytes: int = Field(default=32768, gt=0)
    measure: Measure = "request+response"
    unknown_size_units: int = Field(default=1, ge=1)
    bill_errors: bool = False
    operations: tuple[str, ...] = DEFAULT_OPERATIONS
    tiers: tuple[Tier, ...] = (
        Tier(up_to=1_000_000_000, per_million=Decimal("0.35")),
        Tier(per_million=Decimal("0.20")),
    )

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


class CloudTrailSource(_Strict):
    uris: tuple[str, ...]
    late_days: int = Field(default=3, ge=0, le=31)


class MeteringSource(_Strict):
    exports: tuple[str, ...] = ()
    table: str | None = None
    region: str | None = None
    scan: bool = False

    @model_validator(mode="after")
    def _something(self) -> MeteringSource:
        if not self.exports and self.table is None:
            raise ValueError('give exports = [...] or table = "..." (or both)')
        return self


class SourcesConfig(_Strict):
    cloudtrail: CloudTrailSource | None = None
    metering: MeteringSource | None = None


class TenantsConfig(_Strict):
    registry: str | None = None


class MeteringRecordRule(_Strict):
    kind: Literal["metering_record"]


class SecretArnRule(_Strict):
    kind: Literal["secret_arn"]
    map: dict[str, str]


class PrincipalRule(_Strict):
    kind: Literal["principal"]
    pattern: str

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
    map: dict[str, str]


Rule = Annotated[
    MeteringRecordRule | SecretArnRule | PrincipalRule | ResourceArnRule,
    Field(discriminator="kind"),
]


class AttributionConfig(_Strict):
    unattributed: Literal["platform", "share_pro_rata"] = "platform"
    rules: tuple[Rule, ...] = Field(
        default=(MeteringRecordRule(kind="metering_record"),), min_length=1
    )


class Config(_Strict):
    warehouse: WarehouseConfig = WarehouseConfig()
    pricing: PricingConfig = PricingConfig()
    sources: SourcesConfig = SourcesConfig()
    tenants: TenantsConfig = TenantsConfig()
    attribution: AttributionConfig = AttributionConfig()

    _path: Path | None = PrivateAttr(default=None)
    _sha256: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _some_source(self) -> Config:
        if self.sources.cloudtrail is None and self.sources.metering is None:
            raise ValueError("configure [sources.cloudtrail], [sources.metering] or both")
        return self

    @property
    def path(self) -> Path | None:
        """The file this config was read from."""
        return self._path

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
        (("tenants",), "registry"),
    )
    for keys, field in singles:
        node = table(*keys)
        if node and isinstance(value := node.get(field), str):
            node[field] = _resolve(base, value)
    for keys, field in ((("sources", "cloudtrail"), "uris"), (("sources", "metering"), "exports")):
        node = table(*keys)
        if node and isinstance(values := node.get(field), list):
            node[field] = [_resolve(base, u) if isinstance(u, str) else u for u in values]
    return raw


def _describe(error: ValidationError, path: Path) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the README's config reference)"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        lines.append(f"{path}: {where}: {message}")
    return "\n".join(lines)


def load_config(path: str | Path) -> Config:
    """Read, validate and resolve ``meter.toml``."""
    path = Path(path)
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

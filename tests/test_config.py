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
            "pricing.block_bytes: Input should be greater than 0",
        ),
        (MINIMAL + "[pricing]\nblock_bytes = -5\n", "pricing.block_bytes"),
        (
            MINIMAL + '[pricing]\ntiers = [{ per_million = "-0.35" }]\n',
            "price per million must be a finite number >= 0",
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

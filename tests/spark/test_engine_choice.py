"""Choosing the engine: refused plainly where Spark cannot run, or for an unknown engine
(no Spark session is started by these tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from metering.config import load_config
from metering.errors import ConfigError
from metering.month import Month
from metering.pipeline import bill
from tests.helpers import copy_sample, run_meter


def test_an_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    config = copy_sample(tmp_path / "sample")
    done = run_meter("bill", "--month", "2026-10", "--config", str(config), "--engine", "flink")
    assert done.returncode == 2
    assert "--engine 'flink': give duckdb or spark" in done.stderr
    assert not (tmp_path / "sample" / "meter.duckdb").exists()


def test_spark_without_java_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from metering.spark import missing

    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert missing() == "Spark needs Java 17 or later: no java on PATH and no JAVA_HOME"
    config = copy_sample(tmp_path / "sample")
    with pytest.raises(ConfigError, match='kind = "spark": Spark needs Java 17'):
        bill(load_config(config), Month(2026, 10), engine="spark")
    assert not (tmp_path / "sample" / "meter.duckdb").exists()

"""One Spark session (local[2]) for every Spark test; skipped, saying why, only where
pyspark or java is missing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from metering.config import EngineConfig


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from metering.spark import missing, spark_session

    why = missing()
    if why is not None:
        pytest.skip(f"Spark tests need Spark here: {why}")
    with spark_session(EngineConfig(master="local[2]"), app="meter-tests") as session:
        yield session

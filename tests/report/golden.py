"""Golden files that follow the sample: ``METER_UPDATE_GOLDEN=1 pytest`` rewrites them.

When the bundled sample is regenerated, run the suite once with ``METER_UPDATE_GOLDEN=1``,
look at ``git diff tests/golden`` and commit the new goldens with the new sample.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden"


def assert_golden(name: str, data: bytes) -> None:
    """``data`` equals ``tests/golden/<name>`` byte for byte (or rewrites it when asked)."""
    path: Path = GOLDEN / name
    if os.environ.get("METER_UPDATE_GOLDEN") == "1":
        path.write_bytes(data)
        return
    assert path.exists(), f"{path} is missing: run METER_UPDATE_GOLDEN=1 pytest to write it"
    expected = path.read_bytes()
    if data != expected:
        got, want = data.decode().splitlines(), expected.decode().splitlines()
        first = next(
            (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
            min(len(got), len(want)),
        )
        raise AssertionError(
            f"{path} differs from line {first + 1}: got {got[first : first + 1]}, "
            f"expected {want[first : first + 1]} (METER_UPDATE_GOLDEN=1 rewrites it)"
        )

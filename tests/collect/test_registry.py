"""The tenants registry: names and cost centres as written, control characters refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from metering.collect.registry import read_registry
from metering.errors import ConfigError

HEADER = "tenant_id,tenant_name,cost_center,plan\n"


def _registry(tmp_path: Path, body: str) -> str:
    path = tmp_path / "tenants.csv"
    path.write_bytes((HEADER + body).encode())
    return str(path)


def test_names_are_read_as_written(tmp_path: Path) -> None:
    path = _registry(tmp_path, 'acme,"Acme, Inc.",CC-1,pro\n\nglobex, Globex 東京 ,CC-2,free\n')
    frame = read_registry(path)
    assert frame.rows() == [
        ("acme", "Acme, Inc.", "CC-1", "pro"),
        ("globex", "Globex 東京", "CC-2", "free"),
    ]


@pytest.mark.parametrize(
    ("body", "where", "char"),
    [
        (
            "acme,Acme,CC-1,pro\nglobex,Globex\x1b[2J,CC-2,pro\n",
            "line 3, column tenant_name",
            "001B",
        ),
        ("acme,Acme,CC\t1,pro\n", "line 2, column cost_center", "0009"),
        (
            '\nacme,"Acme\nLtd",CC-1,pro\nglobex,Globex,CC-2,pro\n',
            "line 3, column tenant_name",
            "000A",
        ),
        (
            'acme,Acme,CC-1,pro\r\nglobex,Globex,"CC\r2",pro\r\n',
            "line 3, column cost_center",
            "000D",
        ),
        ("acme\x7f,Acme,CC-1,pro\n", "line 2, column tenant_id", "007F"),
        ("acme,Acme,CC-1,pro\x85\n", "line 2, column plan", "0085"),
        ("acme,Acme,CC-1,pro,\x00\n", "line 2, column #5", "0000"),
    ],
)
def test_a_control_character_is_refused_naming_line_and_column(
    tmp_path: Path, body: str, where: str, char: str
) -> None:
    path = _registry(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        read_registry(path)
    assert str(caught.value) == (
        f"{path}: {where}: control character U+{char}; remove it from the tenants registry"
    )


def test_a_control_character_in_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tenants.csv"
    path.write_text("tenant_id,tenant_name,cost_center,pl\x1ban\nacme,Acme,CC-1,pro\n")
    with pytest.raises(ConfigError, match=r"line 1, column #4: control character U\+001B"):
        read_registry(str(path))

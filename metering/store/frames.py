"""Polars frames out of and into DuckDB, through the Arrow C stream interface.

DuckDB's own ``relation.pl()`` and ``con.register(name, polars_frame)`` convert through
pyarrow, and importing pyarrow (with numpy) costs every ``meter`` process about 0.3 s,
a fifth of an incremental re-bill. Both ends speak the Arrow PyCapsule interface, which
moves the same columns without pyarrow.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl


def polars(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """The rows of ``relation`` as a polars frame."""
    return pl.DataFrame(relation)


class ArrowStream:
    """A polars frame that DuckDB reads as an Arrow stream (``con.register(name, ...)``).

    DuckDB recognises a polars frame itself and converts it through pyarrow; wrapped, it
    sees only the ``__arrow_c_stream__`` method and reads the frame directly.
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> Any:
        return self._frame.__arrow_c_stream__(requested_schema)

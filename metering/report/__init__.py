"""Outputs people read: finance CSV (and, later, FOCUS, charts, terminal reports)."""

from __future__ import annotations

from metering.report.finance import finance_csv, neutralise

__all__ = ["finance_csv", "neutralise"]

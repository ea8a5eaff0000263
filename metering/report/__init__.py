"""Outputs people read: finance CSV, charges CSV, FinOps FOCUS CSV, charts
(``metering.report.charts``, imported on demand: it is the only module that imports
matplotlib)."""

from __future__ import annotations

from metering.report.charges import charges_csv
from metering.report.finance import finance_csv, neutralise
from metering.report.focus import FOCUS_COLUMNS, X_COLUMNS, focus_csv

__all__ = ["FOCUS_COLUMNS", "X_COLUMNS", "charges_csv", "finance_csv", "focus_csv", "neutralise"]

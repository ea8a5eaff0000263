"""Billing months: calendar months in UTC (SPEC 1.6)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from metering.errors import UsageError

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True, slots=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.match(text.strip())
        if match is None:
            raise UsageError(f"--month {text!r}: give a month as YYYY-MM, e.g. 2026-10")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def start(self) -> datetime:
        """First instant of the month, UTC."""
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """First instant of the next month, UTC (exclusive bound)."""
        return self.next().start

    def days(self) -> list[date]:
        first = self.first_day
        return [first + timedelta(days=i) for i in range((self.next().first_day - first).days)]

"""The one error tree of meter.

Library code raises only these; the CLI turns them into one red line and an exit status
(``metering.cli``). Messages name the bad value, where it came from, and the fix.

    MeteringError                  root: anything meter refuses or cannot do
    ├── ConfigError                meter.toml is missing, unreadable or invalid  (exit 2)
    ├── InputError                 an input source cannot be read at all        (exit 1)
    │   └── EmptyMonthError        no source holds a record of the month
    ├── WarehouseError             the DuckDB warehouse cannot be used          (exit 1)
    │   ├── WarehouseBusyError     another process holds the warehouse
    │   └── MonthClosedError       the month is closed; reopen it first
    ├── PublishError               the PostgreSQL to publish to cannot be written (exit 1)
    │   └── PublishBusyError       another meter publish is writing the same schema
    └── UsageError                 a command was called with bad arguments      (exit 2)

Bad *records* are not errors: they are quarantined (``metering.collect.Quarantine``) and
the run goes on.
"""

from __future__ import annotations


class MeteringError(Exception):
    """Root of every error meter raises on purpose."""

    exit_code = 1


class ConfigError(MeteringError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 2


class InputError(MeteringError):
    """An input source (folder, bucket, table) cannot be read at all."""


class EmptyMonthError(InputError):
    """No source holds a single record of the month (a typo, a missing folder)."""


class WarehouseError(MeteringError):
    """The DuckDB warehouse cannot be opened, read or written."""


class WarehouseBusyError(WarehouseError):
    """Another process is writing the warehouse."""


class MonthClosedError(WarehouseError):
    """The month is closed and may not be re-billed until it is reopened."""


class PublishError(MeteringError):
    """The PostgreSQL database usage is published to cannot be reached or written."""


class PublishBusyError(PublishError):
    """Another ``meter publish`` is writing the same schema of the same database."""


class UsageError(MeteringError):
    """A command was called with arguments that make no sense."""

    exit_code = 2

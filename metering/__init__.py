"""meter: per-tenant cost metering and chargeback for the RDS Data API.

The library's surface, what ``pipelines/``, ``notebooks/`` and users call::

    import metering

    config = metering.load_config("meter.toml")
    month = metering.Month.parse("2026-10")
    result = metering.bill(config, month)          # a BillResult
    finance = metering.export(config, month, "finance")
    metering.chart(config, month, Path("charts"))

Names are loaded when first used, so ``import metering`` (and ``meter --help``) stays
quick; deeper modules are meter's own business and may change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Each public name, and the module it lives in.
_HOMES = {
    "Bill": "metering.rate",
    "BillResult": "metering.schemas",
    "Config": "metering.config",
    "ConfigError": "metering.errors",
    "EmptyMonthError": "metering.errors",
    "InputError": "metering.errors",
    "MeteringError": "metering.errors",
    "Month": "metering.month",
    "MonthClosedError": "metering.errors",
    "MonthReport": "metering.outputs",
    "PublishBusyError": "metering.errors",
    "PublishError": "metering.errors",
    "Published": "metering.publish",
    "UsageError": "metering.errors",
    "WarehouseBusyError": "metering.errors",
    "WarehouseError": "metering.errors",
    "alt_text": "metering.report.charts",
    "amount_text": "metering.rate.money",
    "bill": "metering.pipeline",
    "billed_months": "metering.outputs",
    "call_rates": "metering.outputs",
    "chart": "metering.outputs",
    "close_month": "metering.period",
    "diff": "metering.period",
    "export": "metering.outputs",
    "health": "metering.period",
    "load_config": "metering.config",
    "minor_units": "metering.rate.money",
    "month_changes": "metering.outputs",
    "month_report": "metering.outputs",
    "month_trend": "metering.outputs",
    "plot_cost_per_tenant": "metering.report.charts",
    "plot_daily_calls": "metering.report.charts",
    "plot_daily_cost": "metering.report.charts",
    "plot_edge_savings": "metering.report.charts",
    "plot_month_change": "metering.report.charts",
    "plot_payload_sizes": "metering.report.charts",
    "plot_trend": "metering.report.charts",
    "publish_month": "metering.period",
    "reopen_month": "metering.period",
    "tenant_days": "metering.outputs",
    "tenant_operations": "metering.outputs",
}

__all__ = [
    "Bill",
    "BillResult",
    "Config",
    "ConfigError",
    "EmptyMonthError",
    "InputError",
    "MeteringError",
    "Month",
    "MonthClosedError",
    "MonthReport",
    "PublishBusyError",
    "PublishError",
    "Published",
    "UsageError",
    "WarehouseBusyError",
    "WarehouseError",
    "__version__",
    "alt_text",
    "amount_text",
    "bill",
    "billed_months",
    "call_rates",
    "chart",
    "close_month",
    "diff",
    "export",
    "health",
    "load_config",
    "minor_units",
    "month_changes",
    "month_report",
    "month_trend",
    "plot_cost_per_tenant",
    "plot_daily_calls",
    "plot_daily_cost",
    "plot_edge_savings",
    "plot_month_change",
    "plot_payload_sizes",
    "plot_trend",
    "publish_month",
    "reopen_month",
    "tenant_days",
    "tenant_operations",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'metering' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:
    from metering.config import Config, load_config
    from metering.errors import (
        ConfigError,
        EmptyMonthError,
        InputError,
        MeteringError,
        MonthClosedError,
        PublishBusyError,
        PublishError,
        UsageError,
        WarehouseBusyError,
        WarehouseError,
    )
    from metering.month import Month
    from metering.outputs import (
        MonthReport,
        billed_months,
        call_rates,
        chart,
        export,
        month_changes,
        month_report,
        month_trend,
        tenant_days,
        tenant_operations,
    )
    from metering.period import close_month, diff, health, publish_month, reopen_month
    from metering.pipeline import bill
    from metering.publish import Published
    from metering.rate import Bill
    from metering.rate.money import amount_text, minor_units
    from metering.report.charts import (
        alt_text,
        plot_cost_per_tenant,
        plot_daily_calls,
        plot_daily_cost,
        plot_edge_savings,
        plot_month_change,
        plot_payload_sizes,
        plot_trend,
    )
    from metering.schemas import BillResult

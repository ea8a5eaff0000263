"""meter: per-tenant cost metering and chargeback for the RDS Data API."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

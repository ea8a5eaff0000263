"""Hypothesis strategies the rate tests share."""

from __future__ import annotations

from hypothesis import strategies as st

# Billed units per tenant: 1 to 30 tenants, up to 5 billion units each.
tenant_units = st.dictionaries(
    st.text("abcdefghij_", min_size=1, max_size=6),
    st.integers(1, 5_000_000_000),
    min_size=1,
    max_size=30,
)

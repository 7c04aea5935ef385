"""Demand spikes: a daily rule over each product's own history (above its P95 and its own noise),
store-wide events, and the rule's intraday warning.

`rule` (pure arithmetic), `nb` (the negative binomial's tail), `detector` (a day's or a
range's run), `intraday` (today's emerging spikes), `complete` (is a day complete?),
`quality` (precision and recall against simulated spikes). The daily demand and its history
live in the store (`shopstream.store.demand_history`). docs/spikes.md describes all of it.
"""

from __future__ import annotations

from typing import Any

from shopstream.config import Settings
from shopstream.spikes.rule import Rule

__all__ = ["Rule", "rule_from"]


def rule_from(settings: Settings, **overrides: Any) -> Rule:
    """The rule the settings describe (SHOPSTREAM_SPIKE_*), with overrides (None ignored)."""
    values: dict[str, Any] = {
        "lookback_days": settings.spike_lookback_days,
        "min_history_days": settings.spike_min_history_days,
        "min_units": settings.spike_min_units,
        "min_orders": settings.spike_min_orders,
        "margin": settings.spike_margin,
        "alpha": settings.spike_alpha,
        "store_margin": settings.spike_store_margin,
        "weekday": settings.spike_weekday,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Rule(**values)

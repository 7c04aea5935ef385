"""How the dashboard writes numbers, money, changes and times (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

__all__ = ["ago", "change", "local_time", "money", "number"]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def money(cents: float | None, currency: str) -> str:
    """`$1,234.56`, `€1,234.56`, or `1,234.56 CHF` for a currency without a symbol here."""
    if cents is None:
        return "–"
    amount = cents / 100
    symbol = _SYMBOLS.get(currency.upper())
    sign = "-" if amount < 0 else ""
    if symbol:
        return f"{sign}{symbol}{abs(amount):,.2f}"
    return f"{amount:,.2f} {currency.upper()}"


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def change(current: float | None, previous: float | None) -> str | None:
    """The change from `previous` to `current` as `+12.5%`; `new` when there was nothing
    before; None when either is unknown (no delta shown)."""
    if current is None or previous is None:
        return None
    if previous == 0:
        return "new" if current else "±0%"
    pct = (current - previous) / previous * 100
    return f"{pct:+.1f}%"


def local_time(at: datetime | None, tz: tzinfo, with_date: bool = False) -> str:
    if at is None:
        return "–"
    local = at.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if with_date else "%H:%M:%S %Z")


def ago(at: datetime | None, now: datetime) -> str:
    """`4 s ago`, `3 min ago`, `2 h ago`, `5 d ago`."""
    if at is None:
        return "never"
    seconds = max(0.0, (now - at) / timedelta(seconds=1))
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"

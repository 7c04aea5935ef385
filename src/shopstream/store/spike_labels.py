"""Labels users give detected spikes (`shopstream spikes label`, the Demand spikes page).

One document, `spike_labels` `"labels"`: `days` → day → product id → {label, note, by, at}.
A label is set or cleared with one `$set`/`$unset` of its own field, so two users labelling at
once never lose each other's label (no read-modify-write); the detector and the page read the
whole document with one point lookup (labels are made by hand: thousands at most).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.database import Database

from shopstream.domain.documents import SPIKE_LABELS, SPIKE_LABELS_KEY
from shopstream.store.errors import translated
from shopstream.store.records import LABELS, SpikeLabel

__all__ = ["labels", "set_label"]


@translated
def labels(db: Database[dict[str, Any]]) -> list[SpikeLabel]:
    """Every label, by day then product id."""
    doc = db[SPIKE_LABELS].find_one({"_id": SPIKE_LABELS_KEY}) or {}
    found = []
    for day, products in sorted((doc.get("days") or {}).items()):
        for pid, entry in sorted(products.items(), key=lambda item: int(item[0])):
            found.append(
                SpikeLabel(
                    day=day,
                    product_id=int(pid),
                    label=str(entry.get("label")),
                    note=str(entry.get("note") or ""),
                    by=str(entry.get("by") or ""),
                    at=entry.get("at"),
                )
            )
    return found


@translated
def set_label(
    db: Database[dict[str, Any]],
    day: str,
    product_id: int,
    label: str | None,
    note: str = "",
    by: str = "",
    at: datetime | None = None,
) -> None:
    """Labels a day's spike of a product (`label` one of `LABELS`), or clears its label (None)."""
    field = f"days.{day}.{int(product_id)}"
    coll = db[SPIKE_LABELS]
    if label is None:
        coll.update_one({"_id": SPIKE_LABELS_KEY}, {"$unset": {field: ""}})
        return
    if label not in LABELS:
        raise ValueError(f"a label is one of {', '.join(LABELS)}, not {label!r}")
    entry = {"label": label, "note": note, "by": by, "at": at}
    coll.update_one({"_id": SPIKE_LABELS_KEY}, {"$set": {field: entry}}, upsert=True)

"""The document store (the MongoDB role: FerretDB v1 here, or a real MongoDB).

Everything outside this package holds a `protocols.Store` from `ferretdb.open_store(settings)`
and calls its parts (orders, rollups, demand, spikes, alerts, leases, status, dead letters); values
cross as `records` dataclasses, the domain's deltas and the order documents the transform
builds. Every FerretDB workaround lives in the modules behind `ferretdb.FerretStore`, each
documenting its layout; docs/architecture.md draws the layers and says how to add another
implementation. `tests/unit/test_layers.py` checks that nothing else imports pymongo.
"""

"""The document store (the MongoDB role: FerretDB v1 here, or a real MongoDB).

Issue 19 moves every read and write of the document store behind this package: the client
(`client.connect`, the one place a `MongoClient` is built) and the writes FerretDB v1 does fast
(`mongo`: insert-first, point lookups, concurrent replaces) are here so far; the rollup,
customer-set, history, demand and status layouts follow (docs/architecture.md, when written,
and docs/status.md say how far that has gone). `tests/unit/test_layers.py` lists the modules
outside this package that still import pymongo, and fails on a new one.
"""

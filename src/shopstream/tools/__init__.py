"""The ground floor: what shopstream downloads and builds for itself.

Maven jars (Kafka, Spark's connectors, s3a), the FerretDB binary built from the Go module
proxy, PostgreSQL's binaries, and the tool virtualenvs (Airflow, dbt), all cached under
`SHOPSTREAM_CACHE_DIR`. Nothing here imports the rest of shopstream: the stack, the streaming
job and the warehouse build on it (`tests/unit/test_layers.py`).
"""

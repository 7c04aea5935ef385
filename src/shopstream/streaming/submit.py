"""The job as a `spark-submit` application, for a Spark cluster (or any master).

    spark-submit --master spark://host:7077 --jars "$(shopstream stream --print-jars)" \\
        "$(python -c 'import shopstream.streaming.submit as m; print(m.__file__)')" [--once]

Settings come from `SHOPSTREAM_*` variables (or `.env`) as everywhere else; the master and
jars come from spark-submit. Executors run the sink code, so the shopstream package and its
dependencies must be installed on every worker (`pip install` the same wheel).
"""

from __future__ import annotations

import sys

from shopstream.cli.common import load_settings
from shopstream.cli.stream import run_stream


def main(argv: list[str]) -> None:
    unknown = [a for a in argv if a != "--once"]
    if unknown:
        raise SystemExit(f"unknown arguments {unknown}; the only option is --once")
    run_stream(load_settings(service=True), once="--once" in argv)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The job as a `spark-submit` application, for a Spark cluster (or any master).

    spark-submit --master spark://host:7077 --jars "$(shopstream stream --print-jars)" \\
        "$(python -c 'import shopstream.streaming.submit as m; print(m.__file__)')" [--once]

Settings come from `SHOPSTREAM_*` variables (or `.env`) as everywhere else; the master and
jars come from spark-submit. Executors run the sink code, so the shopstream package and its
dependencies must be installed on every worker (`pip install` the same wheel).
"""

from __future__ import annotations

import sys

from shopstream.config import get_settings
from shopstream.logs import configure_logging
from shopstream.streaming.run import run_job


def main(argv: list[str]) -> None:
    unknown = [a for a in argv if a != "--once"]
    if unknown:
        raise SystemExit(f"unknown arguments {unknown}; the only option is --once")
    settings = get_settings()
    configure_logging(settings.log_level)
    run_job(settings, once="--once" in argv)


if __name__ == "__main__":
    main(sys.argv[1:])

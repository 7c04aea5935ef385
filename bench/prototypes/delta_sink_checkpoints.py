"""Per-batch trigger-to-commit of the prototype's two queries, read from their checkpoints
(`python delta_sink_checkpoints.py <the prototype's temp dir>`), for a run stopped before its
own summary. Spark keeps the last 100 batches of a checkpoint, so these are the last 100."""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any


def query(root: Path, fmt: str) -> dict[str, Any]:
    ck = root / fmt / "checkpoint"
    commits = sorted(int(p.name) for p in (ck / "commits").iterdir() if p.name.isdigit())
    rows = []
    for batch in commits:
        offsets = ck / "offsets" / str(batch)
        if offsets.exists():
            triggered = json.loads(offsets.read_text().splitlines()[1])["batchTimestampMs"] / 1000
            done = (ck / "commits" / str(batch)).stat().st_mtime
            rows.append((batch, triggered, done))
    took = [done - triggered for _, triggered, done in rows]
    cycles = [b[2] - a[2] for a, b in itertools.pairwise(rows)]
    log = root / fmt / "orders" / ("_delta_log" if fmt == "delta" else "_spark_metadata")
    files = [p for p in log.rglob("*") if p.is_file()]
    return {
        "batches": f"{rows[0][0]}-{rows[-1][0]}",
        "trigger_to_commit_median_s": round(statistics.median(took), 3),
        "p95_s": round(sorted(took)[int(0.95 * (len(took) - 1))], 3),
        "cycle_median_s": round(statistics.median(cycles), 3),
        "log_files": len(files),
        "log_bytes": sum(p.stat().st_size for p in files),
    }


if __name__ == "__main__":
    where = Path(sys.argv[1])
    print(json.dumps({fmt: query(where, fmt) for fmt in ("parquet", "delta")}, indent=1))

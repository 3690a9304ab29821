"""Run every benchmark in turn (``make bench`` calls ``python -m benchmarks``).

Arguments are passed to each benchmark, e.g. ``python -m benchmarks --events 20000``. The exit
status is the worst of theirs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# Each module has main(argv) -> exit status and writes bench-results/<name>.json.
BENCHMARKS = (
    "benchmarks.bench_ingest",
    "benchmarks.bench_ingest_program",
    "benchmarks.bench_coupons",
    "benchmarks.bench_notifications",
    "benchmarks.bench_loyalty",
    "benchmarks.bench_campaigns",
    "benchmarks.bench_http",
    "benchmarks.bench_readcache",
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return max(importlib.import_module(name).main(args) for name in BENCHMARKS)


if __name__ == "__main__":
    raise SystemExit(main())

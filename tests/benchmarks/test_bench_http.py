"""The HTTP benchmark runs end to end for a second per step, at low rates, and reports every
measurement it claims: a real ``loyalty-engine serve --workers 2`` on PostgreSQL and Redis, the
load generator in a process of its own. Shapes and counts only; timings are not checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# benchmarks/ is a top-level folder of the repository, not an installed package.
REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import bench_http, http_wrk  # noqa: E402
from tests.conftest import PG_ADMIN_URL, REDIS_URL  # noqa: E402

# The benchmark clears the engine's keys in its Redis database: one no test process shares.
BENCH_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/14"


def test_the_http_benchmark_reports_every_measurement_at_low_rates(
    tmp_path: Path, redis_url: str
) -> None:
    del redis_url  # the fixture fails the test, saying how to start Redis, if it is down
    output = tmp_path / "http.json"

    status = bench_http.main([
        "--seconds", "1", "--rates", "10,20", "--step-seconds", "1", "--concurrency", "2",
        "--event-seconds", "1", "--batch", "50", "--clients", "2", "--event-members", "30",
        "--calls", "20", "--database-url", PG_ADMIN_URL, "--redis-url", BENCH_REDIS_URL,
        "--output", str(output),
    ])  # fmt: skip

    report = json.loads(output.read_text())
    results = report["results"]
    assert status == 0  # without --check a missed target is reported, not an exit status
    assert results["served_answer"] == results["in_process"]["answer"]
    assert results["in_process_uncached"]["answer"] == results["in_process"]["answer"]
    ceiling = results["ceiling"]
    assert ceiling["ok"] > 0 and ceiling["errors"] == 0
    assert report["share_of_ceiling"] > 0
    assert results["served_answer"]["coupons"] == 50
    assert [run["rate"] for run in results["open_loop"]] == [10, 20]
    for run in results["open_loop"]:
        assert (run["sent"], run["ok"], run["errors"]) == (run["rate"], run["rate"], 0)
        assert run["latency"]["p50_ms"] <= run["latency"]["p99_ms"]
        assert set(run["http_vs_in_process"]) == {"p50", "p99"}
    [closed] = results["closed_loop"]
    assert closed["concurrency"] == 2 and closed["ok"] > 0 and closed["errors"] == 0
    # wrk's closed loop runs where wrk is installed (Debian's package), else is left out
    wrk = results["closed_loop_wrk"]
    assert len(wrk) == (1 if http_wrk.available() else 0)
    for run in wrk:
        assert run["concurrency"] == 2 and run["ok"] > 0 and run["errors"] == 0
        assert run["latency"]["p50_ms"] <= run["latency"]["p99_ms"]
    events = results["events"]
    assert events["errors"] == 0 and events["rejected"] == 0
    assert events["accepted"] == events["batches_ok"] * 50 > 0
    assert report["max_sustained_per_s"]["per_s"] > 0
    assert len(report["targets"]) == 3
    assert report["machine"]["nproc"] >= 1 and report["machine"]["cpu_model"]
    # The seeded database is analysed before the load, as autovacuum would have done.
    assert report["machine"]["vacuum_analyze_s"] >= 0
    assert report["machine"]["postgresql_autovacuum"] in {"on", "off"}

"""The campaigns benchmark runs end to end at a tiny scale and checks the work it measures.

The benchmark raises ``BenchmarkError`` when a measured run did not do what it claims (every
abandoned cart claimed and enrolled once, the SQL audience equal to the Python path on the
sample and on whole ranges, one advance message per batch, every due step run by the workers);
this run at a tiny scale exercises all of it against the real PostgreSQL, Redis and workers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# benchmarks/ is a top-level folder of the repository, not an installed package.
REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import bench_campaigns  # noqa: E402
from tests.conftest import PG_ADMIN_URL, REDIS_URL  # noqa: E402

# The benchmark counts the messages on its queues, so it gets a Redis database that no other
# test process shares (tests use 9 and up, one per xdist worker; benchmarks 12 and 13).
BENCH_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/15"


def test_the_campaigns_benchmark_measures_all_three_targets_at_a_tiny_scale(
    tmp_path: Path, redis_url: str
) -> None:
    del redis_url  # the fixture fails the test, saying how to start Redis, if it is down
    output, page = tmp_path / "campaigns.json", tmp_path / "campaigns.md"

    status = bench_campaigns.main([
        "--members", "3000", "--orders", "6000", "--carts", "3000", "--abandoned", "30",
        "--steps", "200", "--sample", "100", "--workers", "1", "--threads", "1",
        "--database-url", PG_ADMIN_URL, "--redis-url", BENCH_REDIS_URL,
        "--output", str(output), "--markdown", str(page),
    ])  # fmt: skip

    report = json.loads(output.read_text())
    results = report["results"]
    assert status == 0  # without --check a missed target is reported, not an exit status
    assert results["cart_scan"]["claimed"] == results["cart_scan"]["journeys"] == 30
    assert results["audience"]["members_in_audience"] > 0
    assert results["audience"]["translated_whole"]  # the example's audience is all SQL
    assert results["steps"]["steps"] == 200 and results["steps"]["steps_per_s"] > 0
    assert len(report["targets"]) == 3
    assert "| cart scan: 3,000 carts" in page.read_text()

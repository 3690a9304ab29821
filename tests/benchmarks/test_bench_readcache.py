"""The read cache's benchmark runs end to end at tiny sizes on real PostgreSQL and reports every
measurement it claims, each with the triggers and without them. Shapes and counts only;
timings are not checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# benchmarks/ is a top-level folder of the repository, not an installed package.
REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks import bench_readcache  # noqa: E402
from tests.conftest import PG_ADMIN_URL  # noqa: E402

WRITERS = ("bulk_update", "single_row_inserts", "concurrent_writers", "ingest")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    output = tmp_path_factory.mktemp("bench") / "readcache.json"
    status = bench_readcache.main(
        ["--quick", "--database-url", PG_ADMIN_URL, "--output", str(output)]
    )
    assert status == 0
    return json.loads(output.read_text())


@pytest.mark.parametrize("name", WRITERS)
def test_each_writer_measurement_runs_as_often_with_the_triggers_as_without(
    report: dict, name: str
) -> None:
    found = report["results"][name]
    runs = report["scale"]["runs"]
    assert len(found["with"]["runs"]) == len(found["without"]["runs"]) == runs
    assert found["ratio"] > 0
    assert set(report["ratios"][name]) == {"wall", "server_cpu"}


@pytest.mark.parametrize("name", WRITERS)
def test_only_the_runs_with_the_triggers_send_notifications(report: dict, name: str) -> None:
    found = report["results"][name]
    assert all(run["notifications"] > 0 for run in found["with"]["runs"])
    assert all(run["notifications"] == 0 for run in found["without"]["runs"])


def test_every_statement_and_transaction_announces_its_own_keys(report: dict) -> None:
    scale, results = report["scale"], report["results"]
    inserts = results["single_row_inserts"]
    assert inserts["with"]["notifications_per_run"] == scale["inserts"]
    assert set(inserts["us_per_statement"]) == {"with", "without"}
    writers = results["concurrent_writers"]
    assert writers["with"]["notifications_per_run"] == scale["writers"] * scale["commits"]
    assert set(writers["transactions_per_s"]) == {"with", "without"}
    bulk = results["bulk_update"]
    assert (bulk["rows"], bulk["members"]) == (scale["lots"], scale["members"])
    assert bulk["with"]["everything_per_run"] == 0  # fewer than 8,000 members: named
    assert results["ingest"]["events_per_s"]["with"] > 0


def test_the_listener_applies_every_notification_before_its_barrier(report: dict) -> None:
    listener, scale = report["results"]["listener"], report["scale"]
    assert listener["notifications"] == scale["notifications"]
    assert listener["keys_per_notification"] == scale["keys"]
    assert listener["notifications_per_s"] > 0
    assert listener["entries_dropped"] > 0
    assert report["machine"]["nproc"] >= 1 and "load_average_1m_at_end" in report["machine"]

"""Workers and schedulers say on start, at the CLI's default log level, which broker (password
hidden), queues and jobs they serve."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq.cli
import pytest
from typer.testing import CliRunner

import scheduler
import worker
from core.cli import app
from core.settings import Settings

runner = CliRunner()
EXAMPLE_PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "program"
SECRET_REDIS = "redis://:s3cret@127.0.0.1:6379/15"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The CLI with the project's example program, its logging at the default (WARNING)."""
    monkeypatch.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{tmp_path / 'loyalty.db'}")
    monkeypatch.delenv("LOYALTY_REDIS_URL", raising=False)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(EXAMPLE_PROGRAM))
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    yield tmp_path
    root.setLevel(level)
    worker.setup(Settings(_env_file=None, redis_url=None))  # type: ignore[call-arg]


@pytest.fixture
def fired(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The scheduler returns at once (no signal handlers installed), saying what it would fire."""
    runs: list[list[str]] = []

    def run(jobs: Any, **_options: Any) -> int:
        runs.append([job.id for job in jobs])
        return 0

    monkeypatch.setattr(scheduler, "run_scheduler", run)
    monkeypatch.setattr(scheduler, "_stop_on_signals", threading.Event)
    return runs


def start_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == worker.start_log.name]


def test_an_embedded_scheduler_names_the_in_process_broker_its_queues_and_jobs(
    env: Path, fired: list[list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    result = runner.invoke(app, ["scheduler"])

    assert result.exit_code == 0, result.output
    [job_ids] = fired
    assert "core.heartbeat" in job_ids
    queues = ", ".join(worker.queue_names(worker.get_broker()))
    assert {"coupons", "events", "jobs"} <= set(queues.split(", "))
    assert start_lines(caplog) == [
        "scheduler starting: broker in-process (no LOYALTY_REDIS_URL); "
        f"queues {queues}; {len(job_ids)} jobs: {', '.join(job_ids)}; "
        "an in-process worker runs the queues"
    ]


def test_a_scheduler_on_redis_shows_the_url_without_its_password(
    env: Path,
    fired: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("LOYALTY_REDIS_URL", SECRET_REDIS)

    result = runner.invoke(app, ["scheduler"])

    assert result.exit_code == 0, result.output
    [line] = start_lines(caplog)
    assert line.startswith("scheduler starting: broker Redis at redis://:***@127.0.0.1:6379/15;")
    assert "in-process" not in line
    assert "s3cret" not in caplog.text


def test_a_worker_names_its_broker_queues_and_size_before_handing_over_to_dramatiq(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOYALTY_REDIS_URL", SECRET_REDIS)
    handed_over: list[Any] = []

    def run_dramatiq(args: Any) -> int:
        handed_over.append(args)
        return 0

    monkeypatch.setattr(dramatiq.cli, "main", run_dramatiq)

    result = runner.invoke(app, ["worker", "--processes", "1", "--threads", "3"])

    assert result.exit_code == 0, result.output
    assert len(handed_over) == 1
    queues = ", ".join(worker.queue_names(worker.get_broker()))
    assert start_lines(caplog) == [
        "worker starting: broker Redis at redis://:***@127.0.0.1:6379/15; "
        f"queues {queues}; 1 processes of 3 threads"
    ]
    assert "s3cret" not in caplog.text


def test_start_lines_show_at_the_default_level_where_progress_messages_do_not(
    env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logging.getLogger("core.scheduling").info("a progress message")

    line = worker.log_start("worker", Settings(_env_file=None), worker.setup())  # type: ignore[call-arg]

    assert [r.getMessage() for r in caplog.records] == [line]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://app:p%40ss@cache:6379/0", "redis://app:***@cache:6379/0"),
        (
            "rediss://cache/0?password=s3cret&ssl_cert_reqs=none",
            "rediss://cache/0?password=***&ssl_cert_reqs=none",
        ),
        ("unix:///run/redis.sock?password=s3cret", "unix:///run/redis.sock?password=***"),
    ],
)
def test_a_redis_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert worker.hide_password(url) == shown

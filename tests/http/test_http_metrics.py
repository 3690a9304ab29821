"""``GET /metrics`` on a real uvicorn (SQLite and PostgreSQL): the intake's event counters, the
checkout latency histogram, the database gauges against rows seeded here, ``serve --workers 2``
summing its processes, and ``loyalty-engine worker`` serving dramatiq's Prometheus metrics."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_api import Api, served
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, insert, select

from campaigns.tables import journeys
from core.events.tables import events as stored_events
from core.events.tables import handler_failures
from core.metrics import DatabaseGauge, database_gauges
from core.settings import Settings
from notifications.tables import messages

ENGINE_COMMAND = str(Path(sys.executable).with_name("loyalty-engine"))
VALIDATE = "/v1/checkout/validate"
RELEASE = "/v1/checkout/reservations/{reservation_id}/release"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(base: str) -> Samples:
    answer = httpx.get(f"{base}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def events_counted(samples: Samples, source: str = "api") -> dict[str, float]:
    return {
        outcome: value(samples, "loyalty_events_ingested_total", source=source, outcome=outcome)
        for outcome in ("accepted", "duplicate", "rejected")
    }


def registered(member_id: str, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"reg-{member_id}",
        "type": "member.registered",
        "occurred_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "member_id": member_id,
        "data": {"first_name": "Mei", "locale": "zh-CN"},
    }


@pytest.fixture
def api(db_url: str, engine: Engine, examples: Path, tmp_path: Path) -> Iterator[Api]:
    with served(db_url, examples, tmp_path) as api:
        yield api


def test_metrics_need_no_key_and_are_the_prometheus_text_format(api: Api) -> None:
    plain = api.get("/metrics", scope=None)
    openmetrics = api.get(
        "/metrics", scope=None, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )

    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {family.name for family in text_string_to_metric_families(plain.text)}
    assert {
        "loyalty_events_ingested",
        "loyalty_checkout_request_seconds",
        "loyalty_handler_failures",
        "loyalty_messages",
        "loyalty_journeys_active",
        "loyalty_metrics_database_up",
    } <= families
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


def test_metrics_are_absent_when_turned_off(
    db_url: str, engine: Engine, examples: Path, tmp_path: Path
) -> None:
    with served(db_url, examples, tmp_path, api_metrics=False) as api:
        answer = api.get("/metrics", scope=None)

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_posted_events_move_the_counters_by_what_the_intake_did(api: Api) -> None:
    before = events_counted(scrape(api.base))

    first = api.post("/v1/events", json=[registered("m-ann")], scope="events")
    second = api.post(
        "/v1/events", json=[registered("m-ann"), {"id": "bad", "type": "nope"}], scope="events"
    )

    after = events_counted(scrape(api.base))
    assert first.json()["accepted"] == 1
    assert (second.json()["duplicate"], second.json()["rejected"]) == (1, 1)
    moved = {outcome: after[outcome] - before[outcome] for outcome in after}
    assert moved == {"accepted": 1, "duplicate": 1, "rejected": 1}


def test_a_replayed_request_is_not_counted_again(api: Api) -> None:
    headers, body = {"Idempotency-Key": "batch-1"}, [registered("m-bo")]
    api.post("/v1/events", json=body, scope="events", headers=headers)
    before = events_counted(scrape(api.base))

    replay = api.post("/v1/events", json=body, scope="events", headers=headers)

    assert replay.headers["idempotent-replayed"] == "true"
    assert events_counted(scrape(api.base)) == before


def test_every_checkout_endpoint_has_a_histogram_and_a_validate_is_observed_once(
    api: Api,
) -> None:
    api.post("/v1/events", json=[registered("m-cy")], scope="events")
    cart = [{"sku": "T-2", "name": "Dragon Well", "category": "tea", "price": "250.00", "qty": 2}]
    before = scrape(api.base)

    answer = api.post(VALIDATE, json={"member_id": "m-cy", "items": cart}, scope="checkout")
    api.post("/v1/checkout/no-such-endpoint", json={}, scope="checkout")

    after = scrape(api.base)
    assert answer.status_code == 200, answer.text
    count = "loyalty_checkout_request_seconds_count"
    endpoints = {dict(labels)["endpoint"] for labels in series(before, count)}
    assert endpoints == {VALIDATE, "/v1/checkout/reserve", RELEASE}
    assert value(after, count, endpoint=VALIDATE) == value(before, count, endpoint=VALIDATE) + 1
    for other in ("/v1/checkout/reserve", RELEASE):
        assert value(after, count, endpoint=other) == value(before, count, endpoint=other)
    assert set(series(after, count)) == set(series(before, count))  # no series for a 404 path
    took = value(after, "loyalty_checkout_request_seconds_sum", endpoint=VALIDATE) - value(
        before, "loyalty_checkout_request_seconds_sum", endpoint=VALIDATE
    )
    assert took > 0
    buckets = {
        dict(labels)["le"]: v
        for labels, v in series(after, "loyalty_checkout_request_seconds_bucket").items()
        if dict(labels)["endpoint"] == VALIDATE
    }
    assert {"0.001", "0.01", "0.1", "1.0", "+Inf"} <= set(buckets)
    assert buckets["+Inf"] == value(after, count, endpoint=VALIDATE)


def test_a_release_is_observed_under_its_path_template_not_its_id(api: Api) -> None:
    count = "loyalty_checkout_request_seconds_count"
    before = value(scrape(api.base), count, endpoint=RELEASE)

    api.post("/v1/checkout/reservations/res-unknown/release", scope="checkout")

    after = scrape(api.base)
    assert value(after, count, endpoint=RELEASE) == before + 1
    assert not any("res-unknown" in dict(labels).get("endpoint", "") for (_, labels) in after)


def test_the_database_gauges_count_the_rows_there_are(api: Api) -> None:
    now = datetime.now(UTC)
    with api.runtime.engine.begin() as conn:
        conn.execute(
            insert(messages),
            [
                _message("1", "email", "sent", now),
                _message("2", "email", "sent", now),
                _message("3", "email", "queued", now),
                _message("4", "sms", "failed", now),
                _message("5", None, "suppressed", now),
            ],
        )
        conn.execute(
            insert(journeys),
            [
                _journey("j1", "cart-rescue", "m-1", "active", now),
                _journey("j2", "cart-rescue", "m-2", "active", now),
                _journey("j3", "cart-rescue", "m-3", "completed", now),
                _journey("j4", "welcome", "m-1", "active", now),
                _journey("j5", "welcome", "m-2", "exited", now),
            ],
        )
        conn.execute(
            insert(handler_failures),
            [
                _failure("e1", "loyalty.earn", "failed", now),
                _failure("e2", "loyalty.earn", "waiting", now),
                _failure("e3", "loyalty.earn", "waiting", now),
                _failure("e4", "coupons.redeem", "resolved", now),
            ],
        )

    samples = scrape(api.base)

    assert _gauge(samples, "loyalty_messages") == {
        (("channel", "email"), ("status", "sent")): 2,
        (("channel", "email"), ("status", "queued")): 1,
        (("channel", "sms"), ("status", "failed")): 1,
        (("channel", "none"), ("status", "suppressed")): 1,
    }
    assert _gauge(samples, "loyalty_journeys_active") == {
        (("campaign", "cart-rescue"),): 2,
        (("campaign", "welcome"),): 1,
    }
    assert _gauge(samples, "loyalty_handler_failures") == {
        (("handler", "loyalty.earn"), ("status", "failed")): 1,
        (("handler", "loyalty.earn"), ("status", "waiting")): 2,
        (("handler", "coupons.redeem"), ("status", "resolved")): 1,
    }
    assert value(samples, "loyalty_metrics_database_up") == 1


def test_a_gauge_that_cannot_be_read_is_left_out_logged_and_flagged(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import core.http.metrics

    def broken(conn: object) -> list[Any]:
        raise RuntimeError("no such table")

    gauges = [DatabaseGauge("loyalty_broken", "fails", ("x",), broken), *database_gauges]
    monkeypatch.setattr(core.http.metrics, "database_gauges", gauges)
    with api.runtime.engine.begin() as conn:
        conn.execute(insert(messages), [_message("1", "push", "sent", datetime.now(UTC))])

    with caplog.at_level(logging.ERROR, logger="core.http.metrics"):
        samples = scrape(api.base)

    assert value(samples, "loyalty_metrics_database_up") == 0
    assert not series(samples, "loyalty_broken")
    assert _gauge(samples, "loyalty_messages") == {(("channel", "push"), ("status", "sent")): 1}
    assert any("loyalty_broken" in record.getMessage() for record in caplog.records)


def test_serve_with_two_workers_sums_their_counters(
    pg_url: str, pg_engine: Engine, examples: Path, tmp_path: Path
) -> None:
    port = _free_port()
    env = _env(pg_url, examples, tmp_path) | {"TMPDIR": str(tmp_path)}  # the metrics dir here
    command = [ENGINE_COMMAND, "serve", "--port", str(port), "--workers", "2"]
    keys = _events_key(pg_url, examples, tmp_path)
    base = f"http://127.0.0.1:{port}"
    with _process(command, env, tmp_path / "serve.log") as server:
        _wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, server)
        (directory,) = tmp_path.glob("loyalty-metrics-*")
        sent = 0
        for round_ in range(25):  # until both workers have counted some (the kernel decides)
            batch = [registered(f"m-{round_}-{i}") for i in range(8)]
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda e: _post_event(base, keys, e), batch))
            assert all(a.status_code == 200 and a.json()["accepted"] == 1 for a in answers)
            sent += len(batch)
            if len(_accepted_by_process(directory)) >= 2:
                break
        per_process = _accepted_by_process(directory)
        scrapes = [events_counted(scrape(base))["accepted"] for _ in range(6)]
    assert not directory.exists()  # removed when serve stops

    assert len(per_process) == 2, per_process
    assert sum(per_process.values()) == sent
    assert scrapes == [sent] * 6  # whichever worker answered


def test_the_worker_serves_dramatiqs_metrics_and_its_intake_counts(
    pg_url: str, pg_engine: Engine, redis_url: str, examples: Path, tmp_path: Path
) -> None:
    import worker
    from core.events.actors import ingest_event

    port = _free_port()
    env = _env(pg_url, examples, tmp_path) | {
        "LOYALTY_REDIS_URL": redis_url,
        "LOYALTY_WORKER_METRICS_PORT": str(port),
        "TMPDIR": str(tmp_path),
    }
    command = [ENGINE_COMMAND, "--verbose", "worker", "--processes", "2", "--threads", "1"]
    worker.setup(Settings(_env_file=None, database_url=pg_url, redis_url=redis_url))  # type: ignore[call-arg]
    try:
        with _process(command, env, tmp_path / "worker.log") as process:
            log = tmp_path / "worker.log"
            _wait_for(lambda: log.read_text().count("ready for action") >= 2, process)
            for i in range(6):
                ingest_event.send(registered(f"m-w{i}"))
            ingest_event.send({"id": "bad", "type": "nope"})
            metrics_url = f"http://127.0.0.1:{port}/metrics"

            def counted() -> bool:
                samples = parse(httpx.get(metrics_url).text)
                return value(samples, "dramatiq_messages_total", **_ingest_labels()) == 7

            _wait_for(counted, process)
            samples = parse(httpx.get(metrics_url).text)
            (directory,) = tmp_path.glob("loyalty-worker-metrics-*")
        start_line = log.read_text()
    finally:
        worker.setup(Settings(_env_file=None, redis_url=None))  # type: ignore[call-arg]

    assert f"metrics http://127.0.0.1:{port}/metrics" in start_line
    assert value(samples, "dramatiq_message_errors_total", **_ingest_labels()) == 0
    assert value(samples, "dramatiq_message_duration_milliseconds_count", **_ingest_labels()) == 7
    assert events_counted(samples, source="actor") == {"accepted": 6, "duplicate": 0, "rejected": 1}
    with pg_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(stored_events)) == 6
    assert not directory.exists()  # removed when the worker stops


def test_a_worker_metrics_port_in_use_is_refused_naming_the_setting(
    pg_url: str, redis_url: str, examples: Path, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(pg_url, examples, tmp_path) | {
            "LOYALTY_REDIS_URL": redis_url,
            "LOYALTY_WORKER_METRICS_PORT": str(port),
        }
        result = subprocess.run(
            [ENGINE_COMMAND, "worker"], env=env, cwd=tmp_path, capture_output=True, timeout=60
        )

    assert result.returncode == 1
    error = " ".join(result.stderr.decode().split())
    assert "LOYALTY_WORKER_METRICS_PORT" in error and f"127.0.0.1:{port}" in error


# --- helpers -------------------------------------------------------------------------------


def _gauge(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(labels)): v for labels, v in series(samples, name).items()}


def _message(n: str, channel: str | None, status: str, now: datetime) -> dict[str, Any]:
    return {
        "message_id": f"msg_{n}",
        "dedupe_key": f"test:{n}",
        "member_id": "m-1",
        "template_id": "welcome",
        "kind": "marketing",
        "channel": channel,
        "status": status,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _journey(
    journey_id: str, campaign: str, member: str, status: str, now: datetime
) -> dict[str, Any]:
    return {
        "journey_id": journey_id,
        "campaign_id": campaign,
        "member_id": member,
        "enrolment_key": f"{campaign}:{member}:{journey_id}",
        "version": "v1",
        "arm": "main",
        "status": status,
        "attempts": 0,
        "context": {},
        "entered_at": now,
        "updated_at": now,
    }


def _failure(event_id: str, handler: str, status: str, now: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "handler": handler,
        "member_id": "m-1",
        "event_type": "order.paid",
        "occurred_at": now,
        "status": status,
        "error": "ZeroDivisionError: division by zero",
        "attempts": 1,
        "first_failed_at": now,
        "next_attempt_at": now,
    }


def _ingest_labels() -> dict[str, str]:
    return {"queue_name": "events", "actor_name": "ingest_event"}


def _accepted_by_process(directory: Path) -> dict[str, float]:
    """Accepted events each serving process counted, from its own file in the directory."""
    counted: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        for key, number, *_ in MmapedDict.read_all_values_from_file(str(path)):
            _, name, labels, *_ = json.loads(key)
            accepted = labels == {"source": "api", "outcome": "accepted"}
            if name == "loyalty_events_ingested_total" and accepted and number:
                counted[path.stem] = number
    return counted


def _post_event(base: str, key: str, event: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{base}/v1/events", json=[event], headers=headers, timeout=60)


def _events_key(pg_url: str, examples: Path, tmp_path: Path) -> str:
    from engine_api import runtime_with_keys

    _, keys = runtime_with_keys(pg_url, examples / "program", tmp_path)
    return keys["events"]


def _env(pg_url: str, examples: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    return env | {
        "LOYALTY_DATABASE_URL": pg_url,
        "LOYALTY_PROGRAM_DIR": str(examples / "program"),
        "LOYALTY_OUTBOX": str(tmp_path / "outbox.jsonl"),
    }


@contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The command in its own process group, logging to ``log``; stopped with SIGTERM to the
    parent (the whole group is killed if it has not stopped 30 s later)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()  # the parent passes it on to its processes
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                raise AssertionError(f"{command[1:]} did not stop on SIGTERM") from None


def _wait_for(done: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if done():
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError("not done within 60 s")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

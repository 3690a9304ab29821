"""Idempotency-Key on every POST, on a real uvicorn: the same request again gets the stored
answer, another request under the key a 422, and concurrent requests with one key run once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_api import Api, served
from fastapi import FastAPI
from sqlalchemy import func, select

from core.clock import FixedClock, set_clock
from core.events.tables import events
from core.http.app import create_app
from core.http.idempotency import STALE_AFTER
from core.http.tables import api_idempotency
from core.runtime import Runtime

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


class Probe:
    """A test-only ``POST /v1/probe``: counts its runs; may fail or wait to be released."""

    def __init__(self) -> None:
        self.runs = 0
        self.failures_left = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def app(self, runtime: Runtime) -> FastAPI:
        app = create_app(runtime)

        @app.post("/v1/probe")
        def probe(body: dict[str, Any]) -> dict[str, Any]:
            with self._lock:
                self.runs += 1
                run, fail = self.runs, self.failures_left > 0
                self.failures_left -= 1
            self.entered.set()
            assert self.release.wait(timeout=30)
            if fail:
                raise RuntimeError("the probe fails as told")
            return {"run": run, "echo": body}

        return app


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def api(db_url: str, engine: object, examples: Path, tmp_path: Path, probe: Probe) -> Any:
    set_clock(FixedClock(NOW))
    with served(db_url, examples, tmp_path, app=probe.app) as api:
        yield api


def event(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "content.shared",
        "occurred_at": "2026-11-19T10:00:00+08:00",
        "member_id": "m-lin",
        "data": {"channel": "wechat"},
    }


BATCH = [event(f"e-{n}") for n in range(50)]


def post_events(api: Api, key: str, body: Any = BATCH, scope: str = "events") -> httpx.Response:
    return api.post("/v1/events", json=body, scope=scope, headers={"Idempotency-Key": key})


def post_probe(api: Api, key: str | None, body: Any = None, scope: str = "admin") -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.post("/v1/probe", json=body or {"n": 1}, headers=headers, scope=scope)


def test_the_same_key_and_body_replay_the_stored_answer(api: Api) -> None:
    first = post_events(api, "k-1")
    second = post_events(api, "k-1")

    assert first.status_code == second.status_code == 200
    assert first.json()["accepted"] == 50
    assert second.json() == first.json()  # a second run would say 50 duplicates
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == first.headers["content-type"]


def test_the_same_key_with_another_body_or_path_is_a_422(api: Api, probe: Probe) -> None:
    post_events(api, "k-1")

    other_body = post_events(api, "k-1", BATCH[:10])
    other_path = post_probe(api, "k-1", scope="events")

    for answer in (other_body, other_path):
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "idempotency_key_reused"
        assert "POST /v1/events" in answer.json()["detail"]
    assert probe.runs == 0


def test_keys_are_scoped_by_api_key(api: Api) -> None:
    first = post_events(api, "k-1", scope="events")
    other_client = post_events(api, "k-1", scope="admin")

    assert first.json()["accepted"] == 50
    assert other_client.json()["duplicate"] == 50  # it ran: the events were already stored
    assert "idempotent-replayed" not in other_client.headers


def test_concurrent_requests_with_one_key_ingest_once(api: Api) -> None:
    start = threading.Barrier(8)

    def send(_: int) -> httpx.Response:
        start.wait()
        return post_events(api, "k-race")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))

    assert [a.status_code for a in answers] == [200] * 8
    assert all(a.json() == answers[0].json() for a in answers)
    assert answers[0].json()["accepted"] == 50
    assert sum("idempotent-replayed" not in a.headers for a in answers) == 1
    with api.runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 50


def test_a_request_waiting_for_a_running_one_gets_its_answer(api: Api, probe: Probe) -> None:
    probe.release.clear()
    start = threading.Barrier(6)

    def send(_: int) -> httpx.Response:
        start.wait()
        return post_probe(api, "k-wait")

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(send, n) for n in range(6)]
        assert probe.entered.wait(timeout=30)
        probe.release.set()
        answers = [future.result() for future in futures]

    assert probe.runs == 1
    assert [a.json() for a in answers] == [{"run": 1, "echo": {"n": 1}}] * 6
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 5


def test_a_request_still_running_past_the_wait_is_a_409_then_replays(
    db_url: str, engine: object, examples: Path, tmp_path: Path, probe: Probe
) -> None:
    probe.release.clear()
    with served(db_url, examples, tmp_path, app=probe.app, api_idempotency_wait="0s") as api:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(post_probe, api, "k-slow")
            assert probe.entered.wait(timeout=30)
            during = post_probe(api, "k-slow")
            probe.release.set()
            done = first.result()
        after = post_probe(api, "k-slow")

    assert during.status_code == 409
    assert during.json()["code"] == "idempotency_in_progress"
    assert during.headers["retry-after"] == "1"
    assert done.status_code == 200 and after.json() == done.json()
    assert after.headers["idempotent-replayed"] == "true"
    assert probe.runs == 1


def test_a_server_error_is_not_kept_so_a_retry_runs_again(api: Api, probe: Probe) -> None:
    probe.failures_left = 1

    failed = post_probe(api, "k-retry")
    retried = post_probe(api, "k-retry")

    assert failed.status_code == 500
    assert retried.status_code == 200 and retried.json()["run"] == 2
    assert "idempotent-replayed" not in retried.headers


def test_a_client_error_is_kept_and_replayed(api: Api) -> None:
    def bad() -> httpx.Response:
        return api.post(
            "/v1/events",
            content=b"[]]",
            scope="events",
            headers={"Idempotency-Key": "k-bad", "Content-Type": "application/json"},
        )

    first, second = bad(), bad()

    assert first.status_code == second.status_code == 400
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"


def test_an_answer_about_the_credentials_is_not_kept(api: Api) -> None:
    unauthenticated = api.post(
        "/v1/events", json=BATCH, scope=None, headers={"Idempotency-Key": "k-auth"}
    )
    forbidden = post_events(api, "k-auth", scope="checkout")
    allowed = post_events(api, "k-auth", scope="events")

    assert (unauthenticated.status_code, forbidden.status_code) == (401, 403)
    assert allowed.status_code == 200 and allowed.json()["accepted"] == 50


def test_a_key_expires_after_24_hours(api: Api, probe: Probe) -> None:
    post_probe(api, "k-old", {"n": 1})
    set_clock(FixedClock(NOW + timedelta(hours=24, seconds=1)))

    reused_later = post_probe(api, "k-old", {"n": 2})

    assert reused_later.status_code == 200
    assert reused_later.json() == {"run": 2, "echo": {"n": 2}}


def test_a_claim_left_running_by_a_dead_process_is_taken_over(api: Api, probe: Probe) -> None:
    with api.runtime.engine.begin() as conn:
        conn.execute(
            api_idempotency.insert().values(
                key_id=api.keys["admin"].split("_")[1],
                idempotency_key="k-dead",
                method="POST",
                path="/v1/probe",
                body_sha256="0" * 64,
                status="running",
                created_at=NOW - STALE_AFTER,
            )
        )

    answer = post_probe(api, "k-dead")

    assert answer.status_code == 200 and probe.runs == 1


def test_without_a_key_every_post_runs(api: Api, probe: Probe) -> None:
    post_probe(api, None)
    post_probe(api, None)

    assert probe.runs == 2


@pytest.mark.parametrize("key", ["x" * 256, "with space", "ключ"])
def test_a_malformed_key_is_a_400(api: Api, probe: Probe, key: str) -> None:
    answer = api.post("/v1/probe", json={"n": 1}, headers={"Idempotency-Key": key.encode()})

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_idempotency_key"
    assert probe.runs == 0


def test_the_schema_declares_the_header_on_every_post(api: Api) -> None:
    schema = httpx.get(f"{api.base}/openapi.json").json()

    posts: list[tuple[str, dict[str, Any]]] = [
        (path, item["post"]) for path, item in schema["paths"].items() if "post" in item
    ]
    assert posts
    for path, post in posts:
        names = [p["name"] for p in post.get("parameters", [])]
        assert names.count("Idempotency-Key") == 1, path

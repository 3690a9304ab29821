"""Load shedding on a real uvicorn: a worker answering LOYALTY_API_MAX_IN_FLIGHT requests
refuses the next /v1 request at once (503 overloaded, Retry-After: 1, problem+json), keeps
answering the operations endpoints, and takes requests again as soon as one finishes, also
one that failed."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_api import Api, served
from fastapi import FastAPI

from core.http.app import create_app
from core.http.shedding import LoadShedder
from core.runtime import Runtime

LIMIT = 2


class Gate:
    """A test-only ``GET /v1/gate``: holds each request until released; may fail."""

    def __init__(self) -> None:
        self.inside = threading.Semaphore(0)
        self.release = threading.Event()
        self.fail = False

    def app(self, runtime: Runtime) -> FastAPI:
        app = create_app(runtime)

        @app.get("/v1/gate")
        def gate() -> dict[str, Any]:
            self.inside.release()
            assert self.release.wait(timeout=30)
            if self.fail:
                raise RuntimeError("the gate fails as told")
            return {"passed": True}

        return app


def hold(api: Api, gate: Gate, pool: ThreadPoolExecutor, count: int) -> list[Any]:
    """``count`` requests inside the gate (returned as futures), each known to be in flight."""
    held = [pool.submit(api.get, "/v1/gate") for _ in range(count)]
    for _ in range(count):
        assert gate.inside.acquire(timeout=30)
    return held


def test_a_request_over_the_limit_is_a_503_at_once_and_the_next_one_passes(
    db_url: str, engine: object, examples: Path, tmp_path: Path
) -> None:
    gate = Gate()
    with served(db_url, examples, tmp_path, app=gate.app, api_max_in_flight=LIMIT) as api:
        with ThreadPoolExecutor(LIMIT) as pool:
            held = hold(api, gate, pool, LIMIT)
            refused = api.get("/v1/members/m-nobody")
            refused_post = api.post("/v1/events", json=[], scope="events")
            operations = [httpx.get(f"{api.base}{path}", timeout=30) for path in ("/livez",)]
            gate.release.set()
            answered = [future.result() for future in held]
        after = api.get("/v1/gate")

    for response in (refused, refused_post):
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        body = response.json()
        assert body["code"] == "overloaded" and "LOYALTY_API_MAX_IN_FLIGHT" in body["detail"]
    assert [r.status_code for r in operations] == [200]
    assert [r.status_code for r in answered] == [200, 200]
    assert after.status_code == 200


def test_a_failed_request_frees_its_place(
    db_url: str, engine: object, examples: Path, tmp_path: Path
) -> None:
    gate = Gate()
    gate.fail = True
    gate.release.set()
    with served(db_url, examples, tmp_path, app=gate.app, api_max_in_flight=1) as api:
        failures = [api.get("/v1/gate").status_code for _ in range(3)]
        gate.fail = False
        passed = api.get("/v1/gate")

    assert failures == [500, 500, 500]
    assert passed.status_code == 200


def test_no_limit_with_zero(db_url: str, engine: object, examples: Path, tmp_path: Path) -> None:
    gate = Gate()
    served_ = served(db_url, examples, tmp_path, app=gate.app, api_max_in_flight=0)
    with served_ as api, ThreadPoolExecutor(8) as pool:
        held = hold(api, gate, pool, 8)
        gate.release.set()
        answered = [future.result().status_code for future in held]

    assert answered == [200] * 8


def test_the_shedder_counts_only_v1_and_frees_on_errors() -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        if scope["path"] == "/v1/boom":
            raise RuntimeError("boom")

    shedder = LoadShedder(app, limit=1)

    async def run() -> None:
        for path in ("/livez", "/metrics", "/v1/members/x"):
            await shedder({"type": "http", "path": path}, None, None)
        with pytest.raises(RuntimeError):
            await shedder({"type": "http", "path": "/v1/boom"}, None, None)

    asyncio.run(run())
    assert shedder.in_flight == 0
    assert calls == ["/livez", "/metrics", "/v1/members/x", "/v1/boom"]

"""``/readyz`` on a real uvicorn (each check, and a 503 problem naming the failing ones), and
``loyalty-engine serve`` answering on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from live_server import http_runtime, live_server

from core.migrate import downgrade, upgrade


def test_readyz_reports_each_check_ok(
    db_url: str, engine: object, examples: Path, tmp_path: Path
) -> None:
    with live_server(http_runtime(db_url, examples / "program", tmp_path)) as base:
        answer = httpx.get(f"{base}/readyz")

    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "schema": {"ok": True}, "program": {"ok": True}},
    }


def test_readyz_checks_redis_when_configured(
    db_url: str, engine: object, examples: Path, tmp_path: Path, redis_url: str
) -> None:
    runtime = http_runtime(db_url, examples / "program", tmp_path, redis_url=redis_url)
    with live_server(runtime) as base:
        answer = httpx.get(f"{base}/readyz")

    assert answer.status_code == 200
    assert answer.json()["checks"]["redis"] == {"ok": True}


def test_no_program_is_a_503_naming_the_check(db_url: str, engine: object, tmp_path: Path) -> None:
    with live_server(http_runtime(db_url, tmp_path / "missing", tmp_path)) as base:
        answer = httpx.get(f"{base}/readyz")

    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == "not_ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["program"]["ok"] is False
    assert "missing" in body["detail"] and body["detail"].startswith("program:")


def test_an_unreachable_database_and_redis_are_a_503(examples: Path, tmp_path: Path) -> None:
    closed = _free_port()  # nothing listens there
    runtime = http_runtime(
        f"postgresql://postgres@127.0.0.1:{closed}/none",
        examples / "program",
        tmp_path,
        redis_url=f"redis://127.0.0.1:{closed}/0",
    )
    with live_server(runtime) as base:
        answer = httpx.get(f"{base}/readyz", timeout=60)

    checks = answer.json()["checks"]
    assert answer.status_code == 503
    assert [name for name, check in checks.items() if not check["ok"]] == [
        "database",
        "schema",
        "redis",
    ]
    assert checks["program"] == {"ok": True}


def test_a_schema_behind_head_is_a_503(
    db_url: str, engine: object, examples: Path, tmp_path: Path
) -> None:
    runtime = http_runtime(db_url, examples / "program", tmp_path)
    downgrade(runtime.engine, "0006_money_cents_core")  # the HTTP API's own tables go
    try:
        with live_server(runtime) as base:
            answer = httpx.get(f"{base}/readyz")
    finally:
        upgrade(runtime.engine)  # the next test shares this database

    assert answer.status_code == 503
    # 0013 merges 0010_http_api into the heads it names
    assert "0013_change_notifications" in answer.json()["checks"]["schema"]["error"]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_on_loopback(
    db_url: str, engine: object, examples: Path, tmp_path: Path, workers: int
) -> None:
    port = _free_port()
    env = os.environ | {
        "LOYALTY_DATABASE_URL": db_url,
        "LOYALTY_PROGRAM_DIR": str(examples / "program"),
        "LOYALTY_OUTBOX": str(tmp_path / "outbox.jsonl"),
    }
    env.pop("LOYALTY_REDIS_URL", None)
    command = [str(Path(sys.executable).parent / "loyalty-engine"), "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--workers", str(workers)], env=env, cwd=tmp_path, stderr=subprocess.PIPE
    )
    try:
        ready = _wait_for(f"http://127.0.0.1:{port}/readyz", server)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)

    assert ready.status_code == 200, stderr.decode()
    assert b"serve starting: http://127.0.0.1:" in stderr


def _wait_for(url: str, server: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url)
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

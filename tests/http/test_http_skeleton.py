"""The served app answers on loopback: ``/livez``, and problem+json for an unknown path."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
from live_server import http_runtime, live_server


def test_a_live_server_answers_livez_and_problems(
    db_url: str, engine: object, examples: Path, tmp_path: Path
) -> None:
    runtime = http_runtime(db_url, examples / "program", tmp_path)
    with live_server(runtime) as base:
        assert httpx.get(f"{base}/livez").json() == {"status": "ok"}
        missing = httpx.get(f"{base}/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"


def test_a_serving_app_keeps_what_it_built_out_of_full_collections(
    db_url: str, engine: object, examples: Path, tmp_path: Path
) -> None:
    """What a worker built before serving is frozen while it serves (a full collection no
    longer scans it) and handed back to the collector when it stops."""
    runtime = http_runtime(db_url, examples / "program", tmp_path)
    with live_server(runtime) as base:
        frozen = gc.get_freeze_count()
        assert httpx.get(f"{base}/livez").status_code == 200
    assert frozen > 10_000  # the app, the program and the libraries
    assert gc.get_freeze_count() == 0

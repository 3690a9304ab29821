"""The OpenAPI schema: what a real uvicorn serves at ``/openapi.json`` is exactly the committed
``docs/openapi.json`` (OpenAPI 3.1), whatever the database, settings or program;
``loyalty-engine openapi --check`` passes on the tree and fails on a stale copy, naming the fix;
and every path the schema names is one the app routes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from live_server import http_runtime, live_server
from typer.testing import CliRunner

from core.cli import app as cli
from core.http.app import create_app
from core.http.metrics import route_paths
from core.http.openapi import schema_text

runner = CliRunner()
PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = PROJECT_ROOT / "docs" / "openapi.json"
# Served, and left out of the schema on purpose: the schema itself and Prometheus' scrape.
UNDOCUMENTED = {"/openapi.json", "/metrics"}
ASK_JSON = {"Accept": "application/json"}


@pytest.mark.parametrize(
    "settings",
    [{}, {"api_metrics": False, "api_rate_limit": 0, "api_max_body_bytes": 4096}],
    ids=["defaults", "other-settings"],
)
def test_the_live_server_serves_exactly_the_committed_copy(
    db_url: str, engine: object, examples: Path, tmp_path: Path, settings: dict[str, object]
) -> None:
    runtime = http_runtime(db_url, examples / "program", tmp_path, **settings)
    with live_server(runtime) as base:
        served = httpx.get(f"{base}/openapi.json")

    assert served.status_code == 200
    schema = served.json()
    assert schema["openapi"].startswith("3.1.")
    assert schema_text(schema) == COMMITTED.read_text(encoding="utf-8")


def test_check_passes_on_the_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT_ROOT)  # the default copy is docs/openapi.json, as make runs it
    result = runner.invoke(cli, ["openapi", "--check"])

    assert result.exit_code == 0, result.output
    assert "docs/openapi.json is the served schema" in result.stderr


def test_check_fails_on_a_changed_copy_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    copy = tmp_path / "openapi.json"
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    schema["info"]["version"] = "0.0.1"
    copy.write_text(schema_text(schema), encoding="utf-8")

    result = runner.invoke(cli, ["openapi", "--check", "--output", str(copy)])

    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert str(copy) in message and "differs from the served schema at line" in message
    assert "run make openapi" in message
    assert copy.read_text(encoding="utf-8") == schema_text(schema)  # a check writes nothing


def test_check_fails_on_a_missing_copy(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["openapi", "--check", "--output", str(tmp_path / "none.json")])

    assert result.exit_code == 1
    assert "does not exist" in result.stderr and "make openapi" in result.stderr


def test_the_command_prints_and_writes_the_copy_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOYALTY_API_METRICS", "false")
    monkeypatch.setenv("LOYALTY_API_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(tmp_path / "no-program"))
    monkeypatch.chdir(tmp_path)
    printed = runner.invoke(cli, ["openapi"])
    written = runner.invoke(cli, ["openapi", "--output", "out.json"])

    committed = COMMITTED.read_text(encoding="utf-8")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == committed
    assert written.exit_code == 0, written.output
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == committed


def test_every_operation_of_the_schema_is_routed_and_every_route_documented(
    examples: Path, tmp_path: Path
) -> None:
    runtime = http_runtime(f"sqlite:///{tmp_path / 'loyalty.db'}", examples / "program", tmp_path)
    app = create_app(runtime)
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    operations = [
        (method.upper(), path) for path, item in schema["paths"].items() for method in item
    ]
    with live_server(runtime, app) as base:
        answers = {
            (method, path): httpx.request(method, base + concrete(path), headers=ASK_JSON)
            for method, path in operations
        }

    # No key and made-up ids: refused by the endpoint, never "no such route" from the router.
    unrouted = {operation: answer.text for operation, answer in answers.items() if routers(answer)}
    assert unrouted == {}
    assert set(route_paths(app)) - UNDOCUMENTED == set(schema["paths"])


def concrete(template: str) -> str:
    """The path with each ``{parameter}`` filled in."""
    return re.sub(r"\{[^}]+\}", "x-1", template)


def routers(answer: httpx.Response) -> bool:
    """Whether the router answered: no route has this path, or none this method."""
    if answer.headers.get("content-type") != "application/problem+json":
        return False
    return bool(answer.json()["code"] in ("not_found", "method_not_allowed"))

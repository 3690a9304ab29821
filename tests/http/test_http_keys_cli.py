"""``loyalty-engine keys create|list|revoke``: the key is printed once, never listed, and a
revoked key is refused by the served API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from live_server import live_server
from typer.testing import CliRunner

from core.cli import app
from core.runtime import get_runtime

runner = CliRunner()


def create(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["keys", "create", *args, "--json"])
    assert result.exit_code == 0, result.output
    created: dict[str, object] = json.loads(result.stdout)
    return created


def test_create_prints_the_key_once_and_list_never_shows_it(cli_env: Path) -> None:
    plain = runner.invoke(app, ["keys", "create", "till", "--scope", "checkout"])
    created = create("shop backend", "--scope", "events", "--scope", "checkout")
    listed = runner.invoke(app, ["keys", "list", "--json"])
    text = runner.invoke(app, ["keys", "list"])

    assert plain.exit_code == 0
    assert plain.stdout.startswith("le_") and "not shown again" in plain.stderr
    assert created["scopes"] == ["events", "checkout"]
    assert str(created["key"]).startswith(f"le_{created['key_id']}_")
    rows = json.loads(listed.stdout)
    assert [row["name"] for row in rows] == ["till", "shop backend"]
    assert {"key", "secret", "secret_sha256"}.isdisjoint(rows[1])
    assert rows[1]["revoked_at"] is None and rows[1]["last_used_at"] is None
    for output in (listed.stdout, text.stdout):
        assert str(created["key"]).split("_", 2)[2] not in output
        assert plain.stdout.strip().split("_", 2)[2] not in output


def test_a_bad_scope_exits_1_naming_the_valid_ones(cli_env: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "shop", "--scope", "evnts"])
    listed = runner.invoke(app, ["keys", "list", "--json"])

    assert result.exit_code == 1
    assert "'evnts'" in result.stderr and "events, checkout, admin" in result.stderr
    assert json.loads(listed.stdout) == []


def test_create_needs_a_scope(cli_env: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "shop"])

    assert result.exit_code == 2
    assert "--scope" in result.output


def test_a_revoked_key_is_listed_as_revoked_and_refused_by_the_api(cli_env: Path) -> None:
    created = create("shop", "--scope", "checkout")

    revoked = runner.invoke(app, ["keys", "revoke", str(created["key_id"])])
    again = runner.invoke(app, ["keys", "revoke", str(created["key_id"])])
    [row] = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)
    with live_server(get_runtime()) as base:
        answer = httpx.get(
            f"{base}/v1/members/m-x", headers={"Authorization": f"Bearer {created['key']}"}
        )

    assert revoked.exit_code == 0 and "revoked key" in revoked.stdout
    assert again.exit_code == 0
    assert row["revoked_at"] is not None
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]


def test_revoking_an_unknown_key_exits_1(cli_env: Path) -> None:
    result = runner.invoke(app, ["keys", "revoke", "nope"])

    assert result.exit_code == 1
    assert "no API key by the id of 'nope'" in result.stderr


def test_a_created_key_is_taken_by_the_api(cli_env: Path) -> None:
    created = create("shop", "--scope", "checkout")

    with live_server(get_runtime()) as base:
        answer = httpx.get(
            f"{base}/v1/members/m-x", headers={"Authorization": f"Bearer {created['key']}"}
        )
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)

    assert answer.status_code == 404  # authenticated: the member does not exist
    assert listed[0]["last_used_at"] is not None

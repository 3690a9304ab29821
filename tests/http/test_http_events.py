"""``POST /v1/events`` and ``GET /v1/members/{id}`` on a real uvicorn: the intake and the member
view the CLI has, with each rejection named by its index or line, and problems for bodies that
are not events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from engine_api import Api, served
from typer.testing import CliRunner

from core.cli import app
from core.clock import FixedClock, set_clock

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # the day after the scenario's last event
runner = CliRunner()


@pytest.fixture
def api(db_url: str, engine: object, examples: Path, tmp_path: Path) -> Any:
    set_clock(FixedClock(NOW))
    with served(db_url, examples, tmp_path) as api:
        yield api


def scenario(examples: Path) -> list[dict[str, Any]]:
    lines = (examples / "events" / "scenario.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def event(event_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "content.shared",
        "occurred_at": "2026-11-19T10:00:00+08:00",
        "member_id": "m-lin",
        "data": {"channel": "wechat"},
    } | changes


def test_a_json_array_gets_the_report_events_ingest_gives(api: Api, examples: Path) -> None:
    answer = api.post("/v1/events", json=scenario(examples), scope="events")

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["accepted"], report["duplicate"], report["rejected"]) == (17, 1, 1)
    [rejection] = report["rejections"]
    assert rejection["index"] == 17 and rejection["event_id"] == "th-0018"
    assert rejection["reason"]


def test_events_posted_again_are_duplicates_and_the_cli_sees_them_stored(
    api: Api, examples: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    api.post("/v1/events", json=scenario(examples), scope="events")

    again = api.post("/v1/events", json=scenario(examples), scope="events").json()
    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(examples / "program"))
    scenario_file = str(examples / "events" / "scenario.jsonl")
    cli = runner.invoke(
        app, ["--now", NOW.isoformat(), "events", "ingest", scenario_file, "--json"]
    )

    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, 18, 1)
    assert json.loads(cli.stdout) == {"accepted": 0, "duplicate": 18, "rejected": 1}


def test_ndjson_rejections_name_their_line_and_are_dead_lettered(
    api: Api, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    body = "\n".join([json.dumps(event("e-1")), "", "{oops", json.dumps(event("e-2"))]) + "\n"

    answer = api.post(
        "/v1/events",
        content=body.encode(),
        headers={"Content-Type": "application/x-ndjson"},
        scope="events",
    )
    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    listed = runner.invoke(app, ["events", "rejected", "--json"])

    report = answer.json()
    assert (report["accepted"], report["duplicate"], report["rejected"]) == (2, 0, 1)
    [rejection] = report["rejections"]
    assert rejection["line"] == 3 and "not valid JSON" in rejection["reason"]
    [row] = json.loads(listed.stdout)
    assert (row["line"], row["raw"], row["source"]) == (3, "{oops", "api")


def test_array_elements_that_are_not_valid_events_are_rejected_by_index(api: Api) -> None:
    body = [event("e-1"), 5, event("e-3", type="order.exploded")]

    report = api.post("/v1/events", json=body, scope="events").json()

    assert (report["accepted"], report["rejected"]) == (1, 2)
    assert [r["index"] for r in report["rejections"]] == [1, 2]
    assert "expected a JSON object" in report["rejections"][0]["reason"]
    assert report["rejections"][1]["event_id"] == "e-3"


def test_amounts_keep_every_digit_sent_as_numbers(api: Api, db_url: str) -> None:
    body = '[{"id": "o-1", "type": "order.paid", "occurred_at": "2026-11-19T10:00:00+08:00", '
    body += '"member_id": "m-lin", "data": {"order_id": "o-1", "total": 828.10, "items": []}}]'

    report = api.post(
        "/v1/events", content=body, headers={"Content-Type": "application/json"}, scope="events"
    ).json()
    member = api.get("/v1/members/m-lin", scope="checkout").json()

    assert report["accepted"] == 1, report
    assert member["orders"]["paid"] == "828.10"


def test_more_than_1000_events_is_a_413_and_nothing_is_stored(api: Api) -> None:
    too_many = [event(f"e-{n}") for n in range(1_001)]

    answer = api.post("/v1/events", json=too_many, scope="events")
    ndjson = api.post(
        "/v1/events",
        content="\n".join(json.dumps(e) for e in too_many),
        headers={"Content-Type": "application/x-ndjson"},
        scope="events",
    )
    after = api.post("/v1/events", json=[event("e-0")], scope="events").json()

    assert (answer.status_code, ndjson.status_code) == (413, 413)
    assert answer.json()["code"] == ndjson.json()["code"] == "too_many_events"
    assert after["accepted"] == 1


def test_exactly_1000_events_are_taken(api: Api) -> None:
    answer = api.post("/v1/events", json=[event(f"e-{n}") for n in range(1_000)], scope="events")

    assert answer.json()["accepted"] == 1_000


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ('[\n  {"id": "e-1",\n  oops}\n]', 400, "line 3 column 3"),
        ('[{"id": "e-1"} {"id": "e-2"}]', 400, "line 1 column 16"),
        ("[]]", 400, "line 1 column 3"),
        ('{"id": "e-1"}', 422, "line 1 column 1"),
        ("", 422, "an empty body"),
    ],
)
def test_a_body_that_is_not_a_json_array_is_a_problem_naming_the_line(
    api: Api, body: str, status: int, where: str
) -> None:
    answer = api.post(
        "/v1/events", content=body, headers={"Content-Type": "application/json"}, scope="events"
    )

    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert where in answer.json()["detail"]


def test_an_empty_array_accepts_nothing(api: Api) -> None:
    report = api.post("/v1/events", json=[], scope="events").json()

    assert report == {"accepted": 0, "duplicate": 0, "rejected": 0, "rejections": []}


def test_a_member_is_what_members_show_json_prints(
    api: Api, examples: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    api.post("/v1/events", json=scenario(examples), scope="events")
    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(examples / "program"))

    served_view = api.get("/v1/members/m-lin", scope="checkout")
    cli = runner.invoke(app, ["--now", NOW.isoformat(), "members", "show", "m-lin", "--json"])

    assert served_view.status_code == 200
    assert served_view.json() == json.loads(cli.stdout)
    assert served_view.json()["member_id"] == "m-lin"
    assert isinstance(served_view.json()["qualifying_spend"], str)


def test_an_unknown_member_is_a_404_problem(api: Api) -> None:
    answer = api.get("/v1/members/m-nobody", scope="admin")

    assert answer.status_code == 404
    assert answer.json()["code"] == "member_not_found"
    assert "m-nobody" in answer.json()["detail"]


@pytest.mark.parametrize("idempotency", [{}, {"Idempotency-Key": "k-big"}])
@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_size_limit_is_a_413(
    db_url: str,
    engine: object,
    examples: Path,
    tmp_path: Path,
    chunked: bool,
    idempotency: dict[str, str],
) -> None:
    body = json.dumps([event(f"e-{n}") for n in range(40)]).encode()  # about 6 KB
    content: Any = iter([body[:1000], body[1000:]]) if chunked else body
    with served(db_url, examples, tmp_path, api_max_body_bytes=4096) as api:
        answer = api.post(
            "/v1/events",
            content=content,
            headers={"Content-Type": "application/json", **idempotency},
            scope="events",
        )
        small = api.post("/v1/events", json=[event("e-1")], scope="events", headers=idempotency)

    assert answer.status_code == 413
    assert answer.json()["code"] == "body_too_large"
    assert small.json()["accepted"] == 1

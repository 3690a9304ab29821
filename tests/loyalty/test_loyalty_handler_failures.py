"""A runtime-failing rule never costs an order: it is kept, listed, and earns once when fixed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from core.cli import app
from core.events.tables import events, orders
from loyalty.tables import points_ledger

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()
NOW = ["--now", "2026-11-21T00:00:00+08:00"]
# Integer division by zero for an order of exactly 828: a rule that fails only at run time.
FRAGILE = "      when: int(order.total) / (int(order.total) - 828) >= 0\n"


def program_copy(root: Path, examples: Path, *, fragile: bool) -> Path:
    target = root / ("fragile" if fragile else "fixed")
    shutil.copytree(examples / "program", target)
    program = target / "program.yaml"
    text = program.read_text()
    anchor = "      pending_days: 15"
    assert anchor in text
    if fragile:
        text = text.replace(anchor, FRAGILE + anchor, 1)
    program.write_text(text)
    return target


def events_file(root: Path) -> Path:
    lines = [
        {"id": "r-1", "type": "member.registered", "occurred_at": "2026-11-01T10:00:00+08:00",
         "member_id": "m-1", "data": {"first_name": "Li", "locale": "zh-CN"}},
        {"id": "p-1", "type": "order.paid", "occurred_at": "2026-11-02T10:00:00+08:00",
         "member_id": "m-1", "data": {"order_id": "o-1", "total": "828.00"}},
        {"id": "p-2", "type": "order.paid", "occurred_at": "2026-11-02T11:00:00+08:00",
         "member_id": "m-2", "data": {"order_id": "o-2", "total": "100.00"}},
    ]  # fmt: skip
    path = root / "events.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def run(program: Path | None, *args: str) -> tuple[int, str, str]:
    options = ["--program", str(program)] if program else []
    result = runner.invoke(app, [*options, *NOW, *args])
    return result.exit_code, result.stdout, result.stderr


def purchase_points(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        query = (
            select(points_ledger.c.member_id, points_ledger.c.points)
            .where(points_ledger.c.rule_id == "purchase")
            .order_by(points_ledger.c.member_id)
        )
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


@pytest.fixture
def env(cli_env: Path) -> dict[str, Path]:
    return {
        "fragile": program_copy(cli_env, EXAMPLES, fragile=True),
        "fixed": program_copy(cli_env, EXAMPLES, fragile=False),
        "events": events_file(cli_env),
    }


def test_a_failing_rule_keeps_the_order_and_earns_exactly_once_after_the_fix(
    env: dict[str, Path], engine: Engine
) -> None:
    code, out, _ = run(env["fragile"], "events", "ingest", str(env["events"]))

    assert code == 0
    assert "accepted 3, duplicate 0, rejected 0" in out
    assert "handler failures: 1" in out
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 3
        assert conn.execute(select(func.count()).select_from(orders)).scalar() == 2
    assert purchase_points(engine) == [("m-2", 100)]

    code, out, _ = run(env["fragile"], "events", "failures", "--json")
    (failure,) = json.loads(out)["failures"]
    assert (failure["event_id"], failure["status"]) == ("p-1", "failed")
    assert failure["handler"] == "loyalty.handlers.earn_and_reverse_points"
    assert "division by zero" in failure["error"].lower() or "divide" in failure["error"].lower()

    still_broken, _, err = run(env["fragile"], "events", "retry", "--all")
    assert still_broken == 1 and "failed p-1" in err

    code, out, _ = run(env["fixed"], "events", "retry", "--all", "--json")
    assert code == 0 and json.loads(out)["resolved"] == 1
    again, out, _ = run(env["fixed"], "events", "retry", "--all", "--json")
    assert again == 0 and json.loads(out)["resolved"] == 0
    run(env["fixed"], "events", "ingest", str(env["events"]))  # redelivered: duplicates

    assert purchase_points(engine) == [("m-1", 828), ("m-2", 100)]
    code, out, _ = run(env["fixed"], "events", "failures")
    assert code == 0 and "no handler failures" in out


def test_a_missing_program_is_a_user_error_and_stores_nothing(
    env: dict[str, Path], engine: Engine, tmp_path: Path
) -> None:
    code, _, err = run(tmp_path / "nonexistent", "events", "ingest", str(env["events"]))

    assert code == 1
    assert "no program directory" in err and "--no-program" in err
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 0


def test_an_invalid_program_is_a_user_error_for_every_command(
    env: dict[str, Path], tmp_path: Path
) -> None:
    broken = env["fixed"]
    (broken / "program.yaml").write_text("tiers: [\n")

    for args in (["events", "rejected"], ["members", "show", "m-1"], ["events", "failures"]):
        code, _, err = run(broken, *args)
        assert code == 1, args
        assert "the program has errors" in err


def test_events_stored_without_a_program_are_handled_once_one_is(
    env: dict[str, Path], engine: Engine
) -> None:
    code, out, _ = run(None, "events", "ingest", str(env["events"]), "--no-program", "--json")

    assert code == 0
    report = json.loads(out)
    assert report["accepted"] == 3 and report["waiting"] > 0
    assert purchase_points(engine) == []

    code, out, _ = run(env["fixed"], "events", "retry", "--all", "--json")

    assert code == 0 and json.loads(out)["failed"] == 0
    assert purchase_points(engine) == [("m-1", 828), ("m-2", 100)]

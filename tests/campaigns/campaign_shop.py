"""A shop running the engine in-process on a test database: the Tea House program with the
campaigns a test writes, events as the shop sends them, and the engine clock moved by ``tick``."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.broker import drain
from core.clock import FixedClock, using_clock
from core.events.intake import IngestReport, Intake, ingest
from core.runtime import Runtime, set_runtime
from core.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_ids = itertools.count(1)


def at(text: str) -> datetime:
    """A Shanghai time written without its zone: ``at("2026-11-20 13:00")``."""
    return datetime.fromisoformat(text.replace(" ", "T") + "+08:00")


def event(kind: str, member: str, when: str, **data: Any) -> dict[str, Any]:
    return {
        "id": data.pop("event_id", None) or f"evt-c{next(_ids):06d}",
        "type": kind,
        "occurred_at": at(when).isoformat(),
        "member_id": member,
        "data": data,
    }


def registered(member: str, when: str, **data: Any) -> dict[str, Any]:
    profile = {
        "first_name": member.removeprefix("m-").title(),
        "email": f"{member}@example.com",
        "phone": f"+86139{abs(hash(member)) % 10**8:08d}",
        "push_token": f"push-{member}",
        "timezone": "Asia/Shanghai",
        "locale": "en",
        "consents": {"email": True, "sms": True, "push": True},
    }
    return event("member.registered", member, when, **{**profile, **data})


def items(total: str) -> list[dict[str, Any]]:
    return [{"sku": "T-1", "name": "Oolong", "category": "tea", "price": total, "qty": 1}]


def cart(member: str, cart_id: str, total: str, when: str) -> dict[str, Any]:
    return event("cart.updated", member, when, cart_id=cart_id, total=total, items=items(total))


def paid(member: str, order_id: str, total: str, when: str, **data: Any) -> dict[str, Any]:
    return event(
        "order.paid", member, when, order_id=order_id, total=total, items=items(total), **data
    )


def write_program(folder: Path, *campaigns: dict[str, Any], global_control: str = "0") -> Path:
    """The Tea House program with only the given campaigns, and a global control group of
    ``global_control`` (none unless asked: which members the example's 5% holds out is not what
    most tests are about)."""
    program = folder / "program"
    shutil.copytree(EXAMPLES / "program", program)
    program_yaml = program / "program.yaml"
    text = program_yaml.read_text(encoding="utf-8")
    control = f"global_control: {global_control}  #"
    program_yaml.write_text(re.sub(r"global_control: [0-9.]+ *#", control, text), encoding="utf-8")
    shutil.rmtree(program / "campaigns")
    (program / "campaigns").mkdir()
    for campaign in campaigns:
        path = program / "campaigns" / f"{campaign['id']}.yaml"
        path.write_text(json.dumps(campaign, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return program


class Shop:
    """The engine on ``db_url`` with the program in ``folder``; the outbox in ``folder``."""

    def __init__(
        self,
        folder: Path,
        db_url: str,
        *campaigns: dict[str, Any],
        global_control: str = "0",
    ) -> None:
        import scheduler
        import worker

        self.folder = folder
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=db_url,
            redis_url=None,
            program_dir=write_program(folder, *campaigns, global_control=global_control),
            outbox=folder / "outbox.jsonl",
        )
        self.runtime = Runtime(settings=self.settings)
        set_runtime(self.runtime)
        worker.setup(self.settings)
        self.jobs = scheduler.build_jobs(self.runtime)

    @property
    def program(self) -> Any:
        return self.runtime.program

    def ingest(self, *payloads: dict[str, Any], now: datetime | None = None) -> IngestReport:
        """One batch at ``now`` (default: the latest event), then every queued actor runs."""
        now = now or max(datetime.fromisoformat(p["occurred_at"]) for p in payloads)
        with using_clock(FixedClock(now)):
            report = ingest(
                list(payloads),
                Intake.for_runtime(self.runtime, source="test", program=self.program),
            )
            drain()
        return report

    def tick(self, until: datetime, *, start: datetime | None = None) -> list[tuple[datetime, str]]:
        from core.ticking import tick

        return tick(self.runtime, self.jobs, until=until, start=start).fired

    def outbox(self) -> list[dict[str, Any]]:
        path = self.folder / "outbox.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def sent(self, member: str | None = None) -> list[tuple[str, str]]:
        """(template, channel) of every message written to the outbox, in order."""
        return [
            (m["template"], m["channel"])
            for m in self.outbox()
            if member is None or m["member_id"] == member
        ]

    def rows(self, table: Any, *where: Any) -> list[Any]:
        with self.runtime.engine.connect() as conn:
            return list(conn.execute(select(table).where(*where)))

    def journeys(self, campaign_id: str | None = None) -> list[Any]:
        from campaigns.tables import journeys

        condition = [journeys.c.campaign_id == campaign_id] if campaign_id else []
        return self.rows(journeys, *condition)

    def messages(self) -> list[Any]:
        from notifications.tables import messages

        return self.rows(messages)

    def advance(self, journey_ids: Iterable[str], now: datetime) -> Any:
        """Run these journeys' due steps at ``now``, in-process, as a worker would."""
        from campaigns.steps import advance_journeys
        from core.events.handlers import unit_of_work

        with using_clock(FixedClock(now)):
            with unit_of_work(self.runtime.engine, now=now, program=self.program) as ctx:
                report = advance_journeys(ctx, list(journey_ids))
            drain()
        return report

"""``loyalty-engine demo``: a fortnight at the example shop, end to end, on the embedded default.

A seeded simulation (:mod:`core.demo_shop`) plays a few hundred members of the project's example
program: six weeks of history, then a fortnight day by day, the shop's events ingested hour by
hour while every scheduled job fires on the way. Then each package prints its part of what the
engine now knows (:data:`summary_sections`), and the demo follows one shopper through a cart
journey. Nothing here is faked: the numbers are read back from the engine's database and outbox.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from core.clock import FixedClock, using_clock
from core.demo_shop import CART_CAMPAIGN, RETURN_AFTER, RETURN_UNPROMPTED, SHANGHAI, Shoppers
from core.runtime import Runtime, set_runtime
from core.scheduling import Job
from core.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED = 2026
MEMBERS, JOINING = 300, 80  # members in all; of them, those who join during the fortnight
HISTORY_FROM = datetime(2026, 10, 1, tzinfo=SHANGHAI)
OPENS = datetime(2026, 11, 16, tzinfo=SHANGHAI)  # a Monday
DAYS = 14
# Each entry renders one part of the summary; packages append theirs as they land.
summary_sections: list[Callable[[Runtime, Console], None]] = []
# The shop's checkout in the simulation: (runtime, member id, items, when) → the coupon codes
# it applies and their discount. The coupons package registers it; without one, no codes.
checkout_hooks: list[Callable[[Runtime, str, Sequence[Mapping[str, Any]], datetime], Any]] = []


@dataclass
class DayLine:
    day: date
    joined: int = 0
    carts: int = 0
    orders: int = 0
    paid: Decimal = Decimal("0.00")
    refunds: int = 0
    returned: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


def run_demo(directory: Path, *, console: Console, members: int = MEMBERS) -> Runtime:
    """Run the demo in ``directory`` (recreated) and print what happened."""
    from core.processes import build_jobs, setup_broker
    from core.program.check import check_program

    runtime = _fresh_runtime(directory)
    console.rule("[bold]loyalty-engine demo[/]: a fortnight at the example shop")
    errors = [i for i in check_program(runtime.program_path) if i.severity == "error"]
    if errors:
        raise SystemExit("\n".join(map(str, errors)))
    program = runtime.program
    console.print(
        f"program   {program.program_file.program.name} ({_relative(runtime.program_path)}), "
        f"{len(program.campaigns)} campaigns: checks clean"
    )
    console.print("engine    embedded: SQLite and an in-process broker, files in "
                  f"{_relative(directory)}/")  # fmt: skip
    setup_broker(runtime.settings)
    jobs = build_jobs(runtime)
    shoppers = Shoppers(
        seed=SEED, members=members, joining=round(members * JOINING / MEMBERS), opens=OPENS,
        checkout=_checkout(runtime),
    )  # fmt: skip
    _print_cast(console, shoppers)
    days = _simulate(runtime, jobs, shoppers, console)
    _write_scenario(directory / "scenario.jsonl", days)
    console.print(_days_table(runtime, days))
    with using_clock(FixedClock(OPENS + timedelta(days=DAYS))):
        for section in summary_sections:
            console.print()
            section(runtime, console)
        console.print()
        followed = _follow_one_shopper(runtime, console, days)
    _print_where(console, directory, followed or "m-0001")
    return runtime


def demo_directory(runtime: Runtime) -> Path:
    """Where the demo writes its files (the outbox's folder): packages put reports there."""
    return Path(runtime.settings.outbox).parent


def _fresh_runtime(directory: Path) -> Runtime:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{directory / 'loyalty.db'}",
        redis_url=None,
        program_dir=EXAMPLES / "program",
        outbox=directory / "outbox.jsonl",
    )
    runtime = Runtime(settings=settings)
    set_runtime(runtime)
    return runtime


def _checkout(runtime: Runtime) -> Callable[[str, Sequence[Mapping[str, Any]], datetime], Any]:
    def checkout(member_id: str, items: Sequence[Mapping[str, Any]], when: datetime) -> Any:
        for hook in checkout_hooks:
            return hook(runtime, member_id, items, when)
        return [], Decimal("0.00")

    return checkout


def _print_cast(console: Console, shoppers: Shoppers) -> None:
    joining = len(shoppers.waiting)
    console.print(
        f"shoppers  {len(shoppers.members)} simulated members (seed {SEED}): "
        f"{len(shoppers.members) - joining} joined from {_day(HISTORY_FROM.date())}, "
        f"{joining} more join in the fortnight"
    )
    rates = ", ".join(f"{RETURN_AFTER[t]:.0%} after a {t}" for t in RETURN_AFTER)
    console.print(
        f"          They pay for an abandoned cart {rates} message, {RETURN_UNPROMPTED:.0%} a "
        "day unprompted: the simulation's guesses, which the cart experiment measures back.",
        style="dim",
    )


def _simulate(
    runtime: Runtime, jobs: Sequence[Job], shoppers: Shoppers, console: Console
) -> list[DayLine]:
    from core.ticking import tick

    history = shoppers.history(HISTORY_FROM)
    days: list[DayLine] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=DAYS + 1)
        accepted = _play(runtime, jobs, history, by=lambda at: at.date())
        tick(runtime, jobs, until=OPENS)
        registered = sum(e["type"] == "member.registered" for e in history)
        orders = sum(e["type"] == "order.paid" for e in history)
        progress.advance(task)
        for n in range(DAYS):
            today = (OPENS + timedelta(days=n)).date()
            played = shoppers.day(today, _outbox_lines(runtime))
            line = _day_line(today, played.events, returned=played.returned)
            _play(runtime, jobs, played.events, by=lambda at: (at.date(), at.hour))
            tick(runtime, jobs, until=OPENS + timedelta(days=n + 1))
            days.append(line)
            progress.advance(task)
    console.print(
        f"history   {_day(HISTORY_FROM.date())} - {_day(OPENS.date() - timedelta(days=1))}: "
        f"{accepted} events ({registered} registered, {orders} orders), every job fired daily"
    )
    return days


def _play(
    runtime: Runtime, jobs: Sequence[Job], events: Iterable[dict[str, Any]], *, by: Callable
) -> int:
    """Ingest the events batch by batch (one per ``by`` key), ticking to each batch first."""
    from core.ticking import ingest_at, tick

    accepted = 0
    for _, group in groupby(events, key=lambda e: by(_at(e).astimezone(SHANGHAI))):
        batch = list(group)
        at = max(_at(e) for e in batch)
        tick(runtime, jobs, until=at, start=HISTORY_FROM)
        report = ingest_at(runtime, [json.dumps(e) for e in batch], at=at, source="demo")
        if report.rejected:
            raise SystemExit(f"the demo's own events were rejected: {report}")
        accepted += report.accepted
    return accepted


def _day_line(today: date, events: list[dict[str, Any]], *, returned: int) -> DayLine:
    line = DayLine(today, returned=returned, events=events)
    for event in events:
        kind = event["type"]
        line.joined += kind == "member.registered"
        line.carts += kind == "cart.updated"
        line.refunds += kind == "order.refunded"
        if kind == "order.paid":
            line.orders += 1
            line.paid += Decimal(event["data"]["total"])
    return line


def _days_table(runtime: Runtime, days: list[DayLine]) -> Table:
    from core.events.store import count_events_per_day

    sent = Counter(_at(m, "sent_at").astimezone(SHANGHAI).date() for m in _outbox_lines(runtime))
    with runtime.engine.connect() as conn:
        engine_events = count_events_per_day(
            conn, ["tier.changed", "referral.qualified"], zone=SHANGHAI,
            since=OPENS, until=OPENS + timedelta(days=DAYS),
        )  # fmt: skip
    table = Table(
        title=f"the fortnight, {_day(days[0].day)} - {_day(days[-1].day)} 2026, Asia/Shanghai",
        title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0),
    )  # fmt: skip
    headings = ("day", "joined", "carts", "won\nback", "orders", "paid\nCNY", "refunds",
                "msgs\nsent", "tier\nmoves", "refer-\nrals")  # fmt: skip
    for heading in headings:
        table.add_column(heading, justify="left" if heading == "day" else "right", no_wrap=True)
    for line in days:
        moves = engine_events.get((line.day, "tier.changed"), 0)
        settled = engine_events.get((line.day, "referral.qualified"), 0)
        table.add_row(
            line.day.strftime("%a %d"), str(line.joined), str(line.carts), str(line.returned),
            str(line.orders), f"{line.paid:,.2f}", str(line.refunds), str(sent[line.day]),
            str(moves), str(settled),
        )  # fmt: skip
    table.caption = (
        "won back: abandoned carts paid for later; tier moves: tier.changed; referrals: "
        "referral.qualified, settled past the return window"
    )
    table.caption_justify = "left"
    return table


def _follow_one_shopper(runtime: Runtime, console: Console, days: list[DayLine]) -> str | None:
    """The story of one member whose cart the campaign won back, from events and outbox: one
    who paid with the campaign's coupon when there is one."""
    events = [e for line in days for e in line.events]
    messages = [m for m in _outbox_lines(runtime) if m.get("campaign_id") == CART_CAMPAIGN]
    stories = [story for story in map(_won_back(events, messages), messages) if story]
    if not stories:
        console.print("one shopper: no cart was won back in this run")
        return None
    member_id, steps = next((s for s in stories if "(no coupon)" not in s[1][-1][1]), stories[0])
    console.print(f"[bold]one shopper[/]: {member_id}, won back by {CART_CAMPAIGN}")
    for at, what in steps:
        local = at.astimezone(SHANGHAI).strftime("%a %d %b %H:%M")
        console.print(f"  {local}  {what}", soft_wrap=True, highlight=False, markup=False)
    return member_id


def _won_back(events: list[dict[str, Any]], messages: list[dict[str, Any]]) -> Callable:
    paid = {e["data"].get("cart_id"): e for e in events if e["type"] == "order.paid"}

    def story(message: dict[str, Any]) -> tuple[str, list[tuple[datetime, str]]] | None:
        member_id, sent = str(message["member_id"]), _at(message, "sent_at")
        carts = [e for e in events if e["type"] == "cart.updated" and e["member_id"] == member_id
                 and _at(e) < sent]  # fmt: skip
        order = paid.get(carts[-1]["data"]["cart_id"]) if carts else None
        if order is None or _at(order) < sent:
            return None
        cart = carts[-1]
        steps = [(_at(cart), f"cart {cart['data']['cart_id']}: {cart['data']['total']} CNY, left")]
        steps += [
            (_at(m, "sent_at"), f"{m['channel']} '{m['template']}': {_text(m)}")
            for m in messages if m["member_id"] == member_id
            and _at(cart) <= _at(m, "sent_at") <= _at(order)
        ]  # fmt: skip
        codes = ", ".join(order["data"].get("coupon_codes", [])) or "no coupon"
        steps.append((_at(order), f"paid {order['data']['total']} CNY ({codes}): converted"))
        return member_id, steps

    return story


def _print_where(console: Console, directory: Path, member_id: str) -> None:
    console.print()
    console.print(f"[bold]files[/] in {_relative(directory)}/", soft_wrap=True)
    for name, what in (
        ("loyalty.db", "the engine's SQLite database (LOYALTY_DATABASE_URL)"),
        ("outbox.jsonl", "every message sent, one JSON line each"),
        ("scenario.jsonl", "the fortnight's events; `events ingest --replay` plays them again"),
        *((p.name, "a campaign report page; open it in a browser")
          for p in sorted(directory.glob("*.html"))),
    ):  # fmt: skip
        console.print(f"  {name:<32} {what}", soft_wrap=True)
    url = f"sqlite:///{_relative(directory / 'loyalty.db')}"
    console.print(
        f"look around: LOYALTY_DATABASE_URL={url} LOYALTY_PROGRAM_DIR=examples/program "
        f".venv/bin/loyalty-engine --now {(OPENS + timedelta(days=DAYS)).isoformat()} "
        f"members show {member_id}",
        soft_wrap=True, highlight=False, markup=False,
    )  # fmt: skip


def _write_scenario(path: Path, days: list[DayLine]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for line in days:
            for event in line.events:
                out.write(json.dumps(event, ensure_ascii=False) + "\n")


def _outbox_lines(runtime: Runtime) -> list[dict[str, Any]]:
    path = Path(runtime.settings.outbox)
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _text(message: Mapping[str, Any]) -> str:
    text = str(message.get("title") or message.get("subject") or message.get("body") or "")
    return text if len(text) <= 60 else text[:59] + "…"


def _at(record: Mapping[str, Any], key: str = "occurred_at") -> datetime:
    return datetime.fromisoformat(str(record[key]))


def _day(value: date) -> str:
    return value.strftime("%d %b").lstrip("0")


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)

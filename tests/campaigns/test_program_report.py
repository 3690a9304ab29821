"""``program report``: marketed members against the global control group, on a hand-computed
fixture (members, orders, refunds and messages written straight into the tables) on SQLite and
PostgreSQL; the window's edges, no control group, an empty one, the text, the JSON and bad
days at the command line."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from campaign_shop import Shop, at
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW
from typer.testing import CliRunner, Result

from campaigns.assignment import in_global_control
from campaigns.program_report import build_program_report, report_lines
from campaigns.program_report_facts import (
    MemberActivity,
    ProgramReportFacts,
    Window,
    fetch_program_report_facts,
)
from core.cli import app
from core.events.tables import members, orders, refunds
from core.runtime import set_runtime
from notifications.tables import messages

SHARE = "0.25"
SINCE, UNTIL = date(2026, 11, 1), date(2026, 11, 7)  # business days in Asia/Shanghai
NOW = at("2026-11-10 12:00")
CONTROL = ["m-bob", "m-fay", "m-max"]  # in the 25% global control group
MARKETED = ["m-ann", "m-cat", "m-dan", "m-eve", "m-gus", "m-hal"]
# member → registered at; m-hal registers in the window's last minute, m-ivy just after it
# (outside the population), m-jon never (an order, but not a member of the program)
REGISTERED = {
    **{member: "2026-10-01 10:00" for member in MARKETED + CONTROL},
    "m-hal": "2026-11-07 23:59",
    "m-ivy": "2026-11-08 00:00",
    "m-jon": None,
}
# (order, member, total, paid at, refunds)
ORDERS = [
    ("o-1", "m-ann", "100.00", "2026-11-01 00:00", []),  # the window's first instant
    ("o-2", "m-ann", "50.00", "2026-11-03 12:00", ["20.00"]),  # net 30.00
    ("o-3", "m-cat", "80.00", "2026-11-07 23:59:59", []),  # the window's last second
    ("o-4", "m-cat", "999.00", "2026-11-08 00:00", []),  # just after
    ("o-5", "m-dan", "40.00", "2026-10-31 23:59:59", []),  # just before
    ("o-6", "m-eve", "30.00", "2026-11-05 09:00", ["30.00", "10.00"]),  # refunded past 0: 0.00
    ("o-7", "m-bob", "25.00", "2026-11-02 15:00", []),
    ("o-8", "m-ivy", "300.00", "2026-11-07 10:00", []),  # registered after the window
    ("o-9", "m-jon", "500.00", "2026-11-04 10:00", []),  # never registered
]
# (member, kind, status, sent at)
MESSAGES = [
    ("m-ann", "marketing", "sent", "2026-11-02 10:00"),
    ("m-ann", "marketing", "sent", "2026-11-06 10:00"),
    ("m-ann", "transactional", "sent", "2026-11-03 12:01"),  # not marketing
    ("m-ann", "marketing", "suppressed", None),  # never sent
    ("m-cat", "marketing", "sent", "2026-11-01 00:00"),  # the window's first instant
    ("m-cat", "marketing", "sent", "2026-11-08 00:00"),  # just after
    ("m-gus", "marketing", "sent", "2026-11-04 11:00"),
    ("m-bob", "transactional", "sent", "2026-11-02 15:01"),  # control still gets these
    ("m-ivy", "marketing", "sent", "2026-11-07 11:00"),  # not in the population
]
# hand-computed: marketed ann 130.00 (2 orders), cat 80.00, eve 0.00 bought; control bob 25.00
MARKETED_REVENUE = [130, 80, 0, 0, 0, 0]
CONTROL_REVENUE = [25, 0, 0]


def member_rows() -> list[dict[str, Any]]:
    return [
        {"member_id": member, "registered_at": at(when) if when else None,
         "first_seen_at": at(when or "2026-10-01 10:00")}
        for member, when in REGISTERED.items()
    ]  # fmt: skip


def order_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    paid, refunded = [], []
    for order, member, total, when, amounts in ORDERS:
        paid.append(
            {"order_id": order, "member_id": member, "total": Decimal(total), "currency": "CNY",
             "paid_at": at(when), "items": [], "coupon_codes": [], "points_redeemed": 0,
             "event_id": f"e-{order}"}
        )  # fmt: skip
        refunded += [
            {"event_id": f"r-{order}-{n}", "order_id": order, "member_id": member,
             "amount": Decimal(amount), "refunded_at": at(when) + timedelta(days=1 + n)}
            for n, amount in enumerate(amounts)
        ]  # fmt: skip
    return paid, refunded


def message_rows() -> list[dict[str, Any]]:
    return [
        {"message_id": f"msg-{n}", "dedupe_key": f"k-{n}", "member_id": member,
         "template_id": "t", "kind": kind, "channel": "email", "status": status, "attempts": 0,
         "created_at": at("2026-10-31 10:00"), "updated_at": at("2026-10-31 10:00"),
         "sent_at": at(sent) if sent else None}
        for n, (member, kind, status, sent) in enumerate(MESSAGES)
    ]  # fmt: skip


def make_shop(folder: Path, db_url: str, *, share: str = SHARE) -> Shop:
    shop = Shop(folder, db_url, global_control=share)
    paid, refunded = order_rows()
    with shop.runtime.engine.begin() as conn:
        conn.execute(members.insert(), member_rows())
        conn.execute(orders.insert(), paid)
        conn.execute(refunds.insert(), refunded)
        conn.execute(messages.insert(), message_rows())
    return shop


@pytest.fixture
def shop(tmp_path: Path, db_url: str, engine: Any) -> Shop:
    return make_shop(tmp_path, db_url)


def report_of(shop: Shop, since: date = SINCE, until: date = UNTIL) -> dict[str, Any]:
    with shop.runtime.engine.connect() as conn:
        facts = fetch_program_report_facts(conn, shop.program, since=since, until=until, now=NOW)
    return build_program_report(facts).as_dict()


def test_the_fixture_members_fall_in_the_groups_they_are_written_for() -> None:
    share = Decimal(SHARE)
    assert [in_global_control(m, share) for m in CONTROL] == [True] * 3
    assert [in_global_control(m, share) for m in MARKETED] == [False] * 6


def test_the_report_counts_members_messages_purchasers_and_revenue_per_group(shop: Shop) -> None:
    report = report_of(shop)

    groups = {group["group"]: group for group in report["groups"]}
    assert list(groups) == ["marketed", "global_control"]
    marketed, control = groups["marketed"], groups["global_control"]
    assert {k: marketed[k] for k in ("members", "messages", "purchasers", "orders")} == {
        "members": 6, "messages": 4, "purchasers": 3, "orders": 4,
    }  # fmt: skip
    assert {k: control[k] for k in ("members", "messages", "purchasers", "orders")} == {
        "members": 3, "messages": 0, "purchasers": 1, "orders": 1,
    }  # fmt: skip
    assert marketed["messages_per_member"] == pytest.approx(4 / 6)
    assert control["messages_per_member"] == 0.0
    assert (marketed["purchase_rate"], control["purchase_rate"]) == (0.5, pytest.approx(1 / 3))
    assert (marketed["revenue"], marketed["revenue_per_member"]) == ("210.00", "35.00")
    assert (control["revenue"], control["revenue_per_member"]) == ("25.00", "8.33")
    assert report["note"] is None
    assert (report["since"], report["until"], report["timezone"]) == (
        "2026-11-01", "2026-11-07", "Asia/Shanghai",
    )  # fmt: skip
    assert report["global_control"] == "0.25"


def test_the_rates_have_wilson_intervals_and_the_lift_is_newcombe_with_a_z_test(
    shop: Shop,
) -> None:
    report = report_of(shop)

    marketed, control = report["groups"]
    # Wilson 95% of 3 in 6: (x + z²/2 ± z·sqrt(x(n-x)/n + z²/4)) / (n + z²)
    z = 1.959963984540054
    half = z * math.sqrt(3 * 3 / 6 + z * z / 4) / (6 + z * z)
    center = (3 + z * z / 2) / (6 + z * z)
    assert (marketed["rate_low"], marketed["rate_high"]) == pytest.approx(
        (center - half, center + half), abs=1e-12
    )
    assert (control["rate_low"], control["rate_high"]) == pytest.approx(
        proportion_confint(1, 3, method="wilson"), abs=1e-9
    )
    lift = report["lift"]
    assert lift["rate_difference"] == pytest.approx(0.5 - 1 / 3, abs=1e-15)
    assert (lift["rate_low"], lift["rate_high"]) == pytest.approx(
        confint_proportions_2indep(3, 6, 1, 3, method="newcomb", compare="diff"), abs=1e-9
    )
    # pooled p = 4/9: z = (1/2 - 1/3) / sqrt(4/9 · 5/9 · (1/6 + 1/3))
    assert lift["z"] == pytest.approx((1 / 6) / math.sqrt(4 / 9 * 5 / 9 * (1 / 2)), abs=1e-12)
    assert (lift["z"], lift["p_value"]) == pytest.approx(
        proportions_ztest([3, 1], [6, 3]), abs=1e-9
    )
    assert lift["p_value"] == pytest.approx(0.635256, abs=1e-6)
    assert lift["significant"] is False


def test_the_revenue_lift_is_the_difference_per_member_with_a_normal_interval(
    shop: Shop,
) -> None:
    lift = report_of(shop)["lift"]

    # 35 - 25/3; s² of the marketed 3190, of the control 625/3: ± z·sqrt(3190/6 + 625/9)
    half = 1.959963984540054 * math.sqrt(3190 / 6 + 625 / 9)
    assert lift["revenue_per_member_difference"] == "26.67"
    assert (lift["revenue_low"], lift["revenue_high"]) == ("-21.39", "74.72")
    assert float(lift["revenue_low"]) == pytest.approx(35 - 25 / 3 - half, abs=0.005)
    compared = CompareMeans(
        DescrStatsW(np.array(MARKETED_REVENUE, dtype=float)),
        DescrStatsW(np.array(CONTROL_REVENUE, dtype=float)),
    )
    low, high = compared.zconfint_diff(usevar="unequal")
    assert (lift["revenue_low"], lift["revenue_high"]) == (f"{low:.2f}", f"{high:.2f}")


@pytest.mark.parametrize(
    ("since", "until", "marketed", "control"),
    [
        # (members, messages, purchasers, orders, revenue) of each group
        (SINCE, UNTIL, (6, 4, 3, 4, "210.00"), (3, 0, 1, 1, "25.00")),
        # the day before: only m-dan's order at 23:59:59; m-hal is not registered yet
        (date(2026, 10, 31), date(2026, 10, 31), (5, 0, 1, 1, "40.00"), (3, 0, 0, 0, "0.00")),
        # the day after: m-cat's order and message at midnight; m-ivy registered at midnight
        (date(2026, 11, 8), date(2026, 11, 8), (7, 1, 1, 1, "999.00"), (3, 0, 0, 0, "0.00")),
        # the first day alone holds the order and message of its first instant; no m-hal yet
        (SINCE, SINCE, (5, 1, 1, 1, "100.00"), (3, 0, 0, 0, "0.00")),
        # the last day alone holds those of its last second (o-3) and m-ivy's none (not yet)
        (UNTIL, UNTIL, (6, 0, 1, 1, "80.00"), (3, 0, 0, 0, "0.00")),
    ],
)
def test_the_window_is_business_days_from_the_first_midnight_to_the_last(
    shop: Shop,
    since: date,
    until: date,
    marketed: tuple[Any, ...],
    control: tuple[Any, ...],
) -> None:
    groups = {g["group"]: g for g in report_of(shop, since, until)["groups"]}

    keys = ("members", "messages", "purchasers", "orders", "revenue")
    assert tuple(groups["marketed"][k] for k in keys) == marketed
    assert tuple(groups["global_control"][k] for k in keys) == control


def test_without_a_global_control_group_the_report_says_so_and_shows_the_marketed(
    tmp_path: Path, db_url: str, engine: Any
) -> None:
    shop = make_shop(tmp_path, db_url, share="0")

    report = report_of(shop)

    [marketed] = report["groups"]
    assert marketed["group"] == "marketed"
    assert (marketed["members"], marketed["purchasers"], marketed["revenue"]) == (9, 4, "235.00")
    assert report["lift"] is None
    assert "messaging.global_control is 0" in report["note"]
    json.dumps(report, allow_nan=False)


def test_an_empty_global_control_group_gives_no_lift_and_says_so(shop: Shop) -> None:
    with shop.runtime.engine.begin() as conn:
        conn.execute(members.delete().where(members.c.member_id.in_(CONTROL)))

    report = report_of(shop)

    assert [g["group"] for g in report["groups"]] == ["marketed"]
    assert report["groups"][0]["members"] == 6
    assert report["lift"] is None
    assert "global control group is empty" in report["note"]
    json.dumps(report, allow_nan=False)


def facts(members_: list[str], share: str, **activity: MemberActivity) -> ProgramReportFacts:
    return ProgramReportFacts(
        window=Window(SINCE, UNTIL, "Asia/Shanghai"),
        now=NOW,
        share=Decimal(share),
        members=tuple(members_),
        activity=activity,
    )


def test_a_control_group_of_one_member_has_a_rate_lift_but_no_revenue_interval() -> None:
    one = facts(["m-bob", "m-ann", "m-cat"], SHARE, **{"m-ann": MemberActivity(1, 1, Decimal(5))})

    report = build_program_report(one).as_dict()

    lift = report["lift"]
    assert lift["rate_difference"] == 0.5
    assert lift["revenue_per_member_difference"] == "2.50"
    assert (lift["revenue_low"], lift["revenue_high"]) == (None, None)
    json.dumps(report, allow_nan=False)


def test_groups_that_bought_nothing_have_a_zero_lift_without_nan() -> None:
    report = build_program_report(facts(CONTROL + MARKETED, SHARE)).as_dict()

    lift = report["lift"]
    assert (lift["rate_difference"], lift["z"], lift["p_value"]) == (0.0, 0.0, 1.0)
    assert (lift["revenue_low"], lift["revenue_high"]) == ("0.00", "0.00")
    json.dumps(report, allow_nan=False)


def test_a_program_without_members_reports_empty_groups() -> None:
    report = build_program_report(facts([], "0"))

    assert [(g.members, g.purchase_rate, g.revenue_per_member) for g in report.groups] == [
        (0, None, None)
    ]
    assert max(len(line) for line in report_lines(report)) <= 80


@pytest.fixture
def cli(shop: Shop, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    monkeypatch.delenv("LOYALTY_REDIS_URL", raising=False)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(shop.settings.program_dir))

    def run(*args: str, now: datetime = NOW) -> Result:
        set_runtime(None)
        return CliRunner().invoke(app, ["--now", now.isoformat(), "program", "report", *args])

    return run


def test_the_json_of_the_command_is_the_report(cli: Any, shop: Shop) -> None:
    result = cli("--since", "2026-11-01", "--until", "2026-11-07", "--json")

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert datetime.fromisoformat(printed.pop("generated_at")) == NOW
    expected = json.loads(json.dumps(report_of(shop)))
    assert printed == {k: v for k, v in expected.items() if k != "generated_at"}


def test_by_default_the_window_is_the_30_days_ending_today_on_the_engine_clock(cli: Any) -> None:
    # 00:30 on 8 November in Shanghai is still 7 November in UTC: the business day counts
    printed = json.loads(cli("--json", now=at("2026-11-08 00:30")).stdout)

    assert (printed["since"], printed["until"]) == ("2026-10-10", "2026-11-08")
    marketed = printed["groups"][0]
    # m-ivy is a member by then, and every marketed order o-1 to o-6 and o-8 is in
    assert (marketed["members"], marketed["orders"], marketed["revenue"]) == (7, 7, "1549.00")


def test_the_text_report_is_a_table_within_80_columns(cli: Any) -> None:
    result = cli("--since", "2026-11-01", "--until", "2026-11-07")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "program report: business days 2026-11-01 to 2026-11-07 (Asia/Shanghai)"
    assert "global control group: 25% of members, sent no marketing" in lines
    table = lines[: lines.index("lift of marketing: marketed minus global control, 95% intervals")]
    rows = {line[:22].strip(): line[22:].split() for line in table if line[22:].strip()}
    assert rows["members"] == ["6", "3"]
    assert rows["purchase rate"] == ["50.0%", "33.3%"]
    assert rows["revenue"] == ["210.00", "25.00"]
    assert "  purchase rate       +16.7 pts" in result.stdout
    assert "not significant" in result.stdout
    assert "  revenue per member  +26.67 [-21.39, +74.72]" in result.stdout
    assert max(len(line) for line in lines) <= 80


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-11-31"], "--since '2026-11-31' is not a date; write it as YYYY-MM-DD"),
        (["--until", "yesterday"], "--until 'yesterday' is not a date"),
        (["--until", "9999-12-31"], "--until '9999-12-31' is out of range; give a day from 1970"),
        (["--since", "2026-11-08", "--until", "2026-11-07"],
         "--since 2026-11-08 is after --until 2026-11-07; give a --since on or before --until"),
    ],
)  # fmt: skip
def test_a_bad_day_exits_1_naming_the_option_and_the_fix(
    cli: Any, args: list[str], message: str
) -> None:
    result = cli(*args)

    assert result.exit_code == 1
    assert message in " ".join(result.output.split())

"""``campaigns report``: the numbers of a hand-computed fixture (journeys, messages, conversions
and orders written straight into the tables), the text, the JSON, ``--all``, and the HTML page
whose charts carry the same figures as the JSON, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import html5lib
import pytest
from campaign_shop import Shop, at, paid, registered
from typer.testing import CliRunner, Result

from campaigns.report import build_report
from campaigns.report_facts import ConversionFact, ReportFacts, fetch_report_facts
from campaigns.tables import conversions, journey_steps, journeys
from core.cli import app
from core.events.tables import orders, refunds
from core.runtime import set_runtime
from notifications.tables import messages

SEND = [{"send": {"channel": "push", "template": "cart-reminder"}}]
CART = {
    "id": "cart",
    "name": "Cart reminder",
    "kind": "marketing",
    "trigger": {"cart_abandoned": {"idle_for": "1h"}},
    "goal": {"event": "order.paid", "within": "7d"},
    "experiment": {
        "holdout": "0.2",
        "variants": {"a": {"weight": 50, "steps": SEND}, "b": {"weight": 50, "steps": SEND}},
    },
}
ENTERED = {"a": 10, "b": 8, "holdout": 5, "global_control": 2}
# (arm, journey number, order total, refunded, paid on); revenue a 100 + 50 + (30 - 10) = 170
CONVERSIONS = [
    ("a", 0, "100.00", None, "2026-11-02 10:00"),
    ("a", 1, "50.00", None, "2026-11-02 23:30"),
    ("a", 2, "30.00", "10.00", "2026-11-04 09:00"),
    ("b", 0, "40.00", None, "2026-11-02 12:00"),
    ("holdout", 0, "25.00", None, "2026-11-04 08:00"),
]
# (arm, journey number, channel, status, reason): a has 7 journeys messaged, b 5
MESSAGES = (
    [("a", n, "push", "sent", None) for n in range(7)]
    + [("a", n, "push", "suppressed", "unsubscribed") for n in (7, 8)]
    + [("a", 9, None, "suppressed", "no_channel")]
    + [("b", n, "push", "sent", None) for n in range(5)]
    + [("b", 5, "push", "failed", "provider_rejected")]
)  # fmt: skip
NOW = at("2026-11-10 12:00")


def jid(arm: str, n: int) -> str:
    return f"j-{arm}-{n}"


def journey_rows() -> list[dict[str, Any]]:
    return [
        {
            "journey_id": jid(arm, n),
            "campaign_id": "cart",
            "member_id": f"m-{arm}-{n}",
            "enrolment_key": f"cart:{arm}:{n}",
            "version": "v1",
            "arm": arm,
            "status": "completed",
            "attempts": 0,
            "context": {},
            "entered_at": at("2026-11-01 10:00"),
            "updated_at": at("2026-11-01 10:00"),
        }
        for arm, count in ENTERED.items()
        for n in range(count)
    ]


def message_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sent, steps = [], []
    for index, (arm, n, channel, status, reason) in enumerate(MESSAGES):
        when = at("2026-11-01 11:00")
        sent.append(
            {"message_id": f"msg-{index}", "dedupe_key": f"journey:{jid(arm, n)}:s1",
             "member_id": f"m-{arm}-{n}", "campaign_id": "cart", "template_id": "cart-reminder",
             "kind": "marketing", "channel": channel, "status": status, "reason": reason,
             "attempts": 0, "created_at": when, "updated_at": when}
        )  # fmt: skip
        steps.append(
            {"journey_id": jid(arm, n), "step_id": "s1", "kind": "send", "status": "done",
             "member_id": f"m-{arm}-{n}", "message_id": f"msg-{index}", "executed_at": when}
        )  # fmt: skip
    return sent, steps


def conversion_rows() -> dict[Any, list[dict[str, Any]]]:
    found: dict[Any, list[dict[str, Any]]] = {conversions: [], orders: [], refunds: []}
    for arm, n, total, refunded, when in CONVERSIONS:
        order = f"o-{arm}-{n}"
        found[conversions].append(
            {"journey_id": jid(arm, n), "campaign_id": "cart", "member_id": f"m-{arm}-{n}",
             "arm": arm, "event_id": f"e-{order}", "order_id": order, "converted_at": at(when)}
        )  # fmt: skip
        found[orders].append(
            {"order_id": order, "member_id": f"m-{arm}-{n}", "total": Decimal(total),
             "currency": "CNY", "paid_at": at(when), "items": [], "coupon_codes": [],
             "points_redeemed": 0, "event_id": f"e-{order}"}
        )  # fmt: skip
        if refunded:
            found[refunds].append(
                {"event_id": f"r-{order}", "order_id": order, "member_id": f"m-{arm}-{n}",
                 "amount": Decimal(refunded), "refunded_at": at(when) + timedelta(days=1)}
            )  # fmt: skip
    return found


@pytest.fixture
def shop(tmp_path: Path, db_url: str, engine: Any) -> Shop:
    shop = Shop(tmp_path, db_url, CART)
    sent, steps = message_rows()
    with shop.runtime.engine.begin() as conn:
        conn.execute(journeys.insert(), journey_rows())
        conn.execute(messages.insert(), sent)
        conn.execute(journey_steps.insert(), steps)
        for table, rows in conversion_rows().items():
            if rows:
                conn.execute(table.insert(), rows)
    return shop


def report_of(shop: Shop) -> dict[str, Any]:
    with shop.runtime.engine.connect() as conn:
        facts = fetch_report_facts(conn, "cart", shop.program, NOW)
    return build_report(facts).as_dict()


def test_the_report_counts_entrants_messages_conversions_and_revenue_per_arm(shop: Shop) -> None:
    report = report_of(shop)

    arms = {arm["arm"]: arm for arm in report["arms"]}
    assert list(arms) == ["a", "b", "holdout", "global_control"]
    assert {a: (arms[a]["entered"], arms[a]["messaged"], arms[a]["conversions"]) for a in arms} == {
        "a": (10, 7, 3), "b": (8, 5, 1), "holdout": (5, 0, 1), "global_control": (2, 0, 0),
    }  # fmt: skip
    assert [arms[a]["rate"] for a in arms] == [0.3, 0.125, 0.2, 0.0]
    assert {a: (arms[a]["revenue"], arms[a]["revenue_per_entrant"]) for a in arms} == {
        "a": ("170.00", "17.00"), "b": ("40.00", "5.00"), "holdout": ("25.00", "5.00"),
        "global_control": ("0.00", "0.00"),
    }  # fmt: skip
    assert report["funnel"] == {"entered": 25, "messaged": 12, "converted": 5}
    assert report["revenue"] == "235.00"
    assert report["messages"] == {"push": {"sent": 12, "suppressed": 2, "failed": 1},
                                  "none": {"suppressed": 1}}  # fmt: skip
    assert report["suppressions"] == {"no_channel": 1, "unsubscribed": 2}
    assert report["conversions_per_day"] == {"2026-11-02": 3, "2026-11-03": 0, "2026-11-04": 2}


def test_the_rate_interval_is_wilson_and_the_lift_is_newcombe_with_a_z_test(shop: Shop) -> None:
    report = report_of(shop)

    [a] = [arm for arm in report["arms"] if arm["arm"] == "a"]
    # Wilson 95% for 3 of 10: (p + z²/2n ± z√(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.959964
    assert (a["rate_low"], a["rate_high"]) == pytest.approx((0.107791, 0.603222), abs=1e-6)
    lifts = {lift["arm"]: lift for lift in report["lifts"]}
    assert list(lifts) == ["a", "b"]
    assert lifts["a"]["difference"] == pytest.approx(0.1)
    # Newcombe hybrid score, with the holdout's Wilson (0.036224, 0.624465) for 1 of 5:
    # 0.1 - √((0.3 - 0.107791)² + (0.624465 - 0.2)²), 0.1 + √((0.603222 - 0.3)² + (0.2 - 0.036224)²)
    assert (lifts["a"]["low"], lifts["a"]["high"]) == pytest.approx((-0.365956, 0.444624), abs=1e-6)
    # pooled p = 4/15: z = 0.1 / √(4/15 · 11/15 · (1/10 + 1/5))
    assert lifts["a"]["z"] == pytest.approx(0.412861, abs=1e-6)
    assert lifts["a"]["p_value"] == pytest.approx(0.679708, abs=1e-6)
    assert (lifts["a"]["significant"], lifts["b"]["significant"]) == (False, False)
    assert report["lift_note"] is None


def test_an_empty_holdout_gives_no_lift_and_says_so(shop: Shop) -> None:
    with shop.runtime.engine.begin() as conn:
        conn.execute(conversions.delete().where(conversions.c.arm == "holdout"))
        conn.execute(journeys.delete().where(journeys.c.arm == "holdout"))

    report = report_of(shop)

    assert report["lifts"] == []
    assert "holdout is empty" in report["lift_note"]
    assert [arm["rate"] for arm in report["arms"] if arm["arm"] == "holdout"] == [None]


@pytest.fixture
def cli(shop: Shop, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LOYALTY_DATABASE_URL", db_url)
    monkeypatch.delenv("LOYALTY_REDIS_URL", raising=False)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(shop.settings.program_dir))

    def run(*args: str) -> Result:
        set_runtime(None)
        return CliRunner().invoke(app, ["--now", NOW.isoformat(), "campaigns", "report", *args])

    return run


def test_the_json_of_the_command_is_the_report(cli: Any, shop: Shop) -> None:
    result = cli("cart", "--json")

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert datetime.fromisoformat(printed.pop("generated_at")) == NOW
    expected = json.loads(json.dumps(report_of(shop)))
    assert printed == {k: v for k, v in expected.items() if k != "generated_at"}


def test_the_text_report_fits_80_columns(cli: Any) -> None:
    result = cli("cart")

    assert result.exit_code == 0, result.output
    assert "entered 25, messaged 12, converted 5 (20.0%), revenue 235.00" in result.stdout
    assert "not significant" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_all_gives_one_line_per_campaign(cli: Any) -> None:
    rows = json.loads(cli("--all", "--json").stdout)
    text = cli("--all").stdout.splitlines()

    assert rows == [{"campaign_id": "cart", "name": "Cart reminder", "entered": 25,
                     "conversions": 5, "rate": 0.2, "revenue": "235.00"}]  # fmt: skip
    assert text[1].split() == ["cart", "25", "5", "20.0%", "235.00"]


def test_an_unknown_campaign_exits_1_naming_the_known_ones(cli: Any) -> None:
    result = cli("carts")

    assert result.exit_code == 1
    assert "did you mean 'cart'" in result.output


class Figures(HTMLParser):
    """The page's elements that carry a data-value, and its SVG sources."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[dict[str, str | None]] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-value" in found:
            self.figures.append({"tag": tag, **found})
        if tag in ("script", "link") or found.get("src") or found.get("href"):
            self.external.append(tag)


def test_the_html_page_draws_the_figures_of_the_json(cli: Any, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    data = json.loads(cli("cart", "--json", "--html", str(page)).stdout)
    text = page.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(text)  # raises on any HTML5 parse error
    parser = Figures()
    parser.feed(text)
    parser.close()

    svgs = [ET.fromstring(chunk[: chunk.index("</svg>") + 6]) for chunk in
            ["<svg" + part for part in text.split("<svg")[1:]]]  # fmt: skip
    assert len(svgs) == 3 and parser.external == []
    by_class: dict[str, list[dict[str, str | None]]] = {}
    for figure in parser.figures:
        by_class.setdefault(figure.get("class") or "", []).append(figure)
    assert {f["data-stage"]: int(f["data-value"] or 0) for f in by_class["funnel-stage"]} == (
        data["funnel"]
    )
    assert {f["data-arm"]: [float(f[k] or "nan") for k in ("data-value", "data-low", "data-high")]
            for f in by_class["arm-rate"]} == {
        a["arm"]: [a["rate"], a["rate_low"], a["rate_high"]] for a in data["arms"]
    }  # fmt: skip
    assert {f["data-day"]: int(f["data-value"] or 0) for f in by_class["day"]} == (
        data["conversions_per_day"]
    )
    assert {f["data-arm"]: float(f["data-value"] or "nan") for f in by_class["lift"]} == {
        lift["arm"]: lift["difference"] for lift in data["lifts"]
    }


def facts(holdout: str, variants: tuple[str, ...], entered: dict[str, int]) -> ReportFacts:
    converted = [ConversionFact(arm, NOW, Decimal("10.00")) for arm in entered if entered[arm]]
    return ReportFacts(
        campaign_id="c", name="C", zone="Asia/Shanghai", now=NOW, holdout=Decimal(holdout),
        variants=variants, entered=entered, messaged={}, messages=(),
        conversions=tuple(converted),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("holdout", "variants", "entered", "arms", "lifts", "note"),
    [
        ("0", (), {"main": 4}, ["main"], [], "no holdout"),
        ("0.1", (), {"main": 4, "holdout": 2}, ["main", "holdout"], ["main"], None),
        ("0.1", ("a",), {"a": 4}, ["a", "holdout"], [], "holdout is empty"),
        ("0.1", ("a", "b"), {"a": 4, "holdout": 2}, ["a", "b", "holdout"], ["a"], None),
        ("0", (), {"main": 4, "global_control": 3}, ["main", "global_control"], [], "no holdout"),
    ],
)
def test_each_variant_or_main_is_compared_with_a_holdout_that_has_entrants(
    holdout: str,
    variants: tuple[str, ...],
    entered: dict[str, int],
    arms: list[str],
    lifts: list[str],
    note: str | None,
) -> None:
    report = build_report(facts(holdout, variants, entered))

    assert [arm.arm for arm in report.arms] == arms
    assert [lift.arm for lift in report.lifts] == lifts
    assert (report.lift_note is None) if note is None else (note in (report.lift_note or ""))


WELCOME = {
    "id": "welcome",
    "name": "Welcome",
    "kind": "marketing",
    "trigger": {"event": "member.registered"},
    "goal": {"event": "order.paid", "within": "7d"},
    "steps": [
        {"issue_coupon": "first-brew-15"},
        {"send": {"channel": "email", "template": "welcome"}},
    ],
}


def test_a_running_campaign_reports_what_its_journeys_sent_and_converted(
    tmp_path: Path, db_url: str, engine: Any
) -> None:
    shop = Shop(tmp_path, db_url, WELCOME)
    shop.ingest(registered("m-ann", "2026-11-01 10:00"), registered("m-bob", "2026-11-01 10:05"))
    shop.ingest(paid("m-ann", "o-1", "120.00", "2026-11-03 10:00"))

    with shop.runtime.engine.connect() as conn:
        report = build_report(fetch_report_facts(conn, "welcome", shop.program, NOW)).as_dict()

    assert report["funnel"] == {"entered": 2, "messaged": 2, "converted": 1}
    assert report["messages"] == {"email": {"sent": 2}}
    assert (report["revenue"], report["arms"][0]["revenue_per_entrant"]) == ("120.00", "60.00")
    assert "no holdout" in report["lift_note"]

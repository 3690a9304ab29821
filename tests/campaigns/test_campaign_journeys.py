"""Journeys run by the engine: triggers enrol, steps run once at their time, exits and pauses
stop them, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from campaign_shop import Shop, at, cart, paid, registered

from campaigns.assignment import assign_arm
from campaigns.controls import set_status
from campaigns.definitions import Campaign
from campaigns.tables import journey_steps

CART = {
    "id": "cart-rescue",
    "name": "Cart rescue",
    "kind": "marketing",
    "trigger": {"cart_abandoned": {"idle_for": "1h", "min_total": 80}},
    "exit_on": ["order.paid"],
    "reentry_after": "7d",
    "steps": [
        {"send": {"channel": "push", "template": "cart-reminder"}},
        {"wait": "1d"},
        {"issue_coupon": "cart-steep-12"},
        {"send": {"channel": ["sms", "email"], "template": "cart-coupon"}},
    ],
}


@pytest.fixture
def shop(tmp_path: Path, db_url: str, engine: Any) -> Shop:
    return Shop(tmp_path, db_url, CART)


def carol_abandons(shop: Shop, when: str = "2026-11-20 13:00", total: str = "420.00") -> None:
    shop.ingest(registered("m-carol", "2026-11-01 10:00"))
    shop.ingest(cart("m-carol", "c-1", total, when))


def test_an_abandoned_cart_gets_its_steps_at_their_times(shop: Shop) -> None:
    carol_abandons(shop)

    shop.tick(at("2026-11-20 14:00"), start=at("2026-11-20 13:00"))
    first = shop.sent()
    shop.tick(at("2026-11-21 14:00"))
    sms = shop.outbox()[-1]

    assert first == [("cart-reminder", "push")]
    assert shop.sent() == [("cart-reminder", "push"), ("cart-coupon", "sms")]
    assert sms["sent_at"].startswith("2026-11-21T06:00")
    [journey] = shop.journeys("cart-rescue")
    [coupon] = [row for row in shop.rows(journey_steps) if row.coupon_code]
    assert coupon.coupon_code in sms["body"] and "1" in sms["body"]  # the code, one item
    assert (journey.status, journey.context["cart"]["total"]) == ("completed", "420.00")


def test_a_cart_below_the_minimum_or_updated_meanwhile_is_not_taken(shop: Shop) -> None:
    shop.ingest(registered("m-dan", "2026-11-01 10:00"))
    shop.ingest(cart("m-dan", "c-small", "50.00", "2026-11-20 13:00"))
    carol_abandons(shop)
    shop.ingest(cart("m-carol", "c-1", "460.00", "2026-11-20 13:40"))

    shop.tick(at("2026-11-20 14:30"), start=at("2026-11-20 13:00"))
    early = shop.journeys()
    shop.tick(at("2026-11-20 14:40"))

    assert early == []
    [journey] = shop.journeys()
    assert (journey.member_id, journey.context["cart"]["total"]) == ("m-carol", "460.00")


def test_a_converted_cart_is_not_enrolled(shop: Shop) -> None:
    carol_abandons(shop)
    shop.ingest(paid("m-carol", "o-1", "420.00", "2026-11-20 13:30", cart_id="c-1"))

    shop.tick(at("2026-11-21 13:00"), start=at("2026-11-20 13:00"))

    assert shop.journeys() == [] and shop.sent() == []


def test_paying_mid_wait_ends_the_journey_and_nothing_follows(shop: Shop) -> None:
    carol_abandons(shop)
    shop.tick(at("2026-11-20 14:00"), start=at("2026-11-20 13:00"))

    shop.ingest(paid("m-carol", "o-1", "420.00", "2026-11-20 18:00"))
    shop.tick(at("2026-11-23 12:00"))

    [journey] = shop.journeys()
    assert (journey.status, journey.reason) == ("exited", "exit_on:order.paid")
    assert shop.sent() == [("cart-reminder", "push")]


def test_an_exit_cancels_a_message_that_quiet_hours_deferred(shop: Shop) -> None:
    carol_abandons(shop, when="2026-11-20 21:30")  # idle at 22:30: quiet until 08:30
    shop.tick(at("2026-11-20 22:30"), start=at("2026-11-20 21:30"))
    [deferred] = shop.messages()

    shop.ingest(paid("m-carol", "o-1", "420.00", "2026-11-20 23:00"))
    shop.tick(at("2026-11-21 10:00"))

    [cancelled] = shop.messages()
    assert (deferred.status, deferred.reason) == ("deferred", "quiet_hours")
    assert (cancelled.status, cancelled.reason) == ("cancelled", "journey_exited")
    assert shop.sent() == []


def test_a_step_already_queued_when_the_member_pays_sends_nothing(shop: Shop) -> None:
    carol_abandons(shop)
    shop.tick(at("2026-11-20 14:00"), start=at("2026-11-20 13:00"))
    [journey] = shop.journeys()

    shop.ingest(paid("m-carol", "o-1", "420.00", "2026-11-21 13:00"))
    report = shop.advance([journey.journey_id], at("2026-11-21 14:00"))  # the queued message

    assert report.steps == 0
    assert shop.sent() == [("cart-reminder", "push")]


def test_reentry_after_keeps_a_member_out_for_its_window(shop: Shop) -> None:
    carol_abandons(shop)
    shop.tick(at("2026-11-22 12:00"), start=at("2026-11-20 13:00"))
    shop.ingest(cart("m-carol", "c-2", "300.00", "2026-11-24 10:00"))
    shop.tick(at("2026-11-25 12:00"))
    within = len(shop.journeys())
    shop.ingest(cart("m-carol", "c-3", "300.00", "2026-11-28 10:00"))
    shop.tick(at("2026-11-28 12:00"))

    assert within == 1
    assert [j.context["cart"]["cart_id"] for j in shop.journeys()] == ["c-1", "c-3"]


def test_a_paused_campaign_enrols_no_one_and_holds_its_journeys(shop: Shop) -> None:
    carol_abandons(shop)
    shop.tick(at("2026-11-20 14:00"), start=at("2026-11-20 13:00"))
    with shop.runtime.engine.begin() as conn:
        set_status(conn, "cart-rescue", "paused", now=at("2026-11-20 15:00"))
    shop.ingest(registered("m-dan", "2026-11-01 10:00"))
    shop.ingest(cart("m-dan", "c-9", "200.00", "2026-11-20 16:00"))

    shop.tick(at("2026-11-22 12:00"))
    held = shop.sent()
    with shop.runtime.engine.begin() as conn:
        made_due = set_status(conn, "cart-rescue", "active", now=at("2026-11-22 12:00"))
    shop.tick(at("2026-11-22 12:05"))

    assert held == [("cart-reminder", "push")]
    assert made_due == 1
    assert [j.member_id for j in shop.journeys()] == ["m-carol"]
    assert shop.sent() == [("cart-reminder", "push"), ("cart-coupon", "sms")]


def test_running_a_journey_again_repeats_no_step(shop: Shop) -> None:
    carol_abandons(shop)
    shop.tick(at("2026-11-20 14:00"), start=at("2026-11-20 13:00"))
    [journey] = shop.journeys()

    again = shop.advance([journey.journey_id], at("2026-11-20 14:00"))
    shop.tick(at("2026-11-21 14:00"))
    later = shop.advance([journey.journey_id], at("2026-11-21 15:00"))

    assert (again.steps, later.steps) == (0, 0)
    assert len(shop.rows(journey_steps)) == 4
    assert len(shop.messages()) == 2 and len(shop.outbox()) == 2


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_workers_racing_for_a_due_journey_run_each_step_once(shop: Shop) -> None:
    carol_abandons(shop)
    shop.tick(at("2026-11-20 14:00"), start=at("2026-11-20 13:00"))
    [journey] = shop.journeys()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            shop.advance([journey.journey_id], at("2026-11-21 14:00"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(shop.rows(journey_steps)) == 4
    assert len([row for row in shop.rows(journey_steps) if row.coupon_code]) == 1
    assert len(shop.messages()) == 2


def test_a_failing_step_is_retried_later_and_runs_once(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    import campaigns.effects as steps

    real = steps.message_variables_for
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= 2:  # the batch, then the journey alone
            raise RuntimeError("provider template store is down")
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, "message_variables_for", flaky)
    carol_abandons(shop)
    shop.tick(at("2026-11-20 14:00"), start=at("2026-11-20 13:00"))
    [failed] = shop.journeys()
    shop.tick(at("2026-11-20 14:10"))

    assert (failed.attempts, failed.next_run_at) == (1, at("2026-11-20 14:05"))
    assert "template store is down" in failed.last_error
    assert shop.sent() == [("cart-reminder", "push")]


def test_a_member_in_the_holdout_is_enrolled_and_gets_nothing(tmp_path: Path, db_url: str,
                                                             engine: Any) -> None:  # fmt: skip
    experiment = {**CART, "steps": None, "experiment": {"holdout": 0.5, "variants": {
        "only": {"weight": 1, "steps": CART["steps"]}}}}  # fmt: skip
    del experiment["steps"]
    model = Campaign.model_validate(experiment)
    member = next(f"m-{n}" for n in range(100) if assign_arm(model, f"m-{n}") == "holdout")
    shop = Shop(tmp_path, db_url, experiment)
    shop.ingest(registered(member, "2026-11-01 10:00"))
    shop.ingest(cart(member, "c-1", "420.00", "2026-11-20 13:00"))

    shop.tick(at("2026-11-22 13:00"), start=at("2026-11-20 13:00"))

    [journey] = shop.journeys()
    assert (journey.arm, journey.status, journey.reason) == ("holdout", "completed", "holdout")
    assert shop.sent() == [] and shop.rows(journey_steps) == []


def test_an_event_trigger_enrols_once_however_often_the_event_comes(
    tmp_path: Path, db_url: str, engine: Any
) -> None:
    welcome = {
        "id": "hello",
        "name": "Hello",
        "kind": "marketing",
        "trigger": {"event": "member.registered", "when": 'member.locale == "en"'},
        "steps": [
            {"issue_coupon": "first-brew-15"},
            {"send": {"channel": "email", "template": "welcome"}},
        ],
    }
    shop = Shop(tmp_path, db_url, welcome)
    joined = registered("m-ann", "2026-11-20 10:00")

    shop.ingest(joined)
    shop.ingest(joined)
    shop.ingest(registered("m-wu", "2026-11-20 10:00", locale="zh-CN"))

    assert [j.member_id for j in shop.journeys()] == ["m-ann"]
    assert shop.sent() == [("welcome", "email")]


def test_a_birthday_journey_starts_at_the_hour_in_the_members_own_zone(
    tmp_path: Path, db_url: str, engine: Any
) -> None:
    birthday = {
        "id": "bday",
        "name": "Birthday",
        "kind": "transactional",
        "trigger": {"birthday": {"days_before": 0, "at": "09:00"}},
        "steps": [{"issue_coupon": "birthday-pot"}, {"send": {"channel": "push",
                                                              "template": "birthday"}}],
    }  # fmt: skip
    shop = Shop(tmp_path, db_url, birthday)
    shop.ingest(registered("m-ny", "2026-01-01 10:00", timezone="America/New_York",
                           birthday="1990-11-21"))  # fmt: skip
    shop.ingest(registered("m-sh", "2026-01-01 10:00", birthday="1990-11-21"))

    shop.tick(at("2026-11-22 12:00"), start=at("2026-11-20 12:00"))

    sent = {m["member_id"]: m["sent_at"][:16] for m in shop.outbox()}
    assert sent == {"m-sh": "2026-11-21T01:00", "m-ny": "2026-11-21T14:00"}
    shop.tick(at("2026-11-24 12:00"))
    assert len(shop.outbox()) == 2  # once, not again the next days


def test_points_about_to_expire_bring_the_reminder_with_their_amount(
    tmp_path: Path, db_url: str, engine: Any
) -> None:
    expiring = {
        "id": "expiring",
        "name": "Expiring",
        "kind": "transactional",
        "trigger": {"points_expiring": {"within": "30d", "min_points": 100}},
        "reentry_after": "30d",
        "steps": [{"send": {"channel": "push", "template": "points-expiring"}}],
    }
    shop = Shop(tmp_path, db_url, expiring)
    shop.ingest(registered("m-old", "2025-11-25 10:00"))  # welcome points expire in a year
    lots_expire = shop.rows(__import__("loyalty.tables").tables.points_lots)[0].expires_at

    shop.tick(lots_expire - timedelta(days=29), start=lots_expire - timedelta(days=32))

    [message] = shop.outbox()
    assert message["member_id"] == "m-old" and message["campaign_id"] == "expiring"
    [journey] = shop.journeys()
    assert journey.context["points"]["expiring"] >= 100


def test_a_schedule_enrols_its_audience_at_the_cron_time_and_no_one_else(
    tmp_path: Path, db_url: str, engine: Any
) -> None:
    invite = {
        "id": "invite",
        "name": "Invite",
        "kind": "marketing",
        "trigger": {"schedule": {"cron": "0 10 * * *", "audience": "member.paid_orders >= 1"}},
        "reentry_after": "30d",
        "steps": [{"send": {"channel": "push", "template": "referral-invite"}}],
    }
    shop = Shop(tmp_path, db_url, invite)
    shop.ingest(
        registered("m-buyer", "2026-11-01 10:00"), registered("m-looker", "2026-11-01 10:00")
    )
    shop.ingest(paid("m-buyer", "o-1", "120.00", "2026-11-10 12:00"))

    shop.tick(at("2026-11-21 09:00"), start=at("2026-11-20 11:00"))
    before = shop.journeys()
    shop.tick(at("2026-11-23 12:00"))

    assert before == []
    [journey] = shop.journeys()
    assert journey.member_id == "m-buyer" and journey.enrolment_key.startswith("schedule:")
    assert [m["member_id"] for m in shop.outbox()] == ["m-buyer"]  # once: re-entry after 30d


def test_the_global_control_group_gets_no_marketing_but_transactional_still(
    tmp_path: Path, db_url: str, engine: Any
) -> None:
    from decimal import Decimal

    from campaigns.assignment import in_global_control

    member = next(f"m-{n}" for n in range(200) if in_global_control(f"m-{n}", Decimal("0.3")))
    upgrade = {
        "id": "congrats",
        "name": "Congrats",
        "kind": "transactional",
        "trigger": {"event": "member.registered"},
        "steps": [{"send": {"channel": "push", "template": "tier-upgraded"}}],
    }
    shop = Shop(tmp_path, db_url, CART, upgrade, global_control="0.3")
    assert shop.program.program_file.messaging.global_control == Decimal("0.3")

    shop.ingest(registered(member, "2026-11-01 10:00"))
    shop.ingest(cart(member, "c-1", "420.00", "2026-11-20 13:00"))
    shop.tick(at("2026-11-22 13:00"), start=at("2026-11-20 13:00"))

    arms = {j.campaign_id: (j.arm, j.status, j.reason) for j in shop.journeys()}
    assert arms["cart-rescue"] == ("global_control", "completed", "global_control")
    assert arms["congrats"][0] == "main"
    assert [m["campaign_id"] for m in shop.outbox()] == ["congrats"]

"""The serve worker's read cache (core.readcache, coupons.checkout_reads.CachedReads, the
guard's key lookups) on a real uvicorn and PostgreSQL: a repeated validate reads nothing, yet
every change shows at once, whether this worker made it (its answer waits for the cache) or
anyone else did (after the change's announcement); what depends on the time is computed, not
kept; and SQLite, or LOYALTY_API_READ_CACHE=0, never caches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from checkout_shop import MEMBER, NOW, Shop, serve_shop
from sqlalchemy import Engine, event

from core.clock import FixedClock, set_clock
from core.events.intake import Intake, ingest
from core.http.auth import revoke_key
from core.readcache import ReadCache
from coupons import api as coupons_api
from coupons.wallet import issue_coupon


@pytest.fixture
def shop(pg_url: str, pg_engine: Engine, examples: Path, tmp_path: Path) -> Iterator[Shop]:
    for served in serve_shop(pg_url, examples, tmp_path):
        wait_until_live(served)
        yield served


def wait_until_live(shop: Shop) -> None:
    deadline = time.monotonic() + 10
    while not served_cache(shop).live:
        assert time.monotonic() < deadline, "the read cache never started listening"
        time.sleep(0.01)


def served_cache(shop: Shop) -> ReadCache[Any]:
    assert shop.app is not None
    cache = shop.app.state.read_cache
    assert isinstance(cache, ReadCache)
    return cache


class Statements:
    """The SQL statements the served engine sends while the block runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.sent = engine, []

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.sent

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.sent.append(statement)


def by_code(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {coupon["code"]: coupon for coupon in answer["coupons"]}


def test_a_repeated_validate_reads_nothing_and_answers_the_same(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = shop.validate(codes=[shop.ladder], points=500)
    threaded: list[object] = []
    on_database = coupons_api._check_on_database
    monkeypatch.setattr(
        coupons_api, "_check_on_database", lambda *a: threaded.append(a) or on_database(*a)
    )
    with Statements(shop.runtime.engine) as sent:
        again = shop.validate(codes=[shop.ladder], points=500)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert sent == []
    assert threaded == []  # answered on the event loop, from the kept reads


def test_a_code_from_outside_the_wallet_is_read_from_the_database(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.validate()
    threaded: list[object] = []
    on_database = coupons_api._check_on_database
    monkeypatch.setattr(
        coupons_api, "_check_on_database", lambda *a: threaded.append(a) or on_database(*a)
    )
    answer = shop.validate(codes=["NOBODYS-CODE"]).json()
    assert answer["entered"]["codes"][0]["reason_codes"] == ["code.unknown"]
    assert len(threaded) == 1


def test_a_write_of_this_worker_shows_in_its_next_answer(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = served_cache(shop)
    apply = cache._apply

    def late(change: Any) -> None:  # announcements take their time
        time.sleep(0.3)
        apply(change)

    monkeypatch.setattr(cache, "_apply", late)
    before = shop.validate().json()
    assert before["points"]["held"] == 0
    held = shop.reserve("o-1", codes=[shop.ladder], points=600, ttl_seconds=600)
    assert held.status_code == 201, held.text
    after = shop.validate().json()  # at once: the reserve's answer waited for the cache
    assert by_code(after)[shop.ladder]["status"] == "reserved"
    assert (after["points"]["held"], after["points"]["available"]) == (600, 2800)


def test_a_change_made_elsewhere_shows_once_announced(shop: Shop) -> None:
    shop.validate()
    runtime = shop.runtime
    with runtime.engine.begin() as conn:  # another process, as far as the server knows
        code = issue_coupon(
            conn, runtime.program, coupon_id="free-shipping", member_id=MEMBER, now=NOW
        ).code
    assert served_cache(shop).barrier()
    assert code in by_code(shop.validate().json())


def test_an_event_ingested_elsewhere_changes_the_members_facts(shop: Shop) -> None:
    assert shop.validate().json()["locale"] == "zh-CN"
    updated = {
        "id": "upd-mei",
        "type": "member.updated",
        "occurred_at": (NOW - timedelta(minutes=5)).isoformat(),
        "member_id": MEMBER,
        "data": {"locale": "en"},
    }
    runtime = shop.runtime
    report = ingest([updated], Intake(engine=runtime.engine, now=NOW, program=runtime.program))
    assert report.accepted == 1, report.rejections
    assert served_cache(shop).barrier()
    assert shop.validate().json()["locale"] == "en"


def test_what_the_time_decides_is_computed_not_kept(shop: Shop) -> None:
    held = shop.reserve("o-1", points=600, ttl_seconds=600)
    assert held.status_code == 201, held.text
    assert shop.validate().json()["points"]["held"] == 600
    with Statements(shop.runtime.engine) as sent:
        set_clock(FixedClock(NOW + timedelta(minutes=11)))  # the hold lapsed; nothing wrote
        lapsed = shop.validate().json()
    assert lapsed["points"]["held"] == 0
    assert [s for s in sent if "api_keys" not in s] == []  # a key's use is noted each minute


def test_a_revoked_key_is_refused_at_once(shop: Shop) -> None:
    assert shop.validate().status_code == 200
    key_id = shop.keys["checkout"].split("_")[1]
    revoke_key(shop.runtime.engine, key_id)
    assert served_cache(shop).barrier()
    refused = shop.validate()
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]

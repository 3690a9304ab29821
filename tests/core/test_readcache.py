"""The read cache drops what PostgreSQL says changed, refuses what a change overtook, and serves
nothing while it cannot hear (real PostgreSQL: each test process has its own database, and so
its own notifications)."""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Iterator
from types import ModuleType

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from core.migrate import MIGRATIONS
from core.readcache import LISTENER, SENDER, WATCHED, Change, ReadCache, Watched, parse_change

# The fewest columns a row of each watched table needs; :v is the value of its watched column.
INSERTS = {
    "members": "INSERT INTO members (member_id, first_seen_at) VALUES (:v, now())",
    "orders": "INSERT INTO orders (order_id, member_id, total, currency, paid_at, items,"
    " coupon_codes, points_redeemed, event_id) VALUES ('o-' || :v, :v, 10, 'CNY', now(), '[]',"
    " '[]', 0, 'e-' || :v)",
    "refunds": "INSERT INTO refunds (event_id, order_id, member_id, amount, refunded_at)"
    " VALUES ('r-' || :v, 'o-1', :v, 1, now())",
    "member_tiers": "INSERT INTO member_tiers (member_id, tier_id, qualifying_spend, since,"
    " updated_at) VALUES (:v, 'bud', 0, now(), now())",
    "tier_history": "INSERT INTO tier_history (member_id, to_tier, direction, qualifying_spend,"
    " changed_at, cause) VALUES (:v, 'bud', 'up', 0, now(), 'recalc')",
    "referrals": "INSERT INTO referrals (referee_id, code, referrer_id, status, registered_at,"
    " updated_at) VALUES ('friend-of-' || :v, 'REF', :v, 'pending', now(), now())",
    "coupon_codes": "INSERT INTO coupon_codes (code, coupon_id, member_id, status, issued_at,"
    " updated_at) VALUES ('C-' || :v, 'welcome', :v, 'issued', now(), now())",
    "coupon_member_uses": "INSERT INTO coupon_member_uses (coupon_id, member_id, slot)"
    " VALUES ('welcome', :v, 1)",
    "points_lots": "INSERT INTO points_lots (member_id, entry_id, points, remaining,"
    " available_at) VALUES (:v, 1, 10, 10, now())",
    "points_holds": "INSERT INTO points_holds (order_id, member_id, points, held_until,"
    " created_at) VALUES ('o-' || :v, :v, 1, now(), now())",
    "points_ledger": "INSERT INTO points_ledger (member_id, kind, points, reason,"
    " idempotency_key, occurred_at, recorded_at) VALUES (:v, 'earn', 1, 'test', 'k-' || :v,"
    " now(), now())",
    "coupon_counters": "INSERT INTO coupon_counters (coupon_id, used, spent_cents)"
    " VALUES (:v, 0, 0)",
    "api_keys": "INSERT INTO api_keys (key_id, name, secret_sha256, scopes, created_at)"
    " VALUES (:v, 'test', 'x', '[]', now())",
}
# One type for :v wherever it appears (it is varchar in a column, text in a concatenation).
INSERTS = {table: insert.replace(":v", "CAST(:v AS text)") for table, insert in INSERTS.items()}
OPERATIONS = {
    "insert": lambda w: INSERTS[w.table],
    "update": lambda w: f"UPDATE {w.table} SET {w.column} = {w.column} WHERE {w.column} = :v",
    "delete": lambda w: f"DELETE FROM {w.table} WHERE {w.column} = :v",
}


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.01)


@pytest.fixture
def cache(pg_engine: Engine, pg_url: str) -> Iterator[ReadCache[str]]:
    with ReadCache[str](pg_url) as cache:
        wait_until(lambda: cache.live, "the cache listens")
        yield cache


def store(cache: ReadCache[str], *keys: str) -> None:
    for key in keys:
        assert cache.put(key, f"value of {key}", cache.ticket())


def run(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def notify(engine: Engine, payload: str) -> None:
    run(engine, "SELECT pg_notify('loyalty_changes', :payload)", payload=payload)


def held(cache: ReadCache[str], *keys: str) -> dict[str, bool]:
    return {key: cache.get(key) is not None for key in keys}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("watched", WATCHED, ids=lambda w: w.table)
def test_each_statement_drops_the_key_of_the_rows_it_touched(
    pg_engine: Engine, cache: ReadCache[str], watched: Watched, operation: str
) -> None:
    if operation != "insert":
        run(pg_engine, INSERTS[watched.table], v="m-1")
    key, bystander = f"{watched.prefix}:m-1", f"{watched.prefix}:m-2"
    assert cache.barrier()
    store(cache, key, bystander)

    run(pg_engine, OPERATIONS[operation](watched), v="m-1")

    assert cache.barrier()
    assert held(cache, key, bystander) == {key: False, bystander: True}


def test_claiming_an_unclaimed_code_drops_the_member_who_claimed_it(
    pg_engine: Engine, cache: ReadCache[str]
) -> None:
    run(pg_engine, INSERTS["coupon_codes"].replace("'welcome', :v", "'welcome', NULL"), v="m-1")
    assert cache.barrier()
    store(cache, "member:m-1", "member:m-2")

    run(pg_engine, "UPDATE coupon_codes SET member_id = 'm-1' WHERE code = 'C-m-1'")

    assert cache.barrier()
    assert held(cache, "member:m-1", "member:m-2") == {"member:m-1": False, "member:m-2": True}


def test_a_code_passed_to_another_member_drops_both(
    pg_engine: Engine, cache: ReadCache[str]
) -> None:
    run(pg_engine, INSERTS["coupon_codes"], v="m-1")
    assert cache.barrier()
    store(cache, "member:m-1", "member:m-2", "member:m-3")

    run(pg_engine, "UPDATE coupon_codes SET member_id = 'm-2' WHERE member_id = 'm-1'")

    assert cache.barrier()
    assert held(cache, "member:m-1", "member:m-2", "member:m-3") == {
        "member:m-1": False,
        "member:m-2": False,
        "member:m-3": True,
    }


@pytest.mark.parametrize(("members", "bystander_stays"), [(200, True), (3000, True), (9000, False)])
def test_a_statement_names_the_members_it_touched_in_as_many_notifications_as_needed(
    pg_engine: Engine, cache: ReadCache[str], members: int, bystander_stays: bool
) -> None:
    store(cache, "member:m-1", f"member:m-{members}", "member:bystander", "coupon:welcome")
    flushes = cache.stats()["flushes"]

    run(
        pg_engine,
        "INSERT INTO points_ledger (member_id, kind, points, reason, idempotency_key,"
        " occurred_at, recorded_at) SELECT 'm-' || n, 'earn', 1, 'bulk', 'bulk-' || n, now(),"
        " now() FROM generate_series(1, :members) AS n",
        members=members,
    )

    assert cache.barrier()
    last = f"member:m-{members}"
    assert held(cache, "member:m-1", last, "member:bystander", "coupon:welcome") == {
        "member:m-1": False,
        last: False,
        "member:bystander": bystander_stays,
        "coupon:welcome": bystander_stays,
    }
    assert cache.stats()["flushes"] == flushes + (0 if bystander_stays else 1)


def test_truncating_a_watched_table_drops_everything(
    pg_engine: Engine, cache: ReadCache[str]
) -> None:
    store(cache, "member:m-1", "coupon:welcome")

    run(pg_engine, "TRUNCATE points_holds")

    assert cache.barrier()
    assert cache.stats()["entries"] == 0


def test_a_change_to_one_key_leaves_the_other(pg_engine: Engine, cache: ReadCache[str]) -> None:
    store(cache, "member:m-1", "member:m-2")

    run(pg_engine, INSERTS["points_holds"], v="m-2")

    assert cache.barrier()
    assert cache.get("member:m-1") == "value of member:m-1"
    assert cache.get("member:m-2") is None


def test_a_put_overtaken_by_a_change_to_its_key_is_refused(
    pg_engine: Engine, cache: ReadCache[str]
) -> None:
    ticket = cache.ticket()  # given a reader that took its ticket, then read the member's rows
    run(pg_engine, INSERTS["points_lots"], v="m-1")  # when the member changes before it puts
    assert cache.barrier()

    assert cache.put("member:m-1", "stale", ticket) is False
    assert cache.get("member:m-1") is None
    assert cache.stats()["refused"] == 1


def test_a_put_after_a_change_to_another_key_is_stored(
    pg_engine: Engine, cache: ReadCache[str]
) -> None:
    ticket = cache.ticket()
    run(pg_engine, INSERTS["points_lots"], v="m-2")
    assert cache.barrier()

    assert cache.put("member:m-1", "current", ticket) is True
    assert cache.get("member:m-1") == "current"


def test_a_ticket_older_than_the_drops_the_cache_remembers_is_refused(
    pg_engine: Engine, pg_url: str
) -> None:
    with ReadCache[str](pg_url, max_entries=2) as cache:
        wait_until(lambda: cache.live, "the cache listens")
        ticket = cache.ticket()
        for member in ("m-2", "m-3", "m-4"):  # three drops, and it remembers two
            run(pg_engine, INSERTS["points_holds"], v=member)
        assert cache.barrier()

        assert cache.put("member:m-1", "maybe stale", ticket) is False
        assert cache.put("member:m-1", "current", cache.ticket()) is True


def test_the_least_recently_used_entry_goes_first(pg_engine: Engine, pg_url: str) -> None:
    with ReadCache[str](pg_url, max_entries=2) as cache:
        wait_until(lambda: cache.live, "the cache listens")
        store(cache, "member:a", "member:b")
        cache.get("member:a")

        store(cache, "member:c")

        assert held(cache, "member:a", "member:b", "member:c") == {
            "member:a": True,
            "member:b": False,
            "member:c": True,
        }
        assert cache.stats()["evicted"] == 1


@pytest.mark.parametrize("payload", ["not json", '{"member": "m-1"}', "[1, 2]", "null", ""])
def test_a_malformed_notification_drops_everything(
    pg_engine: Engine, cache: ReadCache[str], payload: str
) -> None:
    store(cache, "member:m-1", "coupon:welcome")

    notify(pg_engine, payload)

    assert cache.barrier()
    assert cache.stats()["entries"] == 0


def test_a_rolled_back_change_drops_nothing(pg_engine: Engine, cache: ReadCache[str]) -> None:
    store(cache, "member:m-1")

    with pg_engine.connect() as conn:
        conn.execute(text(INSERTS["points_lots"]), {"v": "m-1"})
        conn.rollback()

    assert cache.barrier()
    assert cache.get("member:m-1") == "value of member:m-1"


@pytest.mark.parametrize(
    ("payload", "change"),
    [
        ("*", Change(everything=True)),
        ('["member:m-1", "coupon:c"]', Change(keys=("member:m-1", "coupon:c"))),
        ("[]", Change()),
        ('{"barrier": "b-1"}', Change(barrier="b-1")),
        ('"*"', Change(everything=True)),
        ('{"barrier": 1}', Change(everything=True)),
        ("[", Change(everything=True)),
    ],
)
def test_a_payload_reads_as(payload: str, change: Change) -> None:
    assert parse_change(payload) == change


def test_a_cache_that_cannot_connect_serves_nothing_and_raises_nothing() -> None:
    with ReadCache[str]("postgresql+psycopg://postgres@127.0.0.1:1/nowhere") as cache:
        assert cache.put("member:m-1", "value", cache.ticket()) is False
        assert cache.get("member:m-1") is None
        assert cache.barrier(timeout=0.1) is False
        assert cache.live is False


def test_a_stopped_cache_is_empty_and_not_live(cache: ReadCache[str]) -> None:
    store(cache, "member:m-1")

    cache.stop()

    assert cache.live is False
    assert cache.get("member:m-1") is None


def _admin(pg_url: str) -> psycopg.Connection:
    """A connection to another database: one cannot refuse connections to its own."""
    url = make_url(pg_url).set(drivername="postgresql", database="template1")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def _cut_off(admin: psycopg.Connection, database: str) -> None:
    """Refuse new connections to ``database`` and end its listening backend."""
    admin.execute(
        sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(database))
    )
    ended = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND application_name = %s",
        (database, LISTENER),
    ).fetchall()
    assert ended == [(True,)]


def test_a_cache_that_loses_its_connection_empties_itself_and_comes_back(
    pg_engine: Engine, pg_url: str, cache: ReadCache[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="core.readcache")
    store(cache, "member:m-1")
    database = make_url(pg_url).database
    assert database is not None
    with _admin(pg_url) as admin:
        try:
            _cut_off(admin, database)
            wait_until(lambda: not cache.live, "the cache notices")
            assert cache.get("member:m-1") is None
            during_the_outage = cache.ticket()
            assert cache.put("member:m-1", "value", during_the_outage) is False
            wait_until(lambda: len(caplog.records) >= 2, "it tried to reconnect twice")
        finally:
            admin.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(database))
            )

    wait_until(lambda: cache.live, "the cache listens again")
    assert cache.get("member:m-1") is None
    assert cache.put("member:m-1", "maybe stale", during_the_outage) is False
    store(cache, "member:m-1", "member:m-2")
    run(pg_engine, INSERTS["points_holds"], v="m-1")
    assert cache.barrier()
    assert held(cache, "member:m-1", "member:m-2") == {"member:m-1": False, "member:m-2": True}
    assert [r.levelno for r in caplog.records].count(logging.WARNING) == 1


def test_a_barrier_survives_the_end_of_the_connection_it_sends_on(
    pg_engine: Engine, cache: ReadCache[str]
) -> None:
    assert cache.barrier()
    with pg_engine.connect() as conn:
        ended = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = :name"
            ),
            {"name": SENDER},
        ).all()
    assert ended == [(True,)]

    assert cache.barrier()
    assert cache.live


def _migration_0013() -> ModuleType:
    path = MIGRATIONS / "versions" / "0013_change_notifications.py"
    spec = importlib.util.spec_from_file_location("migration_0013", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_watches_the_tables_core_readcache_lists() -> None:
    migration = _migration_0013()

    assert [Watched(*row) for row in migration.WATCHED] == list(WATCHED)


def test_every_watched_table_has_its_triggers_on_a_migrated_database(pg_engine: Engine) -> None:
    with pg_engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c"
                " ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
                " AND t.tgfoid::regproc::text = 'loyalty_notify_' || c.relname"
            )
        ).all()

    assert sorted(found) == sorted(
        (w.table, f"{w.table}_notify_{operation}")
        for w in WATCHED
        for operation in ("insert", "update", "delete", "truncate")
    )


def test_get_many_answers_the_keys_held_and_counts_hits_and_misses(
    pg_engine: Engine, cache: ReadCache[str]
) -> None:
    store(cache, "coupon:a", "coupon:b")
    before = cache.stats()

    found = cache.get_many(["coupon:a", "coupon:b", "coupon:c"])

    assert found == {"coupon:a": "value of coupon:a", "coupon:b": "value of coupon:b"}
    after = cache.stats()
    assert (after["hits"] - before["hits"], after["misses"] - before["misses"]) == (2, 1)
    run(pg_engine, INSERTS["coupon_counters"], v="a")
    assert cache.barrier()
    assert cache.get_many(["coupon:a", "coupon:b"]) == {"coupon:b": "value of coupon:b"}

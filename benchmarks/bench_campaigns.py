"""The campaign engine at scale (issue 9), each measurement beside its baseline, in one run.

One fresh PostgreSQL database holds data generated inside PostgreSQL (``INSERT … SELECT
generate_series``, seeded): 1,000,000 members, 3,000,000 orders over two years (5% refunded),
100,000 referrals, 1,000,000 carts of which 10,000 are abandoned. Program: the contract's
example (``examples/home-goods/program``). Measured:

* ``cart scan``: ``campaigns.scans.enrol_abandoned_carts`` over every cart (one transaction,
  as the ``campaigns.scan_carts`` actor runs it), then ``campaigns.jobs.enqueue_advance`` of the
  new journeys to Redis; beside a per-cart loop over a sample (each cart read, checked, claimed
  and enrolled on its own), extrapolated and rolled back;
* ``schedule audience``: ``referral-invite``'s audience over every member, in the ranges
  ``campaigns.plan_audience`` plans, shared by two worker processes; each range as
  ``enrol_audience_range`` runs it (``scans.audience_in_range``: SQL through
  ``campaigns.audience_sql``, then ``enrol_scheduled``) with its first steps enqueued; beside the
  Python path (``enrol_audience``, for audiences that do not translate) on a few ranges and a
  per-member loop over a sample, both extrapolated and rolled back;
* ``journey steps``: due journeys of ``cart-abandonment`` (arm ``coupon-first``: issue a coupon,
  then send it) run by dramatiq worker processes on Redis, as ``loyalty-engine worker`` runs
  them (``worker.py``'s broker, in a Redis namespace of the run's own), after a warm-up;
  beside a one-process baseline of the same steps.

Usage: ``python -m benchmarks.bench_campaigns [--members 1000000] [--steps 100000] …``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Connection, Engine, exists, func, insert, select, text

from benchmarks.bench_notifications import stop, tree_cpu
from benchmarks.measure import (
    ServerCpu,
    describe_machine,
    stopwatch,
    temporary_database,
    vacuum_analyze,
)
from campaigns.tables import cart_claims, journey_steps, journeys
from core.db import get_engine
from core.events.tables import carts, orders

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "examples" / "home-goods" / "program"
RESULT_FILE = ROOT / "bench-results" / "campaigns.json"
MARKDOWN_FILE = ROOT / "docs" / "bench" / "campaigns.md"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # the scans' moment, after the whole history
CART_CAMPAIGN, AUDIENCE_CAMPAIGN = "cart-abandonment", "referral-invite"
STEPS_ARM = "coupon-first"  # issue_coupon, then send: two steps per journey
TARGET_CART_S, TARGET_AUDIENCE_S, TARGET_STEPS_PER_S = 10.0, 30.0, 2_000
CHUNK_ROWS = 1_000_000  # rows per generating INSERT
STALL_S = 120  # the step workers are deemed stuck after this long without progress


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    results: dict[str, Any] = {}
    name = f"bench_campaigns_{os.getpid()}"
    with temporary_database(args.database_url, name) as url:
        machine = describe_machine(url)
        server = ServerCpu.for_url(args.database_url, name)
        engine = get_engine(url)
        program = _setup_process(url, args.redis_url)
        results["setup"] = generate(engine, args)
        results["cart_scan"] = measure_cart_scan(engine, program, args, server)
        results["audience"] = measure_audience(engine, url, program, args, server)
        results["steps"] = measure_steps(engine, url, args, server)
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    report = build_report(results, machine, args)
    print(json.dumps(report["summary"], indent=2))
    for path, content in (
        (args.output, json.dumps(report, indent=2, default=str) + "\n"),
        (args.markdown, markdown(report)),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return 1 if args.check and not all(report["targets"].values()) else 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_campaigns",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--members", type=int, default=1_000_000)
    add("--orders", type=int, default=3_000_000)
    add("--carts", type=int, default=1_000_000)
    add("--abandoned", type=int, default=10_000, help="carts the scan must enrol")
    add("--steps", type=int, default=100_000, help="journey steps timed (2 per journey)")
    add("--sample", type=int, default=10_000, help="carts / members in the per-row loops")
    add("--python-ranges", type=int, default=2, help="audience ranges run the Python way")
    add("--workers", type=int, default=2, help="worker processes (audience ranges, steps)")
    add("--threads", type=int, default=4, help="threads per step worker (the worker default)")
    add(
        "--database-url", default=os.environ.get("LOYALTY_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    add(
        "--redis-url",
        default=os.environ.get("LOYALTY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="the Redis for the benchmark's queues (under a namespace of the run's own)",
    )
    add("--output", type=Path, default=RESULT_FILE)
    add("--markdown", type=Path, default=MARKDOWN_FILE)
    add("--check", action="store_true", help="exit 1 if a target is missed")
    return parser.parse_known_args(argv)[0]  # `python -m benchmarks` passes others' options


# The Redis database is shared with other people's tests and workers (tests take 9 and up, one
# per xdist worker), so the benchmark's queues live under a namespace of its own run: another
# consumer of ``dramatiq:campaigns`` on the same database can neither take nor add its messages.
NAMESPACE_ENV = "LOYALTY_BENCH_REDIS_NAMESPACE"


def _namespace() -> str:
    return os.environ.setdefault(NAMESPACE_ENV, f"bench-campaigns-{os.getpid()}")


def _setup_process(url: str, redis_url: str) -> Any:
    """Every actor bound to Redis (enqueues go there), the program loaded; returns it."""
    from core.settings import Settings

    install_bench_broker(Settings(_env_file=None, database_url=url, redis_url=redis_url))  # type: ignore[call-arg]
    return _program()


def install_bench_broker(settings: Any) -> Any:
    """``worker.setup`` with the run's namespace: every actor declared, the middleware of
    ``core.broker.build_broker``, the Redis broker installed."""
    from dramatiq.brokers.redis import RedisBroker

    from core.broker import install_broker, middleware_for
    from core.processes import import_actors

    import_actors()
    broker = RedisBroker(url=settings.redis_url, namespace=_namespace(),
                         middleware=middleware_for(settings))  # fmt: skip
    return install_broker(broker)


def __getattr__(name: str) -> Any:
    # The step workers run ``python -m dramatiq benchmarks.bench_campaigns:broker``: worker.py's
    # broker, in the run's namespace (LOYALTY_* settings from the environment, as worker.py).
    if name == "broker":
        from core.settings import get_settings

        return install_bench_broker(get_settings())
    raise AttributeError(name)


# --- data ---------------------------------------------------------------------------------------

MEMBER = "'m-' || lpad(({n})::text, 7, '0')"
SERIES = "generate_series(CAST(:low AS bigint), CAST(:high AS bigint))"
AT = "CAST(:now AS timestamptz)"
ITEMS = json.dumps(
    [{"sku": "K-100", "name": "Cast iron pan", "category": "kitchen", "price": "128.00", "qty": 1}]
)
GENERATE = {
    "members": f"""
        INSERT INTO members (member_id, registered_at, first_name, email, phone, push_token,
            birthday, timezone, locale, consent_email, consent_sms, consent_push, referral_code,
            profile_at, first_seen_at)
        SELECT {MEMBER.format(n="i")}, reg, 'Member ' || i, 'm' || i || '@example.com',
               '+86138' || lpad(i::text, 8, '0'),
               CASE WHEN random() < 0.6 THEN 'push-token-' || i END,
               CASE WHEN random() < 0.92 THEN DATE '1960-01-01' + floor(random() * 16000)::int END,
               CASE WHEN random() < 0.85 THEN 'Asia/Shanghai' ELSE 'Europe/London' END,
               CASE WHEN random() < 0.7 THEN 'zh-CN' ELSE 'en' END,
               random() < 0.8, random() < 0.7, random() < 0.6, 'R' || i, reg, reg
        FROM (SELECT i, {AT} - random() * interval '1095 days' AS reg FROM {SERIES} AS i) AS g""",
    # Orders stop two days before NOW, so no order follows an abandoned cart by chance.
    "orders": f"""
        INSERT INTO orders (order_id, member_id, total, currency, paid_at, items, coupon_codes,
                            points_redeemed, event_id)
        SELECT 'o-' || i, {MEMBER.format(n="m")},
               round((10 + power(random(), 3) * 3000)::numeric, 2), 'CNY',
               {AT} - interval '2 days' - random() * interval '728 days',
               CAST(:items AS jsonb), '[]', 0, 'e-' || i
        FROM (SELECT i, 1 + floor(random() * CAST(:members AS bigint))::int AS m
              FROM {SERIES} AS i) AS g""",
    # Carts, by number: the abandoned (open, idle in the scan's window, above min_total), a fifth
    # as many too small, a fifth whose member ordered since (these three of distinct members),
    # 1% not yet idle, and the rest converted (75%) or idle for days (25%).
    "carts": f"""
        INSERT INTO carts (cart_id, member_id, total, items, updated_at, converted_order_id,
                           converted_at)
        SELECT 'c-' || i, {MEMBER.format(n="m")},
               CASE WHEN kind = 'small' THEN 5 + round((random() * 40)::numeric, 2)
                    ELSE 60 + round((random() * 600)::numeric, 2) END,
               CAST(:items AS jsonb), updated,
               CASE WHEN kind = 'converted' THEN 'o-conv-' || i END,
               CASE WHEN kind = 'converted' THEN updated + interval '5 minutes' END
        FROM (SELECT i, m, kind,
                     CASE WHEN kind IN ('abandoned', 'small', 'ordered')
                              THEN CAST(:cutoff AS timestamptz) - random() * interval '23 hours'
                          WHEN kind = 'fresh' THEN {AT} - random() * interval '50 minutes'
                          ELSE {AT} - interval '2 days' - random() * interval '700 days' END
                     AS updated
              FROM (SELECT i,
                           CASE WHEN i <= :abandoned * 1.4 THEN 1 + (i * 97) % :members
                                ELSE 1 + floor(random() * CAST(:members AS bigint))::int END AS m,
                           CASE WHEN i <= :abandoned THEN 'abandoned'
                                WHEN i <= :abandoned * 1.2 THEN 'small'
                                WHEN i <= :abandoned * 1.4 THEN 'ordered'
                                WHEN i <= :abandoned * 1.4 + :total * 0.01 THEN 'fresh'
                                WHEN random() < 0.75 THEN 'converted' ELSE 'idle' END AS kind
                    FROM {SERIES} AS i) AS k) AS g""",
}
DEPENDENT = {
    "refunds": """
        INSERT INTO refunds (event_id, order_id, member_id, amount, refunded_at)
        SELECT 'r-' || order_id, order_id, member_id,
               CASE WHEN random() < 0.5 THEN total
                    ELSE greatest(0.01, round(total * random()::numeric, 2)) END,
               least(CAST(:now AS timestamptz) - interval '1 minute',
                     paid_at + random() * interval '20 days')
        FROM orders TABLESAMPLE BERNOULLI (5) REPEATABLE (7)""",
    # The carts whose member paid after the cart changed: the scan must skip them.
    "orders after carts": """
        INSERT INTO orders (order_id, member_id, total, currency, paid_at, items, coupon_codes,
                            points_redeemed, cart_id, event_id)
        SELECT 'o-after-' || cart_id, member_id, total, 'CNY', updated_at + interval '10 minutes',
               items, '[]', 0, NULL, 'e-after-' || cart_id
        FROM carts
        WHERE cart_id IN (SELECT 'c-' || i FROM generate_series(
            CAST(:abandoned * 1.2 AS bigint) + 1, CAST(:abandoned * 1.4 AS bigint)) AS i)""",
    # Every tenth member was referred, by anyone: 60% settled, the rest pending or rejected.
    "referrals": f"""
        INSERT INTO referrals (referee_id, code, referrer_id, status, registered_at, decided_at,
                               updated_at)
        SELECT {MEMBER.format(n="i")}, 'R' || r, {MEMBER.format(n="r")}, status,
               {AT} - interval '100 days',
               CASE WHEN status <> 'pending' THEN {AT} - random() * interval '90 days' END, {AT}
        FROM (SELECT i, 1 + floor(random() * CAST(:members AS bigint))::int AS r,
                     CASE WHEN random() < 0.6 THEN 'settled'
                          WHEN random() < 0.6 THEN 'pending' ELSE 'rejected' END AS status
              FROM generate_series(10, CAST(:members AS bigint), 10) AS i) AS g""",
}


def generate(engine: Engine, args: argparse.Namespace) -> dict[str, float]:
    """The data, on one seeded connection; returns seconds per table. Secondary indexes are
    built after the load, as a bulk import would."""
    from loyalty.tables import referrals

    idle = _campaign(CART_CAMPAIGN).trigger.cart_abandoned.idle_for
    params = {
        "now": NOW,
        "cutoff": NOW - idle,
        "members": args.members,
        "items": ITEMS,
        "abandoned": args.abandoned,
    }
    sizes = {"members": args.members, "orders": args.orders, "carts": args.carts}
    seconds: dict[str, float] = {}
    indexes = [index for table in (orders, carts, referrals) for index in table.indexes]
    with engine.connect() as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        _each(conn, indexes, lambda index: index.drop(conn))
        for table, rows in sizes.items():
            started = time.perf_counter()
            for low in range(1, rows + 1, CHUNK_ROWS):
                chunk = {"low": low, "high": min(rows, low + CHUNK_ROWS - 1), "total": rows}
                conn.execute(text(GENERATE[table]), params | chunk)
                conn.commit()
            seconds[table] = round(time.perf_counter() - started, 1)
        for name, statement in DEPENDENT.items():
            started = time.perf_counter()
            conn.execute(text(statement), params)
            conn.commit()
            seconds[name] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        conn.execute(text("SET maintenance_work_mem = '512MB'"))
        _each(conn, indexes, lambda index: index.create(conn))
        seconds["indexes"] = round(time.perf_counter() - started, 1)
    seconds["vacuum analyze"] = vacuum_analyze(engine)
    return seconds


def _each(conn: Connection, items: Sequence[Any], action: Callable[[Any], Any]) -> None:
    for item in items:
        action(item)
    conn.commit()


@cache
def _program() -> Any:
    from core.program.loader import load_program

    return load_program(PROGRAM)


def _campaign(campaign_id: str) -> Any:
    return _program().campaigns[campaign_id]


# --- target 1: the cart scan ---------------------------------------------------------------------


def measure_cart_scan(
    engine: Engine, program: Any, args: argparse.Namespace, server: ServerCpu | None
) -> dict[str, Any]:
    from campaigns.jobs import enqueue_advance
    from campaigns.scans import enrol_abandoned_carts
    from core.events.handlers import unit_of_work

    campaign = program.campaigns[CART_CAMPAIGN]
    loop = cart_loop(engine, campaign, args)
    _clear_queues(args.redis_url)
    created: list[str] = []
    with stopwatch(server) as watch, unit_of_work(engine, now=NOW, program=program) as ctx:
        created = enrol_abandoned_carts(ctx.conn, campaign, now=NOW)
        ctx.after_commit(lambda: enqueue_advance(created))
    with engine.connect() as conn:
        claimed = conn.execute(select(func.count()).select_from(cart_claims)).scalar_one()
        entered = _journeys(conn, CART_CAMPAIGN)
    queued = _queued(args.redis_url)
    _expect(
        claimed == entered == args.abandoned,
        f"cart scan claimed {claimed}, enrolled {entered}, expected {args.abandoned}",
    )
    _expect(queued == math.ceil(len(created) / _advance_batch()), f"{queued} messages queued")
    return {
        **_timing(watch.timing, rows=args.carts),
        "carts": args.carts,
        "claimed": claimed,
        "journeys": entered,
        "active_journeys": len(created),
        "advance_messages": queued,
        "loop": loop,
        "loop_vs_set": round(loop["extrapolated_seconds"] / watch.timing.seconds, 1),
    }


def cart_loop(engine: Engine, campaign: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Cart by cart: read it, check the rule in Python, ask whether the member ordered since,
    claim it and enrol its member on their own. Rolled back."""
    from campaigns.journeys import Candidate, enrol
    from campaigns.scans import CART_HORIZON

    rule = campaign.trigger.cart_abandoned
    cutoff = NOW - rule.idle_for
    with engine.connect() as conn:
        sample = _sample(conn, "SELECT cart_id FROM carts ORDER BY md5(cart_id) LIMIT :n", args)
        transaction = conn.begin()
        started, created = time.perf_counter(), []
        for cart_id in sample:
            cart = conn.execute(select(carts).where(carts.c.cart_id == cart_id)).one()
            if cart.converted_at is not None or cart.total < rule.min_total:
                continue
            if not cutoff - CART_HORIZON < cart.updated_at <= cutoff:
                continue
            ordered = exists().where(
                orders.c.member_id == cart.member_id,
                orders.c.paid_at > cart.updated_at,
                orders.c.paid_at <= NOW,
            )
            if conn.execute(select(ordered)).scalar():
                continue
            conn.execute(
                insert(cart_claims).values(
                    campaign_id=campaign.id,
                    cart_id=cart.cart_id,
                    cart_updated_at=cart.updated_at,
                    member_id=cart.member_id,
                    claimed_at=NOW,
                )
            )
            key = f"cart:{cart.cart_id}:{cart.updated_at.isoformat()}"
            created += enrol(conn, campaign, [Candidate(cart.member_id, key)], now=NOW)
        seconds = time.perf_counter() - started
        transaction.rollback()
    return {
        "carts": len(sample),
        "enrolled": len(created),
        "seconds": round(seconds, 2),
        "extrapolated_seconds": round(seconds * args.carts / len(sample), 1),
    }


# --- target 2: a schedule audience over every member --------------------------------------------


def measure_audience(
    engine: Engine, url: str, program: Any, args: argparse.Namespace, server: ServerCpu | None
) -> dict[str, Any]:
    from campaigns.jobs import MEMBERS_PER_RANGE
    from loyalty.tier_recalc import plan_ranges

    campaign = program.campaigns[AUDIENCE_CAMPAIGN]
    loop = audience_loop(engine, program, campaign, args)
    with engine.connect() as conn:
        planned = plan_ranges(conn, chunks=math.ceil(args.members / MEMBERS_PER_RANGE))
    python = python_ranges(engine, program, campaign, planned[: args.python_ranges], args)
    _clear_queues(args.redis_url)
    context = get_context("spawn")
    with ProcessPoolExecutor(
        args.workers,
        mp_context=context,
        initializer=_range_worker_init,
        initargs=(url, args.redis_url),
    ) as pool:
        list(pool.map(_warm, range(args.workers)))  # every worker started and loaded
        cpu_before = tree_cpu(os.getpid())
        with stopwatch(server) as watch:
            with engine.connect() as conn:  # what the plan_audience actor does
                count = conn.execute(text("SELECT count(*) FROM members")).scalar_one()
                ranges = plan_ranges(conn, chunks=math.ceil(count / MEMBERS_PER_RANGE))
            done = list(pool.map(_enrol_range, [(r.low, r.high) for r in ranges]))
        cpu = tree_cpu(os.getpid()) - cpu_before
    return _audience_result(engine, args, watch, cpu, done, loop, python)


def _audience_result(
    engine: Engine,
    args: argparse.Namespace,
    watch: Any,
    cpu: float,
    done: list[dict[str, Any]],
    loop: dict[str, Any],
    python: dict[str, Any],
) -> dict[str, Any]:
    chosen = sum(part["chosen"] for part in done)
    with engine.connect() as conn:
        entered = _journeys(conn, AUDIENCE_CAMPAIGN)
        in_sample = set(
            conn.execute(
                select(journeys.c.member_id).where(
                    journeys.c.campaign_id == AUDIENCE_CAMPAIGN,
                    journeys.c.member_id.in_(loop.pop("sample")),
                )
            ).scalars()
        )
    queued = _queued(args.redis_url)
    _expect(entered == chosen, f"audience chose {chosen} members, {entered} journeys")
    _expect(in_sample == set(loop.pop("chosen")), "SQL and the loop disagree on the sample")
    for index, count in enumerate(python.pop("created_per_range")):
        _expect(count == done[index]["created"], f"range {index}: Python {count} vs SQL")
    expected = sum(math.ceil(part["created"] / _advance_batch()) for part in done)
    _expect(queued == expected, f"{queued} advance messages queued, expected {expected}")
    seconds = watch.timing.seconds
    return {
        **_timing(watch.timing, rows=args.members),
        "client_cpu_seconds": round(cpu, 2),  # this process and the two workers
        "ranges": len(done),
        "members_in_audience": chosen,
        "translated_whole": _translated_whole(),
        "active_journeys": sum(part["created"] for part in done),
        "advance_messages": queued,
        "slowest_range_s": max(part["seconds"] for part in done),
        "loop": loop,
        "python_ranges": python,
        "loop_vs_set": round(loop["extrapolated_seconds"] / seconds, 1),
        "python_ranges_vs_set": round(python["extrapolated_seconds"] / seconds, 1),
    }


def _translated_whole() -> bool:
    """Whether campaigns.audience_sql translates the audience whole (no member left to Python)."""
    from campaigns.audience_sql import translate_audience

    source = _campaign(AUDIENCE_CAMPAIGN).trigger.schedule.audience.source
    found = translate_audience(source, program=_program(), now=NOW, dialect="postgresql")
    return found is not None


def audience_loop(
    engine: Engine, program: Any, campaign: Any, args: argparse.Namespace
) -> dict[str, Any]:
    """Member by member: their history fetched, the audience evaluated, a match enrolled."""
    from campaigns.journeys import Candidate, enrol
    from campaigns.scans import audience_members

    key = f"schedule:{NOW.isoformat()}"
    with engine.connect() as conn:
        sample = _sample(
            conn, "SELECT member_id FROM members ORDER BY md5(member_id) LIMIT :n", args
        )
        transaction = conn.begin()
        started, chosen = time.perf_counter(), []
        for member_id in sample:
            if audience_members(conn, campaign, [member_id], program=program, now=NOW):
                enrol(conn, campaign, [Candidate(member_id, key)], now=NOW)
                chosen.append(member_id)
        seconds = time.perf_counter() - started
        transaction.rollback()
    return {
        "members": len(sample),
        "in_audience": len(chosen),
        "seconds": round(seconds, 2),
        "extrapolated_seconds": round(seconds * args.members / len(sample), 1),
        "sample": sample,
        "chosen": chosen,
    }


def python_ranges(
    engine: Engine, program: Any, campaign: Any, ranges: Sequence[Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Today's ``enrol_audience`` on the first ranges: histories fetched per range, the audience
    evaluated per member in Python. Rolled back."""
    from campaigns.scans import enrol_audience, member_ids_between

    members, counts = 0, []
    started = time.perf_counter()
    with engine.connect() as conn:
        transaction = conn.begin()
        for members_in in ranges:
            ids = member_ids_between(conn, members_in.low, members_in.high)
            members += len(ids)
            created = enrol_audience(conn, campaign, ids, fire_time=NOW, program=program, now=NOW)
            counts.append(len(created))
        transaction.rollback()
    seconds = time.perf_counter() - started
    return {
        "ranges": len(ranges),
        "members": members,
        "seconds": round(seconds, 2),
        "extrapolated_seconds": round(seconds * args.members / max(members, 1), 1),
        "created_per_range": counts,
    }


_worker_state: dict[str, Any] = {}


def _range_worker_init(url: str, redis_url: str) -> None:
    _worker_state["program"] = _setup_process(url, redis_url)
    _worker_state["engine"] = get_engine(url)


def _warm(_: int) -> None:
    with _worker_state["engine"].connect() as conn:
        conn.execute(text("SELECT 1"))
    time.sleep(0.5)  # long enough for the other worker to take the next one


def _enrol_range(bounds: tuple[str | None, str | None]) -> dict[str, Any]:
    """What one ``enrol_audience_range`` message does: ``audience_in_range`` (SQL where the
    audience translates), ``enrol_scheduled``, the first steps enqueued after the commit."""
    from campaigns.jobs import enqueue_advance
    from campaigns.scans import audience_in_range, enrol_scheduled
    from core.events.handlers import unit_of_work

    started = time.perf_counter()
    program, (low, high) = _worker_state["program"], bounds
    campaign = program.campaigns[AUDIENCE_CAMPAIGN]
    with unit_of_work(_worker_state["engine"], now=NOW, program=program) as ctx:
        chosen = audience_in_range(ctx.conn, campaign, program=program, now=NOW, low=low,
                                   high=high)  # fmt: skip
        created = enrol_scheduled(ctx.conn, campaign, chosen, fire_time=NOW, now=NOW)
        ctx.after_commit(lambda: enqueue_advance(created))
    return {
        "chosen": len(chosen),
        "created": len(created),
        "seconds": round(time.perf_counter() - started, 3),
    }


# --- target 3: due journey steps run by workers --------------------------------------------------

JOURNEYS = f"""
    INSERT INTO campaign_journeys (journey_id, campaign_id, member_id, enrolment_key, version, arm,
        status, step_id, next_run_at, attempts, context, entered_at, updated_at)
    SELECT 'j-bench-' || k, :campaign, {MEMBER.format(n="1 + (k * 7919) % :members")},
           'bench:' || k, :version, :arm, 'active', :step, :due, 0,
           jsonb_build_object('cart', jsonb_build_object('cart_id', 'c-' || k,
               'total', (60 + k % 500)::text || '.00', 'item_count', 1,
               'categories', jsonb_build_array('kitchen'), 'items', CAST(:items AS jsonb))),
           :due, :due
    FROM generate_series(1, CAST(:count AS bigint)) AS k"""


def measure_steps(
    engine: Engine, url: str, args: argparse.Namespace, server: ServerCpu | None
) -> dict[str, Any]:
    from campaigns.assignment import steps_of

    steps_per_journey = len(steps_of(_campaign(CART_CAMPAIGN), STEPS_ARM) or ())
    warm = args.workers * args.threads * _advance_batch()
    timed = math.ceil(args.steps / steps_per_journey)
    _expect(warm + timed <= args.members, "--steps needs as many members as journeys")
    baseline_ids = prepare_journeys(engine, min(args.sample, timed) // 5)
    baseline = one_process(engine, baseline_ids, steps_per_journey)
    ids = prepare_journeys(engine, warm + timed)
    _clear_queues(args.redis_url)
    work = Path(tempfile.mkdtemp(prefix="bench-campaigns-"))
    workers = start_workers(url, args, work)
    try:
        run = run_steps(engine, workers, ids[:warm], ids[warm:], steps_per_journey, server)
    finally:
        stop(workers)
    rate = run["steps"] / run["seconds"]
    return {
        **run,
        "steps_per_s": round(rate, 1),
        "journeys": timed,
        "warm_up_journeys": warm,
        "steps_per_journey": steps_per_journey,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "one_process": baseline,
        "workers_vs_one_process": round(rate / baseline["steps_per_s"], 2),
    }


def prepare_journeys(engine: Engine, count: int) -> list[str]:
    """``count`` journeys of the cart campaign due a minute ago (the workers read the wall
    clock), each of a different member; every earlier journey and step is removed."""
    from campaigns.assignment import steps_of, version_of
    from campaigns.definitions import step_ids

    campaign = _campaign(CART_CAMPAIGN)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE campaign_journeys, campaign_journey_steps"))
        conn.execute(
            text(JOURNEYS),
            {
                "campaign": CART_CAMPAIGN,
                "version": version_of(campaign),
                "arm": STEPS_ARM,
                "step": step_ids(steps_of(campaign, STEPS_ARM) or ())[0],
                "items": ITEMS,
                "due": datetime.now(UTC) - timedelta(minutes=1),
                "members": _members(conn),
                "count": count,
            },
        )
        return list(
            conn.execute(select(journeys.c.journey_id).order_by(journeys.c.journey_id)).scalars()
        )


def one_process(engine: Engine, ids: list[str], steps_per_journey: int) -> dict[str, Any]:
    """The same steps in this process, batch after batch, no broker: what one core does."""
    from campaigns.jobs import ADVANCE_BATCH
    from campaigns.steps import advance_journeys
    from core.events.handlers import HandlerContext

    program = _program()
    cpu, started = time.process_time(), time.perf_counter()
    with engine.connect() as conn:
        transaction = conn.begin()
        done = 0
        for start in range(0, len(ids), ADVANCE_BATCH):
            ctx = HandlerContext(conn=conn, now=datetime.now(UTC), program=program)
            done += advance_journeys(ctx, ids[start : start + ADVANCE_BATCH]).steps
        transaction.rollback()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    _expect(done == len(ids) * steps_per_journey, f"one process ran {done} steps")
    return {
        "steps": done,
        "seconds": round(seconds, 2),
        "steps_per_s": round(done / seconds, 1),
        "client_cpu_us_per_step": round(cpu / done * 1e6),
    }


def start_workers(url: str, args: argparse.Namespace, work: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "LOYALTY_DATABASE_URL": url,
        "LOYALTY_REDIS_URL": args.redis_url,
        "LOYALTY_PROGRAM_DIR": str(PROGRAM),
        "LOYALTY_OUTBOX": str(work / "outbox.jsonl"),
        NAMESPACE_ENV: _namespace(),
    }
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "benchmarks.bench_campaigns:broker",
        "--processes",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--queues",
        "campaigns",
    ]
    log = (work / "workers.log").open("wb")
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)


def run_steps(
    engine: Engine,
    workers: subprocess.Popen[bytes],
    warm: list[str],
    timed: list[str],
    steps_per_journey: int,
    server: ServerCpu | None,
) -> dict[str, Any]:
    from campaigns.jobs import enqueue_advance

    enqueue_advance(warm)
    _wait_for_steps(engine, len(warm) * steps_per_journey, workers)
    cpu_before = tree_cpu(workers.pid)
    with stopwatch(server) as watch:
        enqueue_advance(timed)
        _wait_for_steps(engine, (len(warm) + len(timed)) * steps_per_journey, workers)
    cpu = tree_cpu(workers.pid) - cpu_before
    with engine.connect() as conn:
        query = select(journey_steps.c.status, func.count()).group_by(journey_steps.c.status)
        kinds: dict[str, int] = {status: count for status, count in conn.execute(query)}
    steps = len(timed) * steps_per_journey
    timing = watch.timing
    return {
        "steps": steps,
        "seconds": round(timing.seconds, 2),
        "worker_cpu_us_per_step": round(cpu / steps * 1e6),
        "server_cpu_us_per_step": None
        if timing.server_cpu_seconds is None
        else round(timing.server_cpu_seconds / steps * 1e6),
        "step_outcomes": kinds,
    }


def _wait_for_steps(engine: Engine, expected: int, workers: subprocess.Popen[bytes]) -> None:
    count = select(func.count()).select_from(journey_steps)
    seen, since = -1, time.monotonic()
    while True:
        with engine.connect() as conn:
            done = conn.execute(count).scalar_one()
            if done >= expected:
                return
            if workers.poll() is not None or time.monotonic() - since > STALL_S:
                errors = (
                    conn.execute(
                        select(journeys.c.last_error)
                        .where(journeys.c.last_error.is_not(None))
                        .limit(3)
                    )
                    .scalars()
                    .all()
                )
                raise BenchmarkError(f"the workers stopped at {done} of {expected} steps: {errors}")
        if done != seen:
            seen, since = done, time.monotonic()
        time.sleep(0.2)


# --- helpers ------------------------------------------------------------------------------------


class BenchmarkError(Exception):
    """Raised when a measured run did not do the work it claims to measure."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkError(message)


def _advance_batch() -> int:
    from campaigns.jobs import ADVANCE_BATCH

    return ADVANCE_BATCH


def _members(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM members")).scalar_one())


def _journeys(conn: Connection, campaign_id: str) -> int:
    query = select(func.count()).where(journeys.c.campaign_id == campaign_id)
    return int(conn.execute(query).scalar_one())


def _sample(conn: Connection, query: str, args: argparse.Namespace) -> list[str]:
    found = list(conn.execute(text(query), {"n": args.sample}).scalars())
    conn.rollback()  # the loop then runs in a transaction of its own, rolled back
    return found


def _clear_queues(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{_namespace()}:*"):
        client.delete(key)


def _queued(redis_url: str) -> int:
    """Messages waiting on the run's campaigns queue."""
    return int(redis.Redis.from_url(redis_url).hlen(f"{_namespace()}:campaigns.msgs"))


def _timing(timing: Any, *, rows: int) -> dict[str, Any]:
    server = timing.server_cpu_seconds
    return {
        "seconds": round(timing.seconds, 2),
        "client_cpu_seconds": round(timing.client_cpu_seconds, 2),
        "server_cpu_seconds": None if server is None else round(server, 2),
        "rows": rows,
    }


# --- report -------------------------------------------------------------------------------------


def build_report(
    results: dict[str, Any], machine: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    cart, audience, steps = results["cart_scan"], results["audience"], results["steps"]
    cart_s, audience_s, rate = cart["seconds"], audience["seconds"], steps["steps_per_s"]
    targets = {
        f"cart scan over {args.carts:,} carts enrols and enqueues in <= {TARGET_CART_S:.0f} s": (
            cart_s <= TARGET_CART_S
        ),
        f"schedule audience over {args.members:,} members enrols in <= "
        f"{TARGET_AUDIENCE_S:.0f} s": audience_s <= TARGET_AUDIENCE_S,
        f"journey steps >= {TARGET_STEPS_PER_S:,}/s on {args.workers} worker processes": (
            rate >= TARGET_STEPS_PER_S
        ),
    }
    scale = {
        name: getattr(args, name)
        for name in ("members", "orders", "carts", "abandoned", "steps", "sample")
    }
    return {
        "benchmark": "campaigns",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_state(),
        "scale": scale,
        "machine": machine,
        "results": results,
        "targets": targets,
        "summary": {
            "targets": targets,
            "seconds": {
                "cart_scan": cart["seconds"],
                "audience": audience["seconds"],
                "steps": steps["seconds"],
            },
            "steps_per_s": steps["steps_per_s"],
            "ratios": {
                "cart_loop_vs_set": cart["loop_vs_set"],
                "audience_loop_vs_set": audience["loop_vs_set"],
                "audience_python_ranges_vs_set": audience["python_ranges_vs_set"],
            },
        },
    }


def code_state() -> dict[str, Any]:
    """The commit measured, and the files of the working tree that differed from it (others
    work in the same checkout: the numbers belong to this state of the code)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout

    status = git("status", "--porcelain", "--untracked-files=no").splitlines()
    changed = [line[3:] for line in status if line.endswith(".py")]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": changed}


def markdown(report: dict[str, Any]) -> str:
    """docs/bench/campaigns.md, written from the run's results."""
    r, m, met = report["results"], report["machine"], list(report["targets"].values())
    cart, audience, steps = r["cart_scan"], r["audience"], r["steps"]
    verdict = ["met" if ok else "**missed**" for ok in met]
    rows = [
        f"| cart scan: {cart['carts']:,} carts, {cart['claimed']:,} abandoned enrolled, "
        f"{cart['advance_messages']} advance messages to Redis | ≤ {TARGET_CART_S:.0f} s "
        f"({verdict[0]}) | **{cart['seconds']} s** | per-cart loop: {cart['loop']['seconds']} s "
        f"for {cart['loop']['carts']:,} carts → {cart['loop']['extrapolated_seconds']:,} s | "
        f"{cart['loop_vs_set']:,}× |",
        f"| schedule audience `{AUDIENCE_CAMPAIGN}`: {audience['rows']:,} members in "
        f"{audience['ranges']} ranges on {report['results']['steps']['workers']} processes, "
        f"{audience['members_in_audience']:,} enrolled | ≤ {TARGET_AUDIENCE_S:.0f} s "
        f"({verdict[1]}) | **{audience['seconds']} s** | Python path "
        f"(`enrol_audience`): {audience['python_ranges']['seconds']} s for "
        f"{audience['python_ranges']['members']:,} members → "
        f"{audience['python_ranges']['extrapolated_seconds']:,} s; per-member loop: "
        f"{audience['loop']['seconds']} s for {audience['loop']['members']:,} → "
        f"{audience['loop']['extrapolated_seconds']:,} s | {audience['python_ranges_vs_set']:,}×"
        f" / {audience['loop_vs_set']:,}× |",
        f"| journey steps: {steps['steps']:,} (issue_coupon + send), {steps['workers']} "
        f"processes × {steps['threads_per_worker']} threads, Redis | ≥ {TARGET_STEPS_PER_S:,}/s "
        f"({verdict[2]}) | **{steps['steps_per_s']:,}/s** ({steps['seconds']} s) | one process,"
        f" no broker: {steps['one_process']['steps_per_s']:,}/s | "
        f"{steps['workers_vs_one_process']}× |",
    ]
    cpu = (
        f"CPU: cart scan {cart['client_cpu_seconds']} s client + {cart['server_cpu_seconds']} s "
        f"server; audience {audience['client_cpu_seconds']} s (this process and its workers) + "
        f"{audience['server_cpu_seconds']} s server, slowest range {audience['slowest_range_s']}"
        f" s, audience translated to SQL whole: {audience['translated_whole']}; steps "
        f"{steps['worker_cpu_us_per_step']} µs of worker CPU + {steps['server_cpu_us_per_step']}"
        f" µs of server CPU per step (one process: {steps['one_process']['client_cpu_us_per_step']}"
        f" µs); outcomes {steps['step_outcomes']}."
    )
    return "\n".join(
        [
            "# Campaigns benchmark",
            "",
            "`python -m benchmarks.bench_campaigns` (writes this page and "
            f"`bench-results/campaigns.json`; measured {report['measured_at']} at commit "
            f"{report['code']['commit']}, uncommitted changes then in "
            f"{', '.join(report['code']['uncommitted']) or 'no Python file'}).",
            "",
            f"Scale: {_scale(report['scale'])}. Setup (untimed), seconds: {_plain(r['setup'])}.",
            "",
            "| measurement | target | result | beside it | ratio |",
            "|---|---|---|---|---|",
            *rows,
            "",
            cpu,
            "",
            NOTES,
            "## Machine",
            "",
            f"{m['nproc']} cores ({m['cpu_model']}), {m['ram_gib']} GiB RAM, PostgreSQL "
            f"{m['postgresql']}, Python {m['python']}; load average "
            f"{m['load_average_1m_at_start']} at the start and {m['load_average_1m_at_end']} at "
            "the end (the machine is shared with other engineers' tests and benchmarks).",
            "",
        ]
    )


def _scale(scale: dict[str, int]) -> str:
    return ", ".join(f"{value:,} {name}" for name, value in scale.items())


def _plain(value: Any) -> str:
    return (
        ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    )


NOTES = """## What is measured

* **Data** (generated inside PostgreSQL, seeded, before the clock starts): members with contacts
  and consents (60% with a push token), orders spread over the two years before the scans'
  moment (none in its last two days), 5% refunded (half in part), every tenth member referred
  (60% of the referrals settled), carts: the abandoned ones (open, idle inside the scan's window,
  above `min_total`, each of another member), a fifth as many too small, a fifth whose member
  paid after the cart changed, 1% not yet idle, the rest converted (75%) or idle for days.
* **cart scan**: `enrol_abandoned_carts` in one transaction, as the `campaigns.scan_carts` actor
  runs it, then `enqueue_advance` to Redis after the commit. Checked: exactly the abandoned
  carts claimed and enrolled (the 10% holdout enters completed), one message per 200 journeys.
  The **per-cart loop** reads each sampled cart by key, checks the rule in Python, asks whether
  its member ordered since, claims it and enrols it alone; rolled back, extrapolated per cart.
* **schedule audience**: `referral-invite` (`member.paid_orders >= 1 && member.referrals == 0 &&
  member.days_since_last_order <= 30`, wholly translated). What `plan_audience` does (count,
  `plan_ranges`, `MEMBERS_PER_RANGE` = 20,000), then the ranges shared by two worker processes,
  each range one transaction doing what `enrol_audience_range` does: `audience_in_range`
  (`campaigns.audience_sql` where the audience translates), `enrol_scheduled`,
  `enqueue_advance` after the commit. Checked: on the sample the SQL
  and the per-member loop choose the same members; on the first ranges the Python path enrols
  as many; the journeys are the members chosen. The **Python path** is `enrol_audience`, what
  runs for an audience that does not translate (histories fetched per range, `member_variables`
  and the CEL library per member); the
  **per-member loop** fetches one member's history at a time. Both rolled back, extrapolated.
* **journey steps**: journeys of `cart-abandonment`, arm `coupon-first` (issue `cart-rescue-10`,
  then send `cart-coupon` on the first of push, SMS, e-mail the member can receive; marketing:
  consent, quiet hours and caps apply), due a minute before the wall clock, each of another
  member; `python -m dramatiq benchmarks.bench_campaigns:broker --queues campaigns` (worker.py's
  broker and middleware, in a Redis namespace of the run's own), 2 processes × 4 threads
  (`loyalty-engine worker`'s defaults). 1,600 journeys warm the workers up, then the timed
  ones are enqueued and the clock stops when every step row is written. The sends they queue
  wait on the `notifications` queue, which no worker serves here (delivery is the notifications
  benchmark). **One process**: `advance_journeys` on the same kind of journeys in this process,
  batch after batch, rolled back (committing instead changed nothing measurable: 1,879 steps/s
  in a separate run).
* Ingest with the full program is `benchmarks/bench_ingest_program.py` (BENCHMARKS.md).

## Where the time goes, and what would help

Profiles of 2026-12-02 (cProfile, per-statement timing through SQLAlchemy events, py-spy on a
running worker, `EXPLAIN (ANALYZE, BUFFERS)`), on the data above, load 2-5:

* **Enrolment inserts** (cart scan and audience): `journeys.enrol` sends 1,000-row `VALUES`
  lists (SQLAlchemy's insertmanyvalues): every batch is a new query text that psycopg parses
  again with regexes. In the cart scan the journeys insert took 3.0 s of 6.1 s, 2.1 s of it that
  parsing; `version_of(campaign)` (the campaign's JSON and a hash, once per row) 0.5 s. The
  same rows through one `INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING` (the form
  of `core.db.bulk_insert`) took 0.33-0.40 s instead of 1.9-2.0 s for 10,492 journeys.
  Suggestion: `core.db.bulk_insert` with a bare `ON CONFLICT DO NOTHING` (the journeys have two
  unique keys), used by `enrol`; `version_of` once per call.
* **Audience statement**: `orders` is read through `ix_orders_member_id`, but orders lie in the
  order they were paid, so one range's 60,000 orders sit on 43,000 of the table's 85,600 pages:
  474 ms per range, 44 s for the 50 ranges run one after the other (one statement over every
  member: 9.6 s; 4 ranges of 250,000 members: 20.8 s). With a covering index
  `orders (member_id, paid_at) INCLUDE (order_id, total)` it is an index-only scan: 41 ms per
  range, 2.5 s for all 50. That index is core's (`core/events/tables.py`, a migration);
  `fetch_histories` reads orders by member too. With it and the unnest insert a range costs
  about 130 ms: the whole audience would take about 5 s on two workers.
* **Journey steps**: CPU per step is 420-540 µs in a worker (780 under heavy load) plus 230 µs
  in PostgreSQL, so two cores top out near 2,500-3,000 steps/s with nothing else running. Other
  people's work moves the rate a lot: in side runs minutes apart, 2 × 4 workers did 469 and
  1,773 steps/s (2 × 1: 1,164/s, 4 × 1: 1,136/s), which is also why the one-process baseline,
  run first, can come out above the workers. In a worker (py-spy), `steps._end` (one `UPDATE`
  per journey) is 30-39% of the busy time; `effects.run_round` 35% (`message_variables_for`
  20%: `member_values` builds every `member` field, refunds and tiers included, for a template
  that shows a name and a coupon; `request_messages` 10%); `_record` 5%; `version_of` 4%.
  Suggestions: end a batch's completed journeys with one `UPDATE … WHERE journey_id =
  ANY(:ids)`; fetch only the member fields the templates read (`fetch_histories(fields=…)`);
  the coupon's discount text (babel number formatting per coupon) once per coupon and locale.

"""


if __name__ == "__main__":
    raise SystemExit(main())

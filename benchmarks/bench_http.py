"""The HTTP API under load: ``loyalty-engine serve --workers 2`` on PostgreSQL and Redis, loaded
from another process (:mod:`benchmarks.http_load`), beside the in-process call it serves.

* ``in process``: :func:`coupons.checkout_check.check_checkout` and its answer's ``as_dict``,
  on a pooled connection, as ``POST /v1/checkout/validate`` runs it (the cart built once): a
  gold member's 50-coupon wallet, 2 entered codes and 500 points against a 20-line cart.
* ``open loop``: ``POST /v1/checkout/validate`` with that cart at 200, 500 and 1,000 requests a
  second for ``--seconds`` each; latency from each request's scheduled moment, so a server that
  falls behind shows it (no coordinated omission).
* ``closed loop``: 8, 32 and 64 clients back to back for ``--step-seconds`` each: the most the
  server gives. The max sustained rate is the best of these and the open-loop runs that had no
  errors (an open-loop run counts only if it kept up with its rate).
* ``events``: ``POST /v1/events`` with batches of 500 new ``order.paid`` events of 1,000 seeded
  members, from ``--clients`` clients back to back for ``--event-seconds``; every package's
  handlers run in the request, as in production (Redis takes only what they enqueue). Each
  batch's orders were paid in the ``--event-spread`` seconds (1) before it is sent, as a shop
  posting its live orders; a spread longer than the run (3600: every batch covers the same
  hour) is a backfill's shape, where each batch reads every order of its span row by row.

Client and server share the machine: every run records the CPU seconds of the load generator,
of the uvicorn processes and of the PostgreSQL backends.

Usage: ``python -m benchmarks.bench_http [--seconds 60] [--check]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from benchmarks import http_load, http_wrk
from benchmarks.bench_coupons import timings
from benchmarks.http_report import build_report, print_report
from benchmarks.http_server import ProcessTreeCpu, clear_redis, serving
from benchmarks.http_shop import Shop, set_up
from benchmarks.measure import ServerCpu, describe_machine, temporary_database, vacuum_analyze
from core.db import get_engine
from core.readcache import ReadCache
from coupons.api_models import CartRequest
from coupons.carts import cart_from_items
from coupons.checkout_check import check_checkout
from coupons.checkout_reads import DATABASE, CachedReads, CheckoutReads

RESULT_FILE = Path(__file__).resolve().parents[1] / "bench-results" / "http.json"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
# Tests use Redis databases 9 and up (one per xdist worker), the other benchmarks 12 and 13.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
VALIDATE = "/v1/checkout/validate"
WARM_UP_SECONDS = 3.0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as work, temporary_database(args.database_url) as pg_url:
        machine = describe_machine(pg_url)
        engine = get_engine(pg_url)
        shop = set_up(engine, Path(work), members=args.event_members)
        machine["vacuum_analyze_s"] = vacuum_analyze(engine)
        in_process = measure_both(engine, pg_url, shop, calls=args.calls)
        engine.dispose()
        clear_redis(args.redis_url)
        try:
            served = serving(shop, pg_url, args.redis_url, Path(work), workers=args.api_workers)
            with served as base:
                pg = ServerCpu.for_url(args.database_url, pg_url.rsplit("/", 1)[1])
                results = run_load(base.url, shop, args, ProcessTreeCpu(base.pid), pg)
        finally:
            clear_redis(args.redis_url)
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    machine["load_average_5m_at_start"] = round(load_at_start[1], 2)
    report = build_report({**in_process, **results}, machine, args)
    print_report(report, Console(width=170))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if args.check and not all(report["targets"].values()) else 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_http",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--seconds", type=float, default=60.0, help="each open-loop rate runs this long")
    add("--rates", type=_numbers, default=[200, 500, 1_000], help="open-loop requests/s")
    add("--step-seconds", type=float, default=20.0, help="each closed-loop step runs this long")
    add("--concurrency", type=_numbers, default=[8, 32, 64], help="closed-loop clients")
    add("--event-seconds", type=float, default=30.0, help="how long the event batches run")
    add("--batch", type=int, default=500, help="order.paid events per POST /v1/events")
    add("--clients", type=int, default=4, help="clients posting event batches at once")
    add("--event-members", type=int, default=1_000, help="members the event batches pay orders for")
    add(
        "--event-spread",
        type=float,
        default=1.0,
        help="seconds before it is sent that each batch's orders were paid over",
    )
    add("--api-workers", type=int, default=2, help="uvicorn worker processes")
    add("--calls", type=int, default=2_000, help="timed in-process calls")
    add(
        "--database-url",
        default=os.environ.get("LOYALTY_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a PostgreSQL server to create the benchmark's own database on",
    )
    add("--redis-url", default=DEFAULT_REDIS_URL, help="a Redis database for this benchmark")
    add("--output", type=Path, default=RESULT_FILE)
    add("--check", action="store_true", help="exit 1 if a target is missed")
    # `python -m benchmarks ARGS` passes the same arguments to every benchmark: ignore theirs.
    known, _others = parser.parse_known_args(argv)
    return known


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def measure_in_process(
    engine: Any, shop: Shop, *, calls: int, reads: CheckoutReads = DATABASE
) -> dict[str, Any]:
    """The endpoint's service call, timed in this process (wall and CPU per call), on a pooled
    connection outside a transaction as the endpoint runs it, with ``reads``."""
    body = CartRequest.model_validate(shop.cart)
    cart = cart_from_items(body.items, total=body.total, shipping=body.shipping)

    def call() -> dict[str, Any]:
        with engine.connect() as conn:
            checked = check_checkout(
                conn.execution_options(isolation_level="AUTOCOMMIT"), shop.program,
                member_id=body.member_id, cart=cart, codes=body.codes, points=body.points,
                now=datetime.now(UTC), reads=reads,
            )  # fmt: skip
        return checked.as_dict()

    answer = call()
    found = timings(call, calls)
    return {**found, "answer": summarise(answer)}


def measure_both(engine: Any, pg_url: str, shop: Shop, *, calls: int) -> dict[str, Any]:
    """The call as a serve worker answers it (its reads kept in the worker's read cache: every
    call after the first reads nothing), and with every read from the database (a member's
    first checkout, or a serve worker with LOYALTY_API_READ_CACHE=0)."""
    with ReadCache(pg_url) as cache:
        deadline = time.monotonic() + 10.0
        while not cache.live:
            if time.monotonic() > deadline:
                raise RuntimeError("the read cache did not start listening on PostgreSQL")
            time.sleep(0.01)
        cached = measure_in_process(engine, shop, calls=calls, reads=CachedReads(cache))
    uncached = measure_in_process(engine, shop, calls=calls)
    return {"in_process": cached, "in_process_uncached": uncached}


def summarise(answer: dict[str, Any]) -> dict[str, Any]:
    """What one validate answer says, to compare the served one with the in-process one."""
    return {
        "coupons": len(answer["coupons"]),
        "eligible": sum(1 for coupon in answer["coupons"] if coupon["eligible"]),
        "best": answer["best"],
        "entered_ok": answer["entered"]["ok"],
        "points_redeemable": answer["points"]["redeemable"],
    }


def run_load(
    base: str, shop: Shop, args: argparse.Namespace, uvicorn: ProcessTreeCpu, pg: ServerCpu | None
) -> dict[str, Any]:
    """Every served measurement, each from the load generator in a process of its own."""
    body, key = orjson.dumps(shop.cart), shop.keys["checkout"]
    served = http_load.fetch_answer(base, key, VALIDATE, body)
    requests = (base, key, VALIDATE, body)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        generator = Generator(pool, uvicorn, pg)
        warm_up = min(WARM_UP_SECONDS, args.step_seconds)
        generator.run(http_load.closed_loop, *requests, concurrency=8, duration=warm_up)
        # The most this machine serves of the emptiest request, by the same generator.
        ceiling = generator.run(
            http_load.closed_loop, base, key, "/livez", None, concurrency=8,
            duration=args.step_seconds,
        )  # fmt: skip
        open_loop = [
            generator.run(http_load.open_loop, *requests, rate=rate, duration=args.seconds)
            for rate in args.rates
        ]
        closed_loop = [
            generator.run(
                http_load.closed_loop, *requests, concurrency=n, duration=args.step_seconds
            )
            for n in args.concurrency
        ]
        # The same closed loops from wrk, when installed: a generator that leaves the server
        # more of the shared cores (about 25 µs of CPU a request, against aiohttp's 240).
        closed_loop_wrk = [
            generator.run(
                http_wrk.closed_loop, *requests, concurrency=n, duration=args.step_seconds
            )
            for n in (args.concurrency if http_wrk.available() else [])
        ]
        events = generator.run(
            http_load.post_event_batches, base, shop.keys["events"], shop.members,
            batch=args.batch, clients=args.clients, duration=args.event_seconds, prefix="bench",
            spread=args.event_spread,
        )  # fmt: skip
    return {
        "served_answer": summarise(orjson.loads(served)),
        "ceiling": ceiling,
        "open_loop": open_loop,
        "closed_loop": closed_loop,
        "closed_loop_wrk": closed_loop_wrk,
        "events": events,
    }


class Generator:
    """Runs a load function in the generator's process; adds the CPU seconds the uvicorn
    processes and the PostgreSQL backends spent meanwhile."""

    def __init__(self, pool: ProcessPoolExecutor, uvicorn: ProcessTreeCpu, pg: ServerCpu | None):
        self.pool, self.uvicorn, self.pg = pool, uvicorn, pg

    def run(self, function: Any, *args: Any, **options: Any) -> dict[str, Any]:
        before_uvicorn, before_pg = self.uvicorn.read(), self.pg.read() if self.pg else {}
        found: dict[str, Any] = self.pool.submit(function, *args, **options).result()
        found["uvicorn_cpu_s"] = round(self.uvicorn.read() - before_uvicorn, 2)
        found["postgres_cpu_s"] = round(self.pg.used_since(before_pg), 2) if self.pg else None
        return found


if __name__ == "__main__":
    raise SystemExit(main())

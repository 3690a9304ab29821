"""The HTTP load generator of ``benchmarks/bench_http.py``: asyncio and aiohttp (keep-alive
connections from a pool), run in a process of its own, apart from the server it loads.

* :func:`open_loop`: requests sent at fixed intervals (``rate`` a second), whatever the answers
  do. Each latency counts from the moment the request was *scheduled*, not from when it was
  sent, so a server that falls behind shows it (no coordinated omission); the latency from the
  actual send is kept too.
* :func:`closed_loop`: ``concurrency`` clients, each sending its next request as soon as the
  previous one is answered: the most the server gives.
* :func:`post_event_batches`: ``clients`` clients posting batches of new ``order.paid`` events
  (unique ids, the seeded members) for a while.

Every function is bounded in time (its duration, plus a per-request timeout) and talks to one
base URL, a loopback address. Each returns a plain dict (it crosses the process boundary).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from benchmarks.datagen import CATALOGUE, money

TIMEOUT_S = 10.0
MAX_CONNECTIONS = 256


def percentiles(samples: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99, max and mean of latencies in seconds, in milliseconds."""
    if not samples:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(int(len(ordered) * q), len(ordered) - 1)] * 1e3, 3)

    mean = round(sum(ordered) / len(ordered) * 1e3, 3)
    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1] * 1e3, 3), "mean_ms": mean}  # fmt: skip


def _session(key: str, connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=None),
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes | None,
    errors: Counter[str],
    **headers: str,
) -> bytes | None:
    """The answer's body if it was a 200; else None, the failure counted in ``errors``.
    A POST of ``body``, or a GET when it is None."""
    try:
        sent = (
            session.get(url)
            if body is None
            else session.post(url, data=body, headers=headers or None)
        )
        async with sent as response:
            answer = await response.read()
            if response.status == 200:
                return answer
            errors[f"HTTP {response.status}"] += 1
    except TimeoutError:
        errors["timeout"] += 1
    except aiohttp.ClientError as exc:
        errors[type(exc).__name__] += 1
    return None


def open_loop(
    base: str, key: str, path: str, body: bytes, *, rate: float, duration: float
) -> dict[str, Any]:
    """``rate`` requests a second for ``duration`` seconds, each on its schedule."""
    return asyncio.run(_open_loop(base, key, path, body, rate, duration))


async def _open_loop(
    base: str, key: str, path: str, body: bytes, rate: float, duration: float
) -> dict[str, Any]:
    url, count = base + path, max(1, round(rate * duration))
    errors: Counter[str] = Counter()
    from_schedule: list[float] = []
    from_send: list[float] = []
    late: list[float] = []  # how long after its scheduled moment each request left
    finished = [0.0]
    cpu = time.process_time()

    async def one(session: aiohttp.ClientSession, scheduled: float) -> None:
        sent = time.perf_counter()
        late.append(sent - scheduled)
        answer = await _post(session, url, body, errors)
        done = time.perf_counter()
        finished[0] = max(finished[0], done)
        if answer is not None:
            from_schedule.append(done - scheduled)
            from_send.append(done - sent)

    async with _session(key, MAX_CONNECTIONS) as session:
        tasks = []
        start = time.perf_counter() + 0.05
        for index in range(count):
            scheduled = start + index / rate
            wait = scheduled - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(session, scheduled)))
        await asyncio.gather(*tasks)
    elapsed = max(finished[0], start + duration) - start
    return {
        "rate": rate,
        "duration_s": duration,
        "sent": count,
        "ok": len(from_schedule),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "achieved_per_s": round(len(from_schedule) / elapsed, 1),
        "latency": percentiles(from_schedule),
        "latency_from_send": percentiles(from_send),
        "send_lag": percentiles(late),
        "generator_cpu_s": round(time.process_time() - cpu, 2),
    }


def closed_loop(
    base: str, key: str, path: str, body: bytes | None, *, concurrency: int, duration: float
) -> dict[str, Any]:
    """``concurrency`` clients back to back for ``duration`` seconds (GET when ``body`` is
    None)."""
    return asyncio.run(_closed_loop(base, key, path, body, concurrency, duration))


async def _closed_loop(
    base: str, key: str, path: str, body: bytes | None, concurrency: int, duration: float
) -> dict[str, Any]:
    url = base + path
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    cpu = time.process_time()
    start = time.perf_counter()
    end = start + duration

    async def client(session: aiohttp.ClientSession) -> None:
        while (sent := time.perf_counter()) < end:
            if await _post(session, url, body, errors) is not None:
                latencies.append(time.perf_counter() - sent)

    async with _session(key, concurrency) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "duration_s": round(elapsed, 2),
        "ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "achieved_per_s": round(len(latencies) / elapsed, 1),
        "latency": percentiles(latencies),
        "generator_cpu_s": round(time.process_time() - cpu, 2),
    }


def order_batch(
    members: Sequence[str],
    *,
    prefix: str,
    first: int,
    size: int,
    now: datetime,
    seed: int,
    spread: timedelta = timedelta(hours=1),
) -> bytes:
    """``size`` new ``order.paid`` events (ids ``{prefix}-{n}``), each of a seeded member, paid
    in the ``spread`` before ``now``, as the JSON array a shop posts."""
    rng = random.Random(seed)
    events = []
    for number in range(first, first + size):
        items = [p.item | {"qty": rng.randint(1, 3)} for p in rng.sample(CATALOGUE, 3)]
        cents = sum(int(item["price"].replace(".", "")) * item["qty"] for item in items)
        paid = now - timedelta(microseconds=rng.randint(1, spread // timedelta(microseconds=1)))
        events.append({
            "id": f"{prefix}-evt-{number}",
            "type": "order.paid",
            "occurred_at": paid.isoformat(),
            "member_id": rng.choice(members),
            "data": {"order_id": f"{prefix}-o-{number}", "total": money(cents), "items": items},
        })  # fmt: skip
    return orjson.dumps(events)


def post_event_batches(
    base: str,
    key: str,
    members: Sequence[str],
    *,
    batch: int,
    clients: int,
    duration: float,
    prefix: str,
    spread: float = 1.0,
) -> dict[str, Any]:
    """``clients`` clients posting batches of ``batch`` new events, back to back; each batch's
    orders were paid in the ``spread`` seconds before it is built, as a shop posts its live
    orders (a larger spread than the time between batches makes them overlap, as a backfill's)."""
    return asyncio.run(_post_batches(base, key, members, batch, clients, duration, prefix, spread))


async def _post_batches(
    base: str,
    key: str,
    members: Sequence[str],
    batch: int,
    clients: int,
    duration: float,
    prefix: str,
    spread: float,
) -> dict[str, Any]:
    url = base + "/v1/events"
    errors: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    latencies: list[float] = []
    build_cpu = [0.0]
    cpu = time.process_time()
    start = time.perf_counter()
    end = start + duration
    paid_over = timedelta(seconds=spread)

    async def client(session: aiohttp.ClientSession, number: int) -> None:
        sequence = 0
        while time.perf_counter() < end:
            built = time.process_time()
            first = (number * 1_000_000 + sequence) * batch
            body = order_batch(members, prefix=prefix, first=first, size=batch,
                               now=datetime.now(UTC), seed=first, spread=paid_over)  # fmt: skip
            build_cpu[0] += time.process_time() - built
            sequence += 1
            sent = time.perf_counter()
            once = {"Idempotency-Key": str(uuid.uuid4())}
            answer = await _post(session, url, body, errors, **once)
            if answer is None:
                continue
            latencies.append(time.perf_counter() - sent)
            report = orjson.loads(answer)
            for name in ("accepted", "duplicate", "rejected"):
                counts[name] += report.get(name, 0)
            if report.get("rejections"):
                errors["rejected: " + str(report["rejections"][0].get("reason"))[:120]] += 1

    async with _session(key, clients) as session:
        await asyncio.gather(*(client(session, number) for number in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        "batch": batch,
        "clients": clients,
        "paid_over_s": spread,
        "duration_s": round(elapsed, 2),
        "batches_ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        **{name: counts[name] for name in ("accepted", "duplicate", "rejected")},
        "events_per_s": round(counts["accepted"] / elapsed, 1),
        "batch_latency": percentiles(latencies),
        "generator_cpu_s": round(time.process_time() - cpu, 2),
        "generator_build_cpu_s": round(build_cpu[0], 2),
    }


def fetch_answer(base: str, key: str, path: str, body: bytes) -> bytes:
    """One request's answer; RuntimeError unless it is a 200."""
    return asyncio.run(_fetch_answer(base + path, key, body))


async def _fetch_answer(url: str, key: str, body: bytes) -> bytes:
    async with _session(key, 1) as session, session.post(url, data=body) as response:
        answer = await response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {url} answered {response.status}: {answer[:500]!r}")
        return answer

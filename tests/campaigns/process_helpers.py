"""Real engine processes for the campaign tests: a program directory written by the test,
`loyalty-engine worker` and `scheduler` subprocesses on this test's PostgreSQL database and its
own Redis database, events ingested through Redis, and what the test reads back.

Redis: each test claims an empty database among 1-8 (``SET NX`` of a claim key, so two test
runs at once - two engineers, xdist workers - never share one; tests/conftest.py flushes 9 and
up, the benchmarks use 12 and 13), and empties and frees it at the end.

Redelivery: dramatiq's Redis broker gives the unacked messages of a dead worker back to their
queue only in "maintenance", which a command runs with a 0.1 % chance, and only once the
worker's heartbeat is 60 s old (``RedisBroker(heartbeat_timeout=60_000,
maintenance_chance=1_000)``; core/broker.py sets neither). :class:`Recovery` runs that same
maintenance (dramatiq's own Lua script) on every call with a short heartbeat timeout, so a test
of a killed worker takes seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest
import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.common import dq_name
from sqlalchemy import Engine, select

import worker
from campaigns.tables import journey_steps, journeys
from core.events.intake import Intake, ingest
from core.program.loader import Program
from core.settings import Settings
from coupons.tables import coupon_codes
from notifications.actors import release_due
from notifications.dispatch import QUEUED_GRACE
from notifications.tables import messages

EXAMPLE_PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "program"
ENGINE_COMMAND = str(Path(sys.executable).with_name("loyalty-engine"))
REDIS_BASE = os.environ.get("LOYALTY_TEST_REDIS", "redis://127.0.0.1:6379/9").rsplit("/", 1)[0]
REDIS_DATABASES = range(8, 0, -1)
CLAIM_KEY = "loyalty-test:claimed-by"
START_TIMEOUT_S = 40.0
# What each kind of process logs once it serves (a worker: once its worker process does).
READY = {"worker": "Worker process is ready for action", "scheduler": "scheduler starting"}
UNSENT = {"queued", "sending", "retrying", "deferred"}


def write_program(directory: Path, *campaigns: str) -> Path:
    """The example program with ``campaigns/`` replaced by these files (YAML texts)."""
    shutil.copytree(EXAMPLE_PROGRAM, directory)
    write_campaigns(directory, *campaigns)
    return directory


def write_campaigns(directory: Path, *campaigns: str) -> None:
    """Replace every campaign file (the edit a marketer deploys); each file is named after the
    ``id:`` on its first line."""
    folder = directory / "campaigns"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for text in campaigns:
        campaign_id = text.split("\n", 1)[0].removeprefix("id:").strip()
        (folder / f"{campaign_id}.yaml").write_text(text)


def member_registered(member_id: str, at: datetime) -> dict[str, Any]:
    number = sum(ord(c) * 31**i for i, c in enumerate(member_id)) % 10**8
    return {
        "id": f"reg-{member_id}", "type": "member.registered", "occurred_at": at.isoformat(),
        "member_id": member_id,
        "data": {
            "first_name": member_id, "email": f"{member_id}@example.com",
            "phone": f"+86139{number:08d}", "push_token": f"push-{member_id}",
            "timezone": "Asia/Shanghai", "locale": "en",
            "consents": {"email": True, "sms": True, "push": True},
        },
    }  # fmt: skip


def cart_updated(member_id: str, at: datetime) -> dict[str, Any]:
    item = {"sku": "LJ-100", "name": "Longjing", "category": "tea", "price": "180.00", "qty": 1}
    return {
        "id": f"cart-{member_id}", "type": "cart.updated", "occurred_at": at.isoformat(),
        "member_id": member_id,
        "data": {"cart_id": f"c-{member_id}", "total": "180.00", "items": [item]},
    }  # fmt: skip


@dataclass
class Engines:
    """The engine processes one test started, and their logs."""

    pg_url: str
    redis_url: str
    program_dir: Path
    outbox_path: Path
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    _files: list[IO[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
        return env | {
            "LOYALTY_DATABASE_URL": self.pg_url,
            "LOYALTY_REDIS_URL": self.redis_url,
            "LOYALTY_PROGRAM_DIR": str(self.program_dir),
            "LOYALTY_OUTBOX": str(self.outbox_path),
        }

    def start(self, name: str, kind: str, *options: str) -> None:
        """``loyalty-engine -v <kind>`` in its own process group (``-v``: INFO, so dramatiq
        says when its worker process is ready); its output goes to ``logs/<name>.log``."""
        log = (self.logs / f"{name}.log").open("ab")
        self._files.append(log)
        self.processes[name] = subprocess.Popen(
            [ENGINE_COMMAND, "--verbose", kind, *options], env=self.env(), cwd=self.logs,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.kinds[name] = kind

    def start_all(self, *names: str) -> None:
        """Start schedulers (names starting with "scheduler") and workers; wait until ready."""
        for name in names:
            if name.startswith("scheduler"):
                self.start(name, "scheduler")
            else:
                self.start(name, "worker", "--processes", "1", "--threads", "2")
        for name in names:
            self.wait_for(self.ready(name), f"{name} to start", timeout_s=START_TIMEOUT_S)

    def ready(self, name: str) -> Callable[[], bool]:
        marker = READY[self.kinds[name]]
        return lambda: marker in self.log(name)

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group: the dramatiq parent and its worker process."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, *names: str) -> None:
        """SIGTERM to each parent, which passes it on: dramatiq finishes what it runs, gives
        back what it prefetched, and exits (a second SIGTERM would make it exit at once)."""
        stopping = {name: self.processes.pop(name) for name in names}
        for process in stopping.values():
            process.send_signal(signal.SIGTERM)
        for name, process in stopping.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                raise AssertionError(f"{name} did not stop within 20 s of SIGTERM") from None

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        self.processes.clear()
        for log in self._files:
            log.close()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_for(
        self,
        condition: Callable[[], bool],
        what: str,
        *,
        timeout_s: float,
        each_poll: Callable[[], object] | None = None,
    ) -> None:
        """Poll until ``condition`` (calling ``each_poll`` before each look); if a process
        exits or the time runs out, fail with the condition's ``state`` and the logs."""
        deadline = time.monotonic() + timeout_s
        while True:
            if each_poll is not None:
                each_poll()
            if condition():
                return
            dead = [name for name, p in self.processes.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"{timeout_s:.0f} s passed"
                state = getattr(condition, "state", "")
                raise AssertionError(f"gave up waiting for {what}: {why}; {state}\n{self.tails()}")
            time.sleep(0.1)

    def tails(self, lines: int = 30) -> str:
        shown = []
        for path in sorted(self.logs.glob("*.log")):
            kept = [line for line in path.read_text(errors="replace").splitlines()
                    if "alembic" not in line][-lines:]  # fmt: skip
            shown.append(f"--- {path.stem} ---\n" + "\n".join(kept))
        return "\n".join(shown)

    def outbox(self) -> list[dict[str, Any]]:
        """The outbox's records (a line a killed writer cut short is none: the outbox ends it
        with a newline and writes the message again)."""
        if not self.outbox_path.exists():
            return []
        records = []
        for line in self.outbox_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records


def ingest_now(engine: Engine, program: Program, events: list[dict[str, Any]]) -> None:
    """Ingest through the Python intake; the journeys' first steps are enqueued on Redis."""
    report = ingest(events, Intake(engine=engine, now=datetime.now(UTC), program=program))
    assert (report.accepted, report.rejected) == (len(events), 0), report


def fetch_journeys(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(journeys).order_by(journeys.c.journey_id)))


def fetch_steps(engine: Engine) -> dict[str, dict[str, Any]]:
    """Journey id → step id → the step's row."""
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    with engine.connect() as conn:
        for row in conn.execute(select(journey_steps)):
            found[row.journey_id][row.step_id] = row
    return dict(found)


def fetch_messages(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(messages)))


def fetch_journey_coupons(engine: Engine) -> list[Any]:
    """Coupons issued by journey steps (their issue key is ``journey:<id>:<step>``)."""
    with engine.connect() as conn:
        query = select(coupon_codes).where(coupon_codes.c.issue_key.like("journey:%"))
        return list(conn.execute(query))


class Settled:
    """Every journey ended, every message sent or stopped, no actor message left in Redis;
    ``state`` says what was still going on at the last look."""

    def __init__(self, engine: Engine, redis_url: str, journeys_expected: int) -> None:
        self.engine, self.redis_url, self.expected = engine, redis_url, journeys_expected
        self.state = "not looked at yet"

    def __call__(self) -> bool:
        rows = fetch_journeys(self.engine)
        where = Counter(f"{r.campaign_id}:{r.status}:{r.step_id}" for r in rows)
        due = sorted({r.next_run_at.isoformat() for r in rows if r.status == "active"})
        found = fetch_messages(self.engine)
        sending = Counter(m.status for m in found)
        unsent = Counter(f"{m.template_id}:{m.status}" for m in found if m.status in UNSENT)
        unfinished = unfinished_messages(self.redis_url)
        self.state = (
            f"{len(rows)} of {self.expected} journeys {dict(where)}, due {due[:3]}; "
            f"messages {dict(sending)} (unsent {dict(unsent)}); {unfinished} actor message(s) "
            f"in Redis, dead-lettered {dead_lettered(self.redis_url)}"
        )
        ended = all(row.status != "active" for row in rows)
        quiet = not UNSENT & set(sending) and unfinished == 0
        return len(rows) == self.expected and ended and quiet


class Recovery:
    """What time would bring after a worker died, sooner, called on every poll:

    * dramatiq's maintenance: the unacked messages of a worker whose heartbeat is older than
      ``heartbeat_timeout_ms`` go back to their queues (see the module docstring); a live
      worker beats about once a second, as each of its consumers polls Redis that often;
    * the release job two minutes on (``notifications.dispatch.QUEUED_GRACE``): a message left
      ``queued`` with no actor message anywhere (its worker died between the commit that
      recorded it and the enqueue after that commit) is sent.
    """

    def __init__(self, engine: Engine, redis_url: str, *, heartbeat_timeout_ms: int) -> None:
        self.engine, self.redis_url, self.released_at = engine, redis_url, 0.0
        self.broker = RedisBroker(url=redis_url, heartbeat_timeout=heartbeat_timeout_ms,
                                  maintenance_chance=MAINTENANCE_SCALE)  # fmt: skip

    def __call__(self) -> None:
        for queue in worker.queue_names(worker.get_broker()):
            for name in (queue, dq_name(queue)):
                self.broker.do_qsize(name)
        if time.monotonic() - self.released_at < 2 or unfinished_messages(self.redis_url):
            return
        if any(m.status == "queued" for m in fetch_messages(self.engine)):
            self.released_at = time.monotonic()
            release_due.send((datetime.now(UTC) + QUEUED_GRACE).isoformat())

    def close(self) -> None:
        self.broker.client.close()


def unfinished_messages(redis_url: str) -> int:
    """Actor messages enqueued and not yet acked, on every queue (delay queues included)."""
    with redis.Redis.from_url(redis_url) as client:
        keys = [k for k in client.scan_iter("dramatiq:*.msgs") if not k.endswith(b".XQ.msgs")]
        return sum(int(client.hlen(key)) for key in keys)


def dead_lettered(redis_url: str) -> dict[str, int]:
    """Actor messages that failed every retry, per dead-letter queue."""
    with redis.Redis.from_url(redis_url) as client:
        found = {k.decode(): int(client.zcard(k)) for k in client.scan_iter("dramatiq:*.XQ")}
    return {name: count for name, count in found.items() if count}


@contextmanager
def own_redis_database() -> Iterator[str]:
    """An empty Redis database claimed for this test (see the module docstring)."""
    client, url = _claim_redis_database()
    try:
        yield url
    finally:
        for key in client.scan_iter():
            client.delete(key)  # the claim key too: the database is free again
        client.close()


def _claim_redis_database() -> tuple[redis.Redis, str]:
    owner = f"{os.uname().nodename}:{os.getpid()}"
    for number in REDIS_DATABASES:
        url = f"{REDIS_BASE}/{number}"
        client = redis.Redis.from_url(url)
        try:
            claimed = client.set(CLAIM_KEY, owner, nx=True, ex=600)
        except redis.exceptions.ConnectionError as exc:
            pytest.fail(f"Redis is not reachable at {url} ({exc}); start it: see tests/conftest.py")
        if claimed and client.dbsize() == 1:
            return client, url
        if claimed:  # not empty: someone else's data; leave it alone
            client.delete(CLAIM_KEY)
        client.close()
    pytest.fail(f"no empty Redis database among {REDIS_BASE}/1-8; free one (FLUSHDB) or wait")


@contextmanager
def engine_processes(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Engines]:
    """Engine processes for one test (none started yet); this process enqueues on that Redis.
    Every process still running at the end is killed."""
    (tmp_path / "logs").mkdir()
    started = Engines(pg_url=pg_url, redis_url=redis_url, program_dir=tmp_path / "program",
                      outbox_path=tmp_path / "outbox.jsonl", logs=tmp_path / "logs")  # fmt: skip
    worker.setup(Settings(_env_file=None, database_url=pg_url, redis_url=redis_url))  # type: ignore[call-arg]
    try:
        yield started
    finally:
        started.close()
        worker.setup(Settings(_env_file=None, redis_url=None))  # type: ignore[call-arg]

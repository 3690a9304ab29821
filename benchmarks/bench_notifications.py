"""Notification throughput, side by side with the bare tools, in one run.

* ``dispatch``: N recorded messages sent through dramatiq and Redis by ``--workers`` worker
  processes (``python -m dramatiq worker``, as ``loyalty-engine worker`` runs it) to the file
  outbox of the embedded default, on a fresh PostgreSQL database: lock, guardrails, hand-over,
  record, one ``notification_attempts`` row each;
* ``raw redis``: the same N outbox records pushed one by one with LPUSH and popped with BRPOP by
  as many consumer processes, each appending what it pops to a file: a queue and a file with
  no engine at all;
* ``render``: template renders with each text compiled once (as the engine does), beside
  compiling the template again for each message.

Setup (untimed, reported): members ingested through event intake, then the messages recorded
with ``request_messages`` (rendered, de-duplicated, stored). Usage:
``python -m benchmarks.bench_notifications [--messages 100000] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from sqlalchemy import Engine, func, select

from benchmarks.measure import describe_machine, temporary_database
from core.db import get_engine
from core.events.handlers import HandlerRegistry
from core.events.intake import Intake, ingest
from core.program.loader import Program, load_program
from notifications.requests import MessageRequest, request_messages
from notifications.samples import sample_variables
from notifications.tables import messages
from notifications.templates import Audience, TemplateCatalog, render_message

ROOT = Path(__file__).resolve().parents[1]
RESULT_FILE = ROOT / "bench-results" / "notifications.json"
MARKDOWN_FILE = ROOT / "docs" / "bench" / "notifications.md"
TARGET_DISPATCH_PER_S = 2_000
TARGET_RENDERS_PER_S = 10_000
NOW = datetime(2026, 11, 5, 4, 0, tzinfo=UTC)  # noon in Shanghai: no quiet hours
RECORD_CHUNK = 2_000  # messages per request_messages transaction in the setup


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    console = Console()
    program = load_program(ROOT / "examples" / "program")
    results: dict[str, Any] = {"render": measure_rendering(program, args.renders, console)}
    with temporary_database(args.database_url, name=f"bench_notifications_{os.getpid()}") as url:
        machine = describe_machine(url)
        results |= measure_delivery(url, program, args, console)
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    report = build_report(results, machine, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(markdown(report))
    console.print(markdown(report))
    return 1 if args.check and not all(report["targets"].values()) else 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_notifications",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--renders", type=int, default=30_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker process")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "LOYALTY_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/test"
        ),
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("LOYALTY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        help="a Redis database for the benchmark's queues (its dramatiq keys are cleared)",
    )
    parser.add_argument("--output", type=Path, default=RESULT_FILE)
    parser.add_argument("--markdown", type=Path, default=MARKDOWN_FILE)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    return parser.parse_args(argv)


# --- workload ----------------------------------------------------------------------------------
# Members alternate locales and time zones; each message has its own name, cart and coupon
# code, while a batch shares its coupon expiry (a campaign step issues them at one time).
LOCALES = ("zh-CN", "en")
ZONES = ("Asia/Shanghai", "America/New_York", "Europe/London")
CHANNELS = (("cart-coupon", "push"), ("cart-coupon", "sms"), ("cart-coupon", "email"),
            ("welcome", "push"), ("welcome", "email"), ("birthday", "sms"))  # fmt: skip
NAMES = ("Lin", "Alexandra", "王小明", "Sam", "Ivy", "美", "Benjamin", "赵")


def member_events(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"bench-m-{n}",
            "type": "member.registered",
            "occurred_at": "2026-10-01T10:00:00+08:00",
            "member_id": f"m-{n}",
            "data": {
                "first_name": NAMES[n % len(NAMES)],
                "email": f"member{n}@example.com",
                "phone": f"+86138{n:08d}",
                "push_token": f"push-token-{n:012d}",
                "timezone": ZONES[n % len(ZONES)],
                "locale": LOCALES[n % len(LOCALES)],
                "consents": {"email": True, "sms": True, "push": True},
            },
        }
        for n in range(count)
    ]


def variables_for(base: dict[str, dict[str, Any]], n: int) -> dict[str, Any]:
    locale = LOCALES[n % len(LOCALES)]
    sample = base[locale]
    cart = sample["cart"] | {"total": Decimal(f"{100 + n % 977}.{n % 100:02d}"),
                             "item_count": 1 + n % 9}  # fmt: skip
    coupon = sample["coupon"] | {
        "code": f"C{n:09d}",
        "expires_at": datetime(2026, 11, 19, 13, 40, tzinfo=UTC) + timedelta(hours=n // 500),
    }
    member = sample["member"] | {"first_name": NAMES[n % len(NAMES)]}
    return sample | {"member": member, "cart": cart, "coupon": coupon}


def message_requests(program: Program, members: int, count: int) -> list[MessageRequest]:
    base = {locale: sample_variables(program, locale) for locale in LOCALES}
    requests = []
    for n in range(count):
        template, channel = CHANNELS[n % len(CHANNELS)]
        requests.append(
            MessageRequest(
                member_id=f"m-{n % members}", channels=(channel,), template_id=template,
                kind="transactional", dedupe_key=f"bench:{n}", variables=variables_for(base, n),
            )
        )  # fmt: skip
    return requests


def render_workload(program: Program, count: int) -> list[dict[str, Any]]:
    base = {locale: sample_variables(program, locale) for locale in LOCALES}
    return [
        {
            "template": CHANNELS[n % len(CHANNELS)][0],
            "channel": CHANNELS[n % len(CHANNELS)][1],
            "variables": variables_for(base, n),
            "audience": Audience(LOCALES[n % len(LOCALES)], ZONES[n % len(ZONES)]),
        }
        for n in range(count)
    ]


# --- rendering -------------------------------------------------------------------------------


def measure_rendering(program: Program, renders: int, console: Console) -> dict[str, Any]:
    """Renders per second in this one process (one core), cached and compiling each time."""
    workload = render_workload(program, renders)
    default = program.program_file.program.default_locale
    cached = TemplateCatalog(program.templates, default_locale=default)
    with console.status("rendering"):
        warm = _render_all(program, workload[:200], lambda: cached)
        once = _render_all(program, workload, lambda: cached)
        each = _render_all(
            program, workload[: max(renders // 10, 100)],
            lambda: TemplateCatalog(program.templates, default_locale=default),
        )  # fmt: skip
    del warm
    return {
        "renders": renders,
        "compiled_once_per_s": round(once, 1),
        "compiled_each_message_per_s": round(each, 1),
        "ratio": round(once / each, 1),
    }


def _render_all(program: Program, workload: list[dict[str, Any]], catalog: Any) -> float:
    info = program.program_file.program
    started = time.perf_counter()
    for job in workload:
        render_message(
            catalog(),
            template_id=job["template"],
            channel=job["channel"],
            variables=job["variables"],
            audience=job["audience"],
            currency=info.currency,
            business_timezone=info.timezone,
            sms_signature=program.program_file.messaging.sender.sms_signature,
        )
    return len(workload) / (time.perf_counter() - started)


# --- dispatch through dramatiq, and the raw Redis loop -----------------------------------------


def measure_delivery(
    pg_url: str, program: Program, args: argparse.Namespace, console: Console
) -> dict[str, Any]:
    engine = get_engine(pg_url)
    with console.status("setup: members and messages"):
        setup = prepare(engine, program, args)
    work = Path(tempfile.mkdtemp(prefix="bench-notifications-"))
    _clear_queues(args.redis_url)
    with console.status(f"dispatch: {args.messages} messages, {args.workers} workers"):
        dispatch = measure_dispatch(engine, pg_url, args, setup["ids"], work)
    with console.status("raw redis LPUSH/BRPOP"):
        records = (work / "outbox.jsonl").read_bytes().splitlines()[-args.messages :]
        raw = measure_raw_redis(args.redis_url, records, work, args.workers)
    ratio = dispatch["messages_per_s"] / raw["messages_per_s"]
    setup.pop("ids")
    return {"setup": setup, "dispatch": dispatch, "raw_redis": raw, "dispatch_vs_raw": ratio}


def prepare(engine: Engine, program: Program, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    intake = Intake(engine=engine, now=NOW, source="bench", registry=HandlerRegistry())
    ingest(member_events(args.members), intake)
    members_s = time.perf_counter() - started
    requests = message_requests(program, args.members, args.messages + _warmup_size(args))
    started = time.perf_counter()
    ids: list[str] = []
    for start in range(0, len(requests), RECORD_CHUNK):
        with engine.begin() as conn:
            results = request_messages(conn, requests[start : start + RECORD_CHUNK], now=NOW,
                                       program=program)  # fmt: skip
        ids += [result.message_id for result in results]
    recorded_s = time.perf_counter() - started
    return {
        "members": args.members,
        "members_ingest_s": round(members_s, 2),
        "messages_recorded": len(ids),
        "record_per_s": round(len(ids) / recorded_s, 1),
        "ids": ids,
    }


def _warmup_size(args: argparse.Namespace) -> int:
    from notifications.actors import SEND_BATCH

    return SEND_BATCH * args.workers * args.threads


def measure_dispatch(
    engine: Engine, pg_url: str, args: argparse.Namespace, ids: list[str], work: Path
) -> dict[str, Any]:
    import worker
    from core.settings import Settings
    from notifications.actors import enqueue_sends

    worker.setup(Settings(_env_file=None, database_url=pg_url, redis_url=args.redis_url))  # type: ignore[call-arg]
    warmup, timed = ids[: _warmup_size(args)], ids[_warmup_size(args) :]
    workers = start_workers(pg_url, args, work)
    try:
        enqueue_sends(warmup)  # workers are up once these are through
        wait_until_sent(engine, len(warmup), workers)
        cpu_before = tree_cpu(workers.pid)
        started = time.perf_counter()
        enqueue_sends(timed)
        wait_until_sent(engine, len(ids), workers)
        seconds = time.perf_counter() - started
        worker_cpu = tree_cpu(workers.pid) - cpu_before
    finally:
        stop(workers)
    written = _outbox_ids(work / "outbox.jsonl")
    assert len(written) == len(set(written)) == len(ids), "each message once in the outbox"
    return {
        "messages": len(timed),
        "seconds": round(seconds, 2),
        "messages_per_s": round(len(timed) / seconds, 1),
        "worker_cpu_us_per_message": round(worker_cpu / len(timed) * 1e6, 1),
        "workers": args.workers,
        "threads_per_worker": args.threads,
    }


def start_workers(pg_url: str, args: argparse.Namespace, work: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "LOYALTY_DATABASE_URL": pg_url,
        "LOYALTY_REDIS_URL": args.redis_url,
        "LOYALTY_PROGRAM_DIR": str(ROOT / "examples" / "program"),
        "LOYALTY_OUTBOX": str(work / "outbox.jsonl"),
    }
    command = [sys.executable, "-m", "dramatiq", "worker:broker", "--processes", str(args.workers),
               "--threads", str(args.threads), "--queues", "notifications"]  # fmt: skip
    log = (work / "workers.log").open("wb")
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)


def wait_until_sent(engine: Engine, expected: int, workers: subprocess.Popen[bytes]) -> None:
    """Poll the database until ``expected`` messages are sent; fail if progress stops."""
    count = select(func.count()).select_from(messages).where(messages.c.status == "sent")
    seen, since = -1, time.monotonic()
    while True:
        with engine.connect() as conn:
            sent = conn.execute(count).scalar() or 0
        if sent == expected:
            return
        if sent != seen:
            seen, since = sent, time.monotonic()
        if workers.poll() is not None or time.monotonic() - since > 120:
            raise RuntimeError(f"the workers stopped at {sent} of {expected} messages sent")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by ``root`` and its descendants (from /proc)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    family, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in family} - family
        family |= children
        grew = bool(children)
    return sum(cpu.get(pid, 0.0) for pid in family)


def _outbox_ids(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["message_id"] for line in lines]


def _clear_queues(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match="dramatiq:*"):
        client.delete(key)


def measure_raw_redis(
    redis_url: str, records: list[bytes], work: Path, consumers: int
) -> dict[str, Any]:
    """The same outbox records through a bare LPUSH/BRPOP loop, each popped line appended."""
    key = f"bench:notifications:raw:{os.getpid()}"
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(consumers + 1)
    processes = [
        context.Process(target=raw_consumer, args=(redis_url, key, str(work / "raw.jsonl"), ready))
        for _ in range(consumers)
    ]
    for process in processes:
        process.start()
    ready.wait()
    client = redis.Redis.from_url(redis_url)
    started = time.perf_counter()
    for record in records:
        client.lpush(key, record)
    for _ in processes:
        client.lpush(key, b"STOP")
    for process in processes:
        process.join()
    seconds = time.perf_counter() - started
    assert len((work / "raw.jsonl").read_bytes().splitlines()) == len(records)
    return {
        "messages": len(records),
        "seconds": round(seconds, 2),
        "messages_per_s": round(len(records) / seconds, 1),
        "consumers": consumers,
    }


def raw_consumer(redis_url: str, key: str, path: str, ready: Any) -> None:
    client: Any = redis.Redis.from_url(redis_url)
    with open(path, "ab") as out:
        ready.wait()
        while True:
            _, record = client.brpop([key])
            if record == b"STOP":
                return
            out.write(record + b"\n")
            out.flush()


# --- report ------------------------------------------------------------------------------------


def build_report(
    results: dict[str, Any], machine: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    return {
        "benchmark": "notifications",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        **results,
        "targets": {
            f"dispatch >= {TARGET_DISPATCH_PER_S}/s": results["dispatch"]["messages_per_s"]
            >= TARGET_DISPATCH_PER_S,
            f"render >= {TARGET_RENDERS_PER_S}/s per core": results["render"]["compiled_once_per_s"]
            >= TARGET_RENDERS_PER_S,
        },
    }


def markdown(report: dict[str, Any]) -> str:
    """docs/bench/notifications.md: written from the results of the run."""
    head = (
        "# Notifications benchmark\n\n`python -m benchmarks.bench_notifications` (this file and "
        "`bench-results/notifications.json` are written by it; measured "
        f"{report['measured_at']}).\n\n"
    )
    return head + _results_md(report) + METHOD_MD + _machine_md(report["machine"])


def _results_md(report: dict[str, Any]) -> str:
    d, raw, r, setup = report["dispatch"], report["raw_redis"], report["render"], report["setup"]
    met = ["met" if ok else "**missed**" for ok in report["targets"].values()]
    dispatch = (
        f"| dispatch: {d['messages']:,} messages, dramatiq + Redis, {d['workers']} worker "
        f"processes × {d['threads_per_worker']} threads, to the file outbox "
        f"| ≥ {TARGET_DISPATCH_PER_S:,}/s ({met[0]}) | **{d['messages_per_s']:,.0f}/s** "
        f"({d['seconds']} s) | raw redis-py LPUSH/BRPOP loop, {raw['consumers']} consumers "
        f"appending to a file: {raw['messages_per_s']:,.0f}/s | {report['dispatch_vs_raw']:.2f} |"
    )
    render = (
        f"| render, compiled once, one process | ≥ {TARGET_RENDERS_PER_S:,}/s per core "
        f"({met[1]}) | **{r['compiled_once_per_s']:,.0f}/s** | compiling the template for each "
        f"message: {r['compiled_each_message_per_s']:,.0f}/s | {r['ratio']:.1f}× |"
    )
    notes = (
        f"Worker CPU: {d['worker_cpu_us_per_message']} µs per message (all worker processes, "
        f"from /proc). Setup, untimed: {setup['members']:,} members ingested in "
        f"{setup['members_ingest_s']} s; {setup['messages_recorded']:,} messages recorded by "
        f"`request_messages` (render, de-duplicate, insert) at {setup['record_per_s']:,.0f}/s "
        "in one process."
    )
    table = "| measurement | target | result | beside | ratio |\n|---|---|---|---|---|"
    return f"## Results\n\n{table}\n{dispatch}\n{render}\n\n{notes}\n\n"


METHOD_MD = """## What is measured

* **dispatch** starts when the first batch is enqueued and ends when the database says every
  message is `sent`; the workers are started and warmed up before (one batch per thread). Each
  actor message carries `notifications.actors.SEND_BATCH` message ids; a batch is one
  transaction (lock `FOR UPDATE SKIP LOCKED`, guardrails, outbox append under `flock` and
  fsync, outcome and attempt rows), the outbox being a local, idempotent transport (see
  `notifications/dispatch.py`). The messages are transactional (consent and the suppression list
  are checked; quiet hours and caps do not apply), over six template/channel pairs, two locales
  and three time zones. Every message is checked to be in the outbox exactly once.
* **raw redis** pushes the same outbox records one `LPUSH` at a time while the consumers `BRPOP`
  one at a time and append each line to a file: what a queue and a file cost with no database.
  It pays a Redis round trip per message each way, where the engine moves 200 message ids per
  actor message; that is how the engine, doing far more per message (a database transaction,
  guardrails, a record), can come out ahead of it.
* **render** is one process rendering a mix of push, SMS and email (email adds the HTML part),
  each message with its own name, cart and coupon code, in two locales and three zones.

"""


def _machine_md(m: dict[str, Any]) -> str:
    return (
        f"## Machine\n\n{m['nproc']} cores ({m['cpu_model']}), {m['ram_gib']} GiB, Python "
        f"{m['python']}, PostgreSQL {m['postgresql']}, all on one host. The machine is **shared "
        "with other engineers' running work** (tests and benchmarks): load average "
        f"{m['load_average_1m_at_start']} at the start and {m['load_average_1m_at_end']} at the "
        f"end, on {m['nproc']} cores, so wall-clock rates are lower and noisier than on a "
        "dedicated host; the CPU per message is the steadier figure.\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""``tick``: move the engine clock forward, firing every scheduled job on the way.

The same job registry the ``scheduler`` process runs is walked in time order; after each firing
all enqueued work is drained, so the state at each step is what production would have reached.
The time ticked to is remembered in the database, so successive ticks continue where the last
one stopped. ``replay`` drives an event file through time the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.broker import drain
from core.clock import FixedClock, ensure_aware, using_clock
from core.events.errors import EventRejected
from core.events.intake import IngestReport, Intake, ingest_lines
from core.events.validation import parse_line
from core.runtime import Runtime
from core.scheduling import Job, due_in_order, fire
from core.state import get_value, set_value

TICKED_TO = "ticked_to"
# One tick walks every firing on the way (a simulated year takes seconds); longer is a typo.
MAX_TICK_SPAN = timedelta(days=3_660)


class TickError(ValueError):
    """Raised when asked to tick backwards or from a time after the target."""


@dataclass
class TickReport:
    """Which firings a tick ran, in order."""

    start: datetime
    until: datetime
    fired: list[tuple[datetime, str]] = field(default_factory=list)


def ticked_to(runtime: Runtime) -> datetime | None:
    with runtime.engine.connect() as conn:
        value = get_value(conn, TICKED_TO)
    return datetime.fromisoformat(value) if value else None


def tick(
    runtime: Runtime,
    jobs: Sequence[Job],
    *,
    until: datetime,
    start: datetime | None = None,
    on_fire: Callable[[datetime, Job], None] | None = None,
) -> TickReport:
    """Fire every job due after the last tick (first tick: ``start``, else ``until``) up to
    and including ``until``, draining all work after each firing."""
    until = ensure_aware(until, what="--until")
    previous = ticked_to(runtime)
    begin = previous or (ensure_aware(start, what="--from") if start else until)
    if until < begin:
        raise TickError(
            f"cannot tick back to {until.isoformat()}: the engine already ticked to "
            f"{begin.isoformat()}; pick a later --until"
        )
    if until - begin > MAX_TICK_SPAN:
        raise TickError(
            f"cannot tick from {begin.isoformat()} to {until.isoformat()}: at most "
            f"{MAX_TICK_SPAN.days // 366} years at a time; tick in steps"
        )
    report = TickReport(start=begin, until=until)
    clock = FixedClock(begin)
    with using_clock(clock):
        for fire_time, job in due_in_order(jobs, begin, until):
            clock.set(fire_time)
            if fire(job, fire_time, engine=runtime.engine, now=fire_time, owner="tick"):
                drain()
                report.fired.append((fire_time, job.id))
                if on_fire:
                    on_fire(fire_time, job)
        clock.set(until)
        drain()
    with runtime.engine.begin() as conn:
        set_value(conn, TICKED_TO, until.isoformat())
    return report


@dataclass
class ReplayReport:
    ingest: IngestReport = field(default_factory=IngestReport)
    fired: list[tuple[datetime, str]] = field(default_factory=list)


def replay(
    runtime: Runtime,
    jobs: Sequence[Job],
    lines: Iterable[str | bytes],
    *,
    source: str,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Ingest each event at its own ``occurred_at``, ticking the engine there first.

    Nothing is ticked past the engine clock at the start plus the future tolerance: an event
    dated later is rejected like any event from the future, not simulated for centuries.
    """
    report = ReplayReport()
    not_after = runtime.now() + runtime.settings.event_future_tolerance
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        at = _occurred_at(line)
        if at is not None and at <= not_after:
            done = ticked_to(runtime)
            if done is None or at > done:
                report.fired += tick(runtime, jobs, until=at, start=at).fired
        now = min(at, not_after) if at else (ticked_to(runtime) or runtime.now())
        with using_clock(FixedClock(now)):
            intake = Intake.for_runtime(
                runtime,
                source=source,
                program=runtime.program_or_none(),
                now=now,
                not_after=not_after,
            )
            report.ingest.add(_ingest_line(line, number, intake))
            drain()
        if progress:
            progress(1)
    return report


def ingest_at(
    runtime: Runtime, lines: Sequence[str | bytes], *, at: datetime, source: str
) -> IngestReport:
    """Ingest ``lines`` as one batch at engine time ``at`` and run the work it enqueues; a
    simulation's batched replay (``tick`` to ``at`` first)."""
    with using_clock(FixedClock(at)):
        intake = Intake.for_runtime(
            runtime,
            source=source,
            program=runtime.program_or_none(),
            now=at,
            not_after=at + runtime.settings.event_future_tolerance,
        )
        report = ingest_lines(lines, intake)
        drain()
    return report


def _occurred_at(line: str | bytes) -> datetime | None:
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        value = parse_line(text).get("occurred_at")
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, TypeError, EventRejected):
        return None
    return parsed if parsed and parsed.tzinfo else None


def _ingest_line(line: str | bytes, number: int, intake: Intake) -> IngestReport:
    return ingest_lines([line], intake, first_line=number)


__all__ = ["ReplayReport", "TickError", "TickReport", "ingest_at", "replay", "tick", "ticked_to"]

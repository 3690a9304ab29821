"""The registry through which loyalty, coupons and campaigns react to accepted events.

A handler receives a batch of events of the types it subscribed to, inside the transaction that
stored them, so an event and everything it causes commit together, or not at all.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from core.events.types import Event


@dataclass
class HandlerContext:
    """What a handler may use: the open transaction, the engine time, the loaded program."""

    conn: Connection
    now: datetime
    program: Any | None = None
    # Facts worth a count in the intake report ("coupon_refused": 3), instead of a log line each.
    tallies: Counter[str] = field(default_factory=Counter)
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def tally(self, name: str, count: int = 1) -> None:
        """Count a fact for the report of this intake (``events ingest`` prints the totals)."""
        self.tallies[name] += count

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` (typically enqueueing an actor) once the transaction has committed."""
        self._after_commit.append(action)

    def emit(self, emitted: Sequence[Event], *, registry: HandlerRegistry | None = None) -> None:
        """Emit engine events (``tier.changed``…) in this transaction; see core.events.internal."""
        from core.events.internal import emit

        emit(self, emitted, registry=registry or handlers)

    def run_after_commit(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()


@contextmanager
def unit_of_work(engine: Engine, *, now: datetime, program: Any = None) -> Iterator[HandlerContext]:
    """One transaction for work outside event intake (a daily job, a checkout call): commit,
    then run what was deferred to after the commit (enqueueing messages)."""
    with engine.begin() as conn:
        ctx = HandlerContext(conn=conn, now=now, program=program)
        yield ctx
    ctx.run_after_commit()


Handler = Callable[[HandlerContext, Sequence[Event]], None]


class HandlerRegistry:
    """Event type → the handlers subscribed to it, in subscription order."""

    def __init__(self) -> None:
        self._by_type: dict[str, list[Handler]] = defaultdict(list)
        self._program_free: set[Handler] = set()

    def subscribe(
        self, *event_types: str, needs_program: bool = True
    ) -> Callable[[Handler], Handler]:
        """Subscribe a handler to event types. One that ``needs_program`` waits, while no
        program is loaded, until one is (core.events.failures); others run at once."""

        def register(handler: Handler) -> Handler:
            for event_type in event_types:
                if handler not in self._by_type[event_type]:
                    self._by_type[event_type].append(handler)
            if not needs_program:
                self._program_free.add(handler)
            return handler

        return register

    def needs_program(self, handler: Handler) -> bool:
        return handler not in self._program_free

    def unsubscribe(self, handler: Handler) -> None:
        for registered in self._by_type.values():
            if handler in registered:
                registered.remove(handler)

    def plan(self, events: Sequence[Event]) -> list[tuple[Handler, list[Event]]]:
        """Each handler with the events, in order, of the types it subscribed to."""
        by_handler: dict[Handler, list[Event]] = {}
        for event in events:
            for handler in self._by_type.get(event.type, ()):
                by_handler.setdefault(handler, []).append(event)
        return list(by_handler.items())

    def dispatch(self, ctx: HandlerContext, events: Sequence[Event]) -> None:
        """Call each handler once with its events; an error propagates (see
        ``core.events.failures.dispatch_isolated`` for the isolating dispatch intake uses)."""
        for handler, batch in self.plan(events):
            handler(ctx, batch)

    def named(self, name: str) -> Handler | None:
        """The subscribed handler called ``name`` (see :func:`handler_name`), if any."""
        for registered in self._by_type.values():
            for handler in registered:
                if handler_name(handler) == name:
                    return handler
        return None


def handler_name(handler: Handler) -> str:
    """A handler's stable name, as failures record it (``loyalty.handlers.qualify_referrals``)."""
    return f"{handler.__module__}.{getattr(handler, '__qualname__', repr(handler))}"


handlers = HandlerRegistry()
subscribe = handlers.subscribe

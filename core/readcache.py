"""Values read from the database, by key, dropped when PostgreSQL announces that their rows changed.

Migration 0013 puts triggers on the tables of ``WATCHED``: every statement that touches one sends
one notification on channel ``loyalty_changes`` naming the keys of the rows it touched
(``["member:m-1", "member:m-2"]``), or ``*`` for "anything may have changed". A ``ReadCache``
listens on its own connection, in a daemon thread, and drops those keys.

A caller takes a ticket *before* it begins the transaction that reads, and puts with it::

    ticket = cache.ticket()
    facts = fetch_facts(session, member_id)          # a transaction begun after the ticket
    cache.put(f"member:{member_id}", facts, ticket)  # refused if the key was dropped since

so a change that commits while the caller reads, and whose notification is processed before the
put, cannot leave the old value behind. Values are shared between threads: store frozen ones.

While the listening connection is down the cache is not live: ``get`` answers None and ``put``
stores nothing, so callers read the database; it empties itself when the connection is lost and
again once LISTEN is back. Notifications arrive after the commit, a few milliseconds late: a
caller that must read its own write first waits with ``barrier()``. Nothing here raises into
callers; outages are logged, one warning each.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

V = TypeVar("V")
EVERYTHING = "*"
CHANNEL = "loyalty_changes"
# How the cache's two connections show in pg_stat_activity.application_name.
LISTENER, SENDER = "loyalty-read-cache", "loyalty-read-cache-sender"
_POLL_SECONDS = 1.0  # how often the listener looks at the stop flag when nothing arrives
_FIRST_DELAY, _LONGEST_DELAY = 0.1, 2.0  # seconds between reconnection attempts
# A dead peer (no FIN: a network cut) is noticed after about 10 + 3 * 5 seconds.
_CONNECT = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
            "keepalives_count": 3, "connect_timeout": 5}  # fmt: skip


@dataclass(frozen=True)
class Watched:
    """A table whose rows announce ``prefix:value-of-column`` when a statement changes them."""

    table: str
    column: str
    prefix: str = "member"


# What migration 0013 installed; a later migration that changes the triggers changes this.
WATCHED: tuple[Watched, ...] = (
    Watched("members", "member_id"),
    Watched("orders", "member_id"),
    Watched("refunds", "member_id"),
    Watched("member_tiers", "member_id"),
    Watched("tier_history", "member_id"),
    Watched("referrals", "referrer_id"),
    Watched("coupon_codes", "member_id"),
    Watched("coupon_member_uses", "member_id"),
    Watched("points_lots", "member_id"),
    Watched("points_holds", "member_id"),
    Watched("points_ledger", "member_id"),
    Watched("coupon_counters", "coupon_id", "coupon"),
    Watched("api_keys", "key_id", "api_key"),
)


@dataclass(frozen=True)
class Change:
    """What one notification says: these keys changed, everything did, or a barrier passed."""

    keys: tuple[str, ...] = ()
    everything: bool = False
    barrier: str | None = None


def parse_change(payload: str) -> Change:
    """Read a payload; one that is not understood means everything changed (the safe side)."""
    if payload == EVERYTHING:
        return Change(everything=True)
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    if isinstance(document, list) and all(isinstance(key, str) for key in document):
        return Change(keys=tuple(document))
    if isinstance(document, dict) and isinstance(document.get("barrier"), str):
        return Change(barrier=document["barrier"])
    logger.warning("read cache: malformed notification %.200r, dropping everything", payload)
    return Change(everything=True)


class _Store(Generic[V]):
    """The entries and the bookkeeping of drops, behind one lock; no I/O."""

    def __init__(self, max_entries: int) -> None:
        self._lock = threading.Lock()
        self._max = max_entries
        self._entries: OrderedDict[str, V] = OrderedDict()
        # key → sequence of its last drop, oldest first; as long as the entries at most.
        self._dropped_at: OrderedDict[str, int] = OrderedDict()
        self._sequence = 0  # one more per notification processed
        self._floor = 0  # tickets below it are refused: raised by flushes and forgotten drops
        self.live = False
        self.counts = dict.fromkeys(
            ("hits", "misses", "stored", "refused", "dropped", "flushes", "evicted"), 0
        )

    def ticket(self) -> int:
        with self._lock:
            return self._sequence

    def get(self, key: str) -> V | None:
        with self._lock:
            value = self._entries.get(key) if self.live else None
            if value is None:
                self.counts["misses"] += 1
                return None
            self._entries.move_to_end(key)
            self.counts["hits"] += 1
            return value

    def get_many(self, keys: Collection[str]) -> dict[str, V]:
        with self._lock:
            found: dict[str, V] = {}
            if self.live:
                for key in keys:
                    value = self._entries.get(key)
                    if value is not None:
                        self._entries.move_to_end(key)
                        found[key] = value
            self.counts["hits"] += len(found)
            self.counts["misses"] += len(keys) - len(found)
            return found

    def put(self, key: str, value: V, ticket: int) -> bool:
        with self._lock:
            if not self.live or ticket < self._floor or self._dropped_at.get(key, -1) > ticket:
                self.counts["refused"] += 1
                return False
            self._entries[key] = value
            self._entries.move_to_end(key)
            self.counts["stored"] += 1
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
                self.counts["evicted"] += 1
            return True

    def drop(self, keys: tuple[str, ...]) -> None:
        with self._lock:
            self._sequence += 1
            for key in keys:
                if self._entries.pop(key, None) is not None:
                    self.counts["dropped"] += 1
                self._dropped_at[key] = self._sequence
                self._dropped_at.move_to_end(key)
            while len(self._dropped_at) > self._max:
                _key, sequence = self._dropped_at.popitem(last=False)
                self._floor = max(self._floor, sequence)

    def flush(self, *, live: bool) -> None:
        with self._lock:
            self._sequence += 1
            self._floor = self._sequence
            self._entries.clear()
            self._dropped_at.clear()
            self.live = live
            self.counts["flushes"] += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self.counts, "entries": len(self._entries)}


@dataclass
class _Barrier:
    passed: bool = False
    event: threading.Event = field(default_factory=threading.Event)


class ReadCache(Generic[V]):
    """Values read from the database, by key, dropped when PostgreSQL announces that their rows
    changed. One per process; ``start()`` it once, ``stop()`` it at shutdown."""

    def __init__(
        self, database_url: str, *, max_entries: int = 10_000, channel: str = CHANNEL
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = make_conninfo(url.render_as_string(hide_password=False), **_CONNECT)
        self._channel = channel
        self._store: _Store[V] = _Store(max_entries)
        self._barriers: dict[str, _Barrier] = {}
        self._barriers_lock = threading.Lock()
        self._sender: psycopg.Connection | None = None
        self._sender_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._in_outage = False

    @property
    def live(self) -> bool:
        """True only while LISTEN is established: then what the cache holds is current."""
        return self._store.live

    def ticket(self) -> int:
        """Take before reading the rows a ``put`` will store."""
        return self._store.ticket()

    def get(self, key: str) -> V | None:
        """The value stored under ``key``, or None (not stored, dropped, or not live)."""
        return self._store.get(key)

    def get_many(self, keys: Collection[str]) -> dict[str, V]:
        """The values stored under those of ``keys`` that are (one lock for them all)."""
        return self._store.get_many(keys)

    def put(self, key: str, value: V, ticket: int) -> bool:
        """Store ``value`` (not None) unless ``key`` may have changed since ``ticket``."""
        return self._store.put(key, value, ticket)

    def stats(self) -> dict[str, int]:
        """hits, misses, stored, refused, dropped, flushes, evicted, and entries held now."""
        return self._store.stats()

    def start(self) -> None:
        """Start listening in a daemon thread; a no-op while it is running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="read-cache", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection; the cache is then empty and not live."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        if self.live:
            self._notify({"barrier": "stop"})  # wakes the listener now rather than at its poll
        with self._sender_lock:
            self._close_sender()
        thread.join(timeout)

    def barrier(self, timeout: float = 5.0) -> bool:
        """Wait until every notification committed before this call has been applied.
        False when not live, when the marker cannot be sent, or after ``timeout`` seconds."""
        if not self.live:
            return False
        token, waiter = uuid.uuid4().hex, _Barrier()
        with self._barriers_lock:
            self._barriers[token] = waiter
        try:
            if self._notify({"barrier": token}):
                waiter.event.wait(timeout)
            return waiter.passed
        finally:
            with self._barriers_lock:
                self._barriers.pop(token, None)

    def __enter__(self) -> ReadCache[V]:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        delay = _FIRST_DELAY
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as exc:  # the thread must outlive any failure: it is the only one
                delay = min(delay * 2, _LONGEST_DELAY) if self._in_outage else _FIRST_DELAY
                self._went_down(exc)
                self._stopping.wait(delay)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True, application_name=LISTENER) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._store.flush(live=True)
            if self._in_outage:
                logger.info("read cache: listening on %s again", self._channel)
                self._in_outage = False
            try:
                while not self._stopping.is_set():
                    for notify in conn.notifies(timeout=_POLL_SECONDS):
                        self._apply(parse_change(notify.payload))
                        if self._stopping.is_set():
                            break
            finally:
                self._store.flush(live=False)
                self._release_barriers()

    def _went_down(self, exc: Exception) -> None:
        if self._in_outage:
            logger.debug("read cache: still not listening on %s (%s)", self._channel, exc)
            return
        logger.warning(
            "read cache: not listening on %s (%s); serving nothing from the cache"
            " until it reconnects",
            self._channel,
            exc,
        )
        self._in_outage = True

    def _apply(self, change: Change) -> None:
        if change.barrier is not None:
            with self._barriers_lock:
                waiter = self._barriers.pop(change.barrier, None)
            if waiter is not None:
                waiter.passed = True
                waiter.event.set()
        elif change.everything:
            self._store.flush(live=True)
        else:
            self._store.drop(change.keys)

    def _release_barriers(self) -> None:
        with self._barriers_lock:
            waiters, self._barriers = list(self._barriers.values()), {}
        for waiter in waiters:
            waiter.event.set()

    def _notify(self, marker: dict[str, str]) -> bool:
        """Send ``marker`` on the channel over the cache's sending connection, opened on first
        use and kept (a new connection per barrier cost 4 ms); once more on a fresh one if the
        kept one died since its last use."""
        payload, failure = json.dumps(marker), None
        with self._sender_lock:
            for _attempt in range(2):
                try:
                    if self._sender is None or self._sender.closed:
                        self._sender = psycopg.connect(
                            self._conninfo, autocommit=True, application_name=SENDER
                        )
                    self._sender.execute("SELECT pg_notify(%s, %s)", (self._channel, payload))
                    return True
                except psycopg.Error as exc:
                    failure = exc
                    self._close_sender()
        logger.warning("read cache: could not send a marker on %s (%s)", self._channel, failure)
        return False

    def _close_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()

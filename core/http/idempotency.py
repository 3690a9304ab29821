"""Idempotency keys of POST requests: the stored answer of each ``(API key, Idempotency-Key)``.

Every ``POST /v1/...`` accepts an ``Idempotency-Key`` header (1 to 255 printable ASCII
characters); nothing in an endpoint is needed for it. :class:`core.http.guard.ApiGuard` (the
middleware ``create_app`` installs) does this around the endpoint:

- the first request with a key claims it by inserting its row (the primary key decides, so of
  two racing requests exactly one runs) and runs; its answer is stored for
  ``LOYALTY_API_IDEMPOTENCY_TTL`` (24 h);
- the same key with the same method, path and body gets the stored answer again, with the
  header ``Idempotent-Replayed: true``;
- the same key with another body, method or path is a 422 ``idempotency_key_reused``;
- while the first request still runs, a second waits up to ``LOYALTY_API_IDEMPOTENCY_WAIT``
  for its answer, then gets 409 ``idempotency_in_progress`` (with ``Retry-After``).

Keys are scoped by the API key, so two clients never see each other's answers (requests without
an API key, such as signed webhooks, share the scope ``""``). Answers that say nothing about
the request itself are not kept, so a retry runs again: server errors (5xx) and 401, 403, 429.

This module is the store; the functions take the time (``now``) and an engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update

from core.db import insert_ignoring_conflicts
from core.http.tables import api_idempotency

# A request still "running" after this long is taken to have died with its process; the next
# request with its key runs again instead of waiting for an answer that never comes.
STALE_AFTER = timedelta(minutes=10)
NOT_KEPT = frozenset({401, 403, 429})
_KEY = ("key_id", "idempotency_key")


@dataclass(frozen=True)
class Fingerprint:
    """What makes two requests the same request."""

    method: str
    path: str
    body_sha256: str

    @classmethod
    def of(cls, method: str, path: str, body: bytes) -> Fingerprint:
        return cls(method.upper(), path, hashlib.sha256(body).hexdigest())


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Record:
    """The stored state of one idempotency key."""

    fingerprint: Fingerprint
    running: bool
    created_at: datetime
    response: StoredResponse | None


def kept(status: int) -> bool:
    """Whether an answer with this status is stored for replay."""
    return status < 500 and status not in NOT_KEPT


def claim(
    engine: Engine,
    *,
    key_id: str,
    key: str,
    fingerprint: Fingerprint,
    now: datetime,
    ttl: timedelta,
) -> Record | None:
    """Claim ``key`` for a request: ``None`` if this request now owns it (it runs), else the
    record of the request that does. An expired or abandoned record is taken over."""
    while True:  # ends: each pass inserts, takes over, or finds a live record
        if _insert_claim(engine, key_id, key, fingerprint, now):
            return None
        record = fetch(engine, key_id=key_id, key=key)
        if record is None:
            continue  # released between the insert and the read: claim it again
        if not _outlived(record, now=now, ttl=ttl):
            return record
        if _take_over(engine, key_id, key, record, fingerprint, now):
            return None


def fetch(engine: Engine, *, key_id: str, key: str) -> Record | None:
    with engine.connect() as conn:
        row = conn.execute(select(api_idempotency).where(*_where(key_id, key))).first()
    if row is None:
        return None
    response = None
    if row.status == "done":
        headers = [(name, value) for name, value in row.response_headers or []]
        response = StoredResponse(row.response_status, headers, bytes(row.response_body or b""))
    return Record(
        fingerprint=Fingerprint(row.method, row.path, row.body_sha256),
        running=row.status == "running",
        created_at=row.created_at,
        response=response,
    )


def complete(
    engine: Engine, *, key_id: str, key: str, response: StoredResponse, now: datetime
) -> None:
    """Store the answer of the request that owns ``key``."""
    with engine.begin() as conn:
        conn.execute(
            update(api_idempotency)
            .where(*_where(key_id, key))
            .values(
                status="done",
                response_status=response.status,
                response_headers=[list(pair) for pair in response.headers],
                response_body=response.body,
                completed_at=now,
            )
        )


def release(engine: Engine, *, key_id: str, key: str) -> None:
    """Forget a claim whose answer is not kept: the next request with the key runs."""
    with engine.begin() as conn:
        conn.execute(delete(api_idempotency).where(*_where(key_id, key)))


def purge_expired(engine: Engine, *, before: datetime) -> int:
    """Delete every record created before ``before`` (one statement over the index)."""
    with engine.begin() as conn:
        stmt = delete(api_idempotency).where(api_idempotency.c.created_at < before)
        return conn.execute(stmt).rowcount


def _insert_claim(
    engine: Engine, key_id: str, key: str, fingerprint: Fingerprint, now: datetime
) -> bool:
    values = _running(fingerprint, now) | {"key_id": key_id, "idempotency_key": key}
    with engine.begin() as conn:
        stmt = insert_ignoring_conflicts(conn, api_idempotency, _KEY).values(**values)
        return conn.execute(stmt.returning(api_idempotency.c.key_id)).first() is not None


def _outlived(record: Record, *, now: datetime, ttl: timedelta) -> bool:
    return record.created_at <= now - ttl or (
        record.running and record.created_at <= now - STALE_AFTER
    )


def _take_over(
    engine: Engine, key_id: str, key: str, old: Record, fingerprint: Fingerprint, now: datetime
) -> bool:
    """Replace an outlived record; true for exactly one of the requests racing to do it."""
    with engine.begin() as conn:
        stmt = (
            update(api_idempotency)
            .where(*_where(key_id, key), api_idempotency.c.created_at == old.created_at)
            .values(**_running(fingerprint, now))
        )
        return conn.execute(stmt).rowcount == 1


def _running(fingerprint: Fingerprint, now: datetime) -> dict[str, Any]:
    return {
        "method": fingerprint.method,
        "path": fingerprint.path,
        "body_sha256": fingerprint.body_sha256,
        "status": "running",
        "response_status": None,
        "response_headers": None,
        "response_body": None,
        "created_at": now,
        "completed_at": None,
    }


def _where(key_id: str, key: str) -> tuple[Any, Any]:
    return api_idempotency.c.key_id == key_id, api_idempotency.c.idempotency_key == key

"""Reading and writing this package's tables, and reading the members projection.

Fetch functions return plain values (:class:`~notifications.guardrails.Recipient`, row
mappings) for the pure guardrails; write functions take whole batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    RowMapping,
    Table,
    Text,
    TypeDecorator,
    and_,
    any_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from core.db import in_values, insert_ignoring_conflicts
from core.events.tables import members
from notifications.guardrails import Recipient
from notifications.tables import attempts, messages, suppressions, unsubscribes

MESSAGE_ID_PREFIX = "msg_"


def among(conn: Connection, column: ColumnElement[str], values: Collection[str]) -> Any:
    """``column IN values``. On PostgreSQL ``column = ANY('{…}'::type[])``, the array written
    into the statement: one constant instead of a placeholder per value (a 200-value IN list
    costs psycopg milliseconds to parse), and a constant PostgreSQL can hash (an array
    *parameter* is searched linearly for every row a scan meets)."""
    if conn.dialect.name == "postgresql":
        return column == any_(_pg_array(sorted(values), column.type, inline=True))
    return column.in_(sorted(values))


class _ArrayLiteral(TypeDecorator[str]):
    """A PostgreSQL array parameter given as its text literal, ``%(p)s::VARCHAR(40)[]``:
    psycopg's list adapter costs ~50 µs per element, building the literal well under one."""

    impl = Text
    cache_ok = True

    def __init__(self, item_type: Any) -> None:
        super().__init__()
        self.item_type = item_type

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(postgresql.ARRAY(self.item_type))

    def bind_processor(self, dialect: Dialect) -> None:
        return None  # the literal goes out as it is

    def literal_processor(self, dialect: Dialect) -> Any:
        quote = Text().literal_processor(dialect)
        array_type = dialect.type_compiler_instance.process(postgresql.ARRAY(self.item_type))
        assert quote is not None
        return lambda literal: f"{quote(literal)}::{array_type}"


def _pg_array(values: Sequence[Any], item_type: Any, *, inline: bool = False) -> Any:
    literal = "{" + ",".join(map(_array_element, values)) + "}"
    return bindparam(None, literal, type_=_ArrayLiteral(item_type), literal_execute=inline)


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat()  # UtcDateTime's rule: aware, stored in UTC
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def message_id_for(dedupe_key: str) -> str:
    """The message id a dedupe key always maps to (so a provider sees the same key too)."""
    return MESSAGE_ID_PREFIX + hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]


def fetch_recipients(conn: Connection, member_ids: Collection[str]) -> dict[str, Recipient]:
    """Members by id, with their consents and the channels they unsubscribed from."""
    if not member_ids:
        return {}
    ids = sorted(set(member_ids))
    stopped: dict[str, set[str]] = {}
    for member_id, channel in conn.execute(
        select(unsubscribes.c.member_id, unsubscribes.c.channel).where(
            among(conn, unsubscribes.c.member_id, ids)
        )
    ):
        stopped.setdefault(member_id, set()).add(channel)
    rows = conn.execute(
        select(*(members.c[name] for name in _RECIPIENT_COLUMNS)).where(
            among(conn, members.c.member_id, ids)
        )
    ).mappings()
    return {row["member_id"]: _recipient(row, stopped) for row in rows}


_RECIPIENT_COLUMNS = (
    "member_id", "first_name", "email", "phone", "push_token", "timezone", "locale",
    "consent_email", "consent_sms", "consent_push",
)  # fmt: skip


def _recipient(row: RowMapping, stopped: Mapping[str, set[str]]) -> Recipient:
    return Recipient(
        member_id=row["member_id"],
        first_name=row["first_name"],
        email=row["email"],
        phone=row["phone"],
        push_token=row["push_token"],
        timezone=row["timezone"],
        locale=row["locale"],
        consents={
            "email": row["consent_email"],
            "sms": row["consent_sms"],
            "push": row["consent_push"],
        },
        unsubscribed=frozenset(stopped.get(row["member_id"], ())),
    )


def fetch_suppressed(conn: Connection, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which ``(channel, address_hash)`` pairs are on the suppression list."""
    wanted = set(keys)
    if not wanted:
        return set()
    stmt = select(suppressions.c.channel, suppressions.c.address_hash).where(
        among(conn, suppressions.c.address_hash, {digest for _, digest in wanted})
    )
    return {(channel, digest) for channel, digest in conn.execute(stmt)} & wanted


def insert_messages(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert new messages; returns the ids inserted (the others' dedupe keys existed)."""
    if not rows:
        return set()
    if conn.dialect.name == "postgresql":
        result = bulk_insert(conn, messages, rows, ignore_conflicts_on=["dedupe_key"],
                             returning=messages.c.message_id)  # fmt: skip
        return set(result.scalars())
    stmt = insert_ignoring_conflicts(conn, messages, ["dedupe_key"]).returning(
        messages.c.message_id
    )
    return {message_id for (message_id,) in conn.execute(stmt, list(rows))}


def bulk_insert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    ignore_conflicts_on: Sequence[str] = (),
    returning: ColumnElement[Any] | None = None,
) -> CursorResult[Any]:
    """PostgreSQL: ``INSERT … SELECT FROM unnest(:column_arrays)``. A multi-row VALUES insert
    of 1,000 messages costs the driver ~0.2 s just to parse its 20,000 placeholders."""
    names = list(rows[0])
    source = _unnest(table, rows, names)
    stmt = postgresql.insert(table).from_select(names, select(*(source.c[n] for n in names)))
    if ignore_conflicts_on:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(ignore_conflicts_on))
    if returning is not None:
        return conn.execute(stmt.returning(returning))
    return conn.execute(stmt)


def fetch_messages(conn: Connection, message_ids: Collection[str]) -> dict[str, RowMapping]:
    if not message_ids:
        return {}
    rows = conn.execute(select(messages).where(messages.c.message_id.in_(sorted(message_ids))))
    return {row["message_id"]: row for row in rows.mappings()}


def update_messages(
    conn: Connection, changes: Sequence[dict[str, Any]], *, shared: Sequence[str] = ()
) -> None:
    """Apply per-message changes (each dict has ``message_id`` and the columns to set, the
    same columns in every dict). Columns named in ``shared`` hold one value for all, taken from
    the first change: written once into the statement instead of once per row."""
    if not changes:
        return
    first = changes[0]
    varying = [name for name in first if name != "message_id" and name not in shared]
    constants = {name: first[name] for name in shared}
    if conn.dialect.name == "postgresql":
        source = _unnest(messages, changes, ["message_id", *varying])
        stmt = (
            update(messages)
            .where(messages.c.message_id == source.c.message_id)
            .values({name: source.c[name] for name in varying} | constants)
        )
        conn.execute(stmt)
        return
    stmt = (
        update(messages)
        .where(messages.c.message_id == bindparam("m_id"))
        .values({name: bindparam(f"v_{name}") for name in varying} | constants)
    )
    rows = [{"m_id": c["message_id"], **{f"v_{n}": c[n] for n in varying}} for c in changes]
    conn.execute(stmt, rows)


def _unnest(table: Table, rows: Sequence[dict[str, Any]], names: Sequence[str]) -> Any:
    """PostgreSQL ``unnest(:array, …) AS (names…)``: a batch of rows as one parameter per
    column, so a statement over 200 rows or 2,000 stays short (parsed and planned once)."""
    arrays = [_pg_array([row[name] for row in rows], table.c[name].type) for name in names]
    return func.unnest(*arrays).table_valued(*names).render_derived()


def insert_attempts(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows and conn.dialect.name == "postgresql":
        bulk_insert(conn, attempts, rows)
    elif rows:
        conn.execute(attempts.insert(), list(rows))


def add_suppressions(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Suppress addresses (``channel``, ``address_hash``, ``to_masked``, ``reason``,
    ``message_id``, ``created_at``); an address already listed keeps its first reason."""
    if rows:
        stmt = insert_ignoring_conflicts(conn, suppressions, ["address_hash", "channel"])
        conn.execute(stmt, list(rows))


def add_unsubscribe(
    conn: Connection,
    *,
    member_id: str,
    channel: str,
    now: datetime,
    message_id: str | None,
    source: str,
) -> bool:
    """Record that the member stopped the channel; False if they already had."""
    stmt = insert_ignoring_conflicts(conn, unsubscribes, ["member_id", "channel"]).values(
        member_id=member_id,
        channel=channel,
        unsubscribed_at=now,
        message_id=message_id,
        source=source,
    )
    return conn.execute(stmt.returning(unsubscribes.c.member_id)).first() is not None


def fetch_unsubscribed_members(conn: Connection, member_ids: Sequence[str]) -> set[str]:
    """Which of these members have any unsubscribe on record."""
    query = select(unsubscribes.c.member_id).where(
        in_values(conn, unsubscribes.c.member_id, member_ids)
    )
    return set(conn.execute(query).scalars())


def remove_unsubscribes(
    conn: Connection, *, member_id: str, channels: Sequence[str], before: datetime
) -> None:
    """The member consented again, after unsubscribing: the newer choice wins."""
    conn.execute(
        unsubscribes.delete().where(
            and_(
                unsubscribes.c.member_id == member_id,
                unsubscribes.c.channel.in_(list(channels)),
                unsubscribes.c.unsubscribed_at < before,
            )
        )
    )

"""Database access: one SQLAlchemy engine per URL, shared column types, and the schema's metadata.

SQLite (WAL mode) is the embedded default; PostgreSQL through psycopg 3 is production. Tables
are SQLAlchemy Core ``Table`` objects on :data:`metadata`, each defined by the package that owns
them; Alembic migrations (``core/migrations``) create them on both databases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    Table,
    TypeDecorator,
    any_,
    bindparam,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.sql import operators
from sqlalchemy.sql.dml import Insert

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class DatabaseError(Exception):
    """Raised when the database cannot be reached or its URL is not one the engine supports."""


class UtcDateTime(TypeDecorator[datetime]):
    """A time-zone aware timestamp, stored in UTC on every database and read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored; add a zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


CENT = Decimal("0.01")
# NUMERIC(18, 2) holds amounts below 10^16; SQLite's integer cents hold the same range, so both
# databases accept and refuse the same amounts.
MONEY_LIMIT = Decimal(10) ** 16


class Money(TypeDecorator[Decimal]):
    """An exact amount of money, 18 digits with 2 after the point, read back as Decimal.

    PostgreSQL stores ``NUMERIC(18, 2)``. SQLite would keep a NUMERIC as a float (it stores
    ``99999999999999.99`` as ``…98``), so there the column is a BIGINT of cents: binding
    multiplies by 100, reading (a column, or a ``SUM``/``COALESCE``/``MAX`` of one, which
    keep its type) divides again. SQL on both databases therefore stays exact, and compares
    and sums money columns with each other and with bound amounts alike. Only SQL that mixes
    a money column with a literal that is not bound through this type (``total > 100`` written
    as text, ``total * 100``) would see the cents: use bound parameters.
    """

    impl = Numeric(18, 2, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, 2, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = _exact_amount(value)
        return int(amount.scaleb(2)) if dialect.name == "sqlite" else amount

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return None  # psycopg returns NUMERIC as an exact Decimal: no per-row call
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        cents = Decimal(value) if isinstance(value, int) else Decimal(str(value))
        return cents.scaleb(-2).quantize(CENT)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # A value compared with, added to or subtracted from money is an amount: it binds as
        # money (cents on SQLite). A factor or divisor is a plain number: ``total * 2`` is
        # still money, and scaling the cents scales the amount.
        if op in _SCALING:
            return Numeric(asdecimal=True) if isinstance(value, Decimal) else Integer()
        return self


_SCALING = frozenset({operators.mul, operators.truediv, operators.floordiv, operators.mod})


def _exact_amount(value: Any) -> Decimal:
    """``value`` rounded to the cent as NUMERIC(18, 2) rounds (half away from zero)."""
    if isinstance(value, float | bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"money must be a Decimal, not {type(value).__name__} {value!r}")
    try:
        amount = Decimal(value)
        if amount.is_finite() and abs(amount) < MONEY_LIMIT:
            amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or abs(amount) >= MONEY_LIMIT:
        raise ValueError(f"amount {value!r} cannot be stored: money columns hold less than 10^16")
    return amount


JsonDocument = JSON().with_variant(postgresql.JSONB(), "postgresql")
_PG = postgresql.dialect()


def normalise_url(url: str) -> str:
    """Pick the psycopg 3 driver for PostgreSQL URLs written without one."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(
            f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}; "
            "use sqlite:///path.db or postgresql://user@host/db"
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(url: str, *, migrate: bool = True) -> Engine:
    """The engine for ``url``, created once per process and migrated to the newest schema."""
    url = normalise_url(url)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            if migrate:
                from core.migrate import upgrade

                upgrade(engine)
            _engines[url] = engine
    return engine


def json_text(value: Any) -> str:
    """JSON for storage: decimals and times as strings, so nothing passes through float."""
    return orjson.dumps(value, default=_json_default).decode()


def _json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=json_text)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=5, max_overflow=10, json_serializer=json_text)
    _ping_when_idle(engine)
    return engine


# A pooled connection returned less than this ago is taken as alive: a busy pool (the HTTP
# API's) pings no more, an idle one still finds out that the server restarted.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, for connections idle over PING_AFTER_IDLE_SECONDS only
    (the ping is three round trips on psycopg: BEGIN, SELECT 1, ROLLBACK). A dead connection found
    so is replaced; one that dies in use is invalidated by SQLAlchemy and the error raised."""

    def returned(dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle = time.monotonic() - record.info.get("returned_at", time.monotonic())
        if idle < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping's transaction: a connection leaves idle
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise DisconnectionError(str(error)) from error
            raise

    event.listen(engine, "connect", returned)
    event.listen(engine, "checkin", returned)
    event.listen(engine, "checkout", checkout)


def dispose_engines() -> None:
    """Close every pooled connection (tests and forked worker processes call this)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One unit of work: commit on success, roll back on any error."""
    with engine.begin() as conn:
        yield conn


def insert_ignoring_conflicts(conn: Connection, table: Table, keys: Sequence[str]) -> Insert:
    """``INSERT … ON CONFLICT (keys) DO NOTHING`` for the connection's dialect."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return insert(table)


def insert_ignoring_any_conflict(conn: Connection, table: Table) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` on any unique key (a primary key or another unique
    index: the loser of any race inserts nothing)."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


def upsert(conn: Connection, table: Table, *, keys: Sequence[str], values: dict[str, Any]) -> None:
    """Insert a row, or update every non-key column of the row with the same keys."""
    dialect = conn.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).values(**values)
    changes = {name: stmt.excluded[name] for name in values if name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes))


def bulk_insert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict_keys: Sequence[str] | None = None,
    returning: str | tuple[str, ...] | None = None,
    update_columns: Sequence[str] = (),
) -> list[Any]:
    """Insert many rows in one statement, skipping conflicts on ``conflict_keys`` if given (or,
    with ``update_columns``, overwriting those columns of the existing row); returns the
    ``returning`` column of the rows written (a tuple of names: a tuple per row).

    PostgreSQL gets one ``INSERT … SELECT FROM unnest(arrays)``: a single short statement
    whatever the row count (a multi-row VALUES list of 1,000 rows costs more to build and parse
    than to insert). SQLite uses ``executemany``.
    """
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        stmt = _sqlite_insert(table, conflict_keys, update_columns)
        if returning is None:
            conn.execute(stmt, list(rows))
            return []
        if isinstance(returning, tuple):
            columns = [table.c[name] for name in returning]
            return [tuple(row) for row in conn.execute(stmt.returning(*columns), list(rows))]
        return list(conn.execute(stmt.returning(table.c[returning]), list(rows)).scalars())
    names = ", ".join(returning) if isinstance(returning, tuple) else returning
    statement, params = _unnest_insert(table, rows, conflict_keys, names, update_columns)
    result = conn.exec_driver_sql(statement, params)
    if isinstance(returning, tuple):
        return [tuple(row) for row in result]
    return [row[0] for row in result] if returning else []


def _unnest_insert(
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_keys: Sequence[str] | None,
    returning: str | None,
    update_columns: Sequence[str],
) -> tuple[str, tuple[list[Any], ...]]:
    names = list(rows[0])
    arrays = tuple(_pg_array(table.c[name], [row[name] for row in rows]) for name in names)
    # %b: binary arrays; the text format escapes every element with a regex (slow for JSON).
    casts = ", ".join(f"%b::{_pg_array_type(table.c[name])}" for name in names)
    selected = ", ".join(
        f"u.c{i}::jsonb" if _is_json(table.c[name]) else f"u.c{i}" for i, name in enumerate(names)
    )
    aliases = ", ".join(f"c{i}" for i in range(len(names)))
    statement = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT {selected} FROM unnest({casts}) AS u({aliases})"
    )
    if conflict_keys:
        statement += f" ON CONFLICT ({', '.join(conflict_keys)}) " + _on_conflict(update_columns)
    if returning:
        statement += f" RETURNING {returning}"
    return statement, arrays


def _on_conflict(update_columns: Sequence[str]) -> str:
    if not update_columns:
        return "DO NOTHING"
    return "DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in update_columns)


def _sqlite_insert(
    table: Table, conflict_keys: Sequence[str] | None, update_columns: Sequence[str]
) -> Insert:
    if not conflict_keys:
        return insert(table)
    stmt = sqlite.insert(table)
    if not update_columns:
        return stmt.on_conflict_do_nothing(index_elements=list(conflict_keys))
    changes = {name: stmt.excluded[name] for name in update_columns}
    return stmt.on_conflict_do_update(index_elements=list(conflict_keys), set_=changes)


def _is_json(column: Any) -> bool:
    return isinstance(column.type, JSON) or getattr(column.type, "impl", None).__class__ is JSON


def _pg_array_type(column: Any) -> str:
    if _is_json(column):
        return "text[]"
    compiled = column.type.compile(dialect=postgresql.dialect())
    return f"{compiled}[]"


def _pg_array(column: Any, values: list[Any]) -> list[Any]:
    if _is_json(column):
        return [None if v is None else json_text(v) for v in values]
    if isinstance(column.type, UtcDateTime):
        bind = column.type.process_bind_param
        return [bind(v, _PG) for v in values]
    return values


def in_values(conn: Connection, column: Any, values: Sequence[Any]) -> Any:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``, one parameter however
    many values (an expanding IN of 1,000 ids costs more to compile than to run)."""
    if conn.dialect.name != "postgresql":
        return column.in_(list(values))
    array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type), unique=True)
    return column == any_(array)

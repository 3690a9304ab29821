"""API keys and scopes: who may call what.

A key is ``le_<key id>_<secret>``; only the SHA-256 of the secret is stored, and it is compared
in constant time. Scopes: ``events``, ``checkout``, ``admin`` (admin may do everything). A key is
sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Endpoints take ``principal: Principal = Depends(require_scope("checkout"))``: a missing, unknown
or revoked key is 401 (``unauthenticated``, with ``WWW-Authenticate``), a key without the scope
403 (``forbidden``).

Exceptions::

    ApiKeyError            raised for bad input to the key services
    ├── UnknownScope       a scope that is not one of SCOPES
    ├── InvalidKeyName     an empty or overlong key name
    ├── KeyNotFound        no key by that id
    └── InvalidKey         a presented key that is missing, unknown or revoked
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, RowMapping, select
from starlette.concurrency import run_in_threadpool

from core.clock import get_clock
from core.http.problems import Problem
from core.http.tables import api_keys
from core.readcache import ReadCache

if TYPE_CHECKING:
    from core.runtime import Runtime

SCOPES = ("events", "checkout", "admin")
ADMIN = "admin"
KEY_PREFIX = "le"
MAX_NAME = 200
# last_used_at is written at most this often per key: a write on every request would cost more
# than the request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_REALM = 'Bearer realm="loyalty-engine"'


class ApiKeyError(Exception):
    """Raised for bad input to the key services (the base of this module's errors)."""


class UnknownScope(ApiKeyError):
    """Raised when a scope is not one of :data:`SCOPES`."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"unknown scope {scope!r}; use one of: {', '.join(SCOPES)}")


class InvalidKeyName(ApiKeyError):
    """Raised when a key's name is empty or longer than :data:`MAX_NAME` characters."""


class KeyNotFound(ApiKeyError):
    """Raised when no key has the given id."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key by the id of {key_id!r}; loyalty-engine keys list shows them")


class InvalidKey(ApiKeyError):
    """Raised when a presented key is missing, unknown or revoked."""


@dataclass(frozen=True)
class Principal:
    """The caller a request's key names."""

    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes


@dataclass(frozen=True)
class ApiKey:
    """A stored key as ``keys list`` shows it (never its secret)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def checked_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """The scopes, each known, without repeats, in :data:`SCOPES` order; at least one."""
    for scope in scopes:
        if scope not in SCOPES:
            raise UnknownScope(scope)
    if not scopes:
        raise ApiKeyError(f"a key needs at least one scope; use one of: {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in scopes)


def create_key(
    engine: Engine, name: str, scopes: Sequence[str], *, now: datetime | None = None
) -> tuple[str, str]:
    """Store a new key; returns ``(key_id, plaintext key)``; the plaintext is shown once."""
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidKeyName(f"a key's name must be 1 to {MAX_NAME} characters, got {len(name)}")
    allowed = checked_scopes(scopes)
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                key_id=key_id,
                name=name,
                secret_sha256=_digest(secret),
                scopes=list(allowed),
                created_at=now or get_clock().now(),
            )
        )
    return key_id, f"{KEY_PREFIX}_{key_id}_{secret}"


def list_keys(engine: Engine) -> list[ApiKey]:
    """Every key, the oldest first, revoked ones included."""
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id))
        return [_api_key(row._mapping) for row in rows]


def revoke_key(engine: Engine, key_id: str, *, now: datetime | None = None) -> ApiKey:
    """Revoke a key from now on (a key revoked before keeps its first revocation time)."""
    with engine.begin() as conn:
        conn.execute(
            api_keys.update()
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now or get_clock().now())
        )
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None:
        raise KeyNotFound(key_id)
    return _api_key(row._mapping)


def authenticate(
    engine: Engine, credential: str | None, *, now: datetime, cache: ReadCache[Any] | None = None
) -> Principal:
    """The principal of a presented key; :class:`InvalidKey` if it is missing, unknown or
    revoked. Notes when the key was last used (at most once a minute). ``cache`` keeps the
    key's row until PostgreSQL announces that it changed (a revocation, say)."""
    key_id, secret = _parts(credential)
    stored = cache.get(_cache_key(key_id)) if cache is not None else None
    if not isinstance(stored, StoredKey):
        stored = _fetch_key(engine, key_id, cache)
    principal = stored_principal(stored, secret)
    if stored is not None and stored.touch_due(now):
        with engine.begin() as conn:
            conn.execute(
                api_keys.update().where(api_keys.c.key_id == key_id), {"last_used_at": now}
            )
        if cache is not None and cache.barrier():  # the note's own announcement has passed
            _fetch_key(engine, key_id, cache)
    return principal


def _fetch_key(engine: Engine, key_id: str, cache: ReadCache[Any] | None) -> StoredKey | None:
    """The key's row (None: no such key), kept in ``cache`` when given."""
    ticket = cache.ticket() if cache is not None else 0
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    stored = StoredKey.of(row._mapping) if row is not None else None
    if cache is not None and stored is not None:
        cache.put(_cache_key(key_id), stored, ticket)
    return stored


def authenticate_cached(
    cache: ReadCache[Any], credential: str | None, *, now: datetime
) -> Principal | None:
    """:func:`authenticate` from the cache alone, with no I/O (the guard calls it on the event
    loop); None when the database is needed: the key is not kept, or its use is due a note."""
    key_id, secret = _parts(credential)
    stored = cache.get(_cache_key(key_id))
    if not isinstance(stored, StoredKey) or stored.touch_due(now):
        return None
    return stored_principal(stored, secret)


@dataclass(frozen=True)
class StoredKey:
    """A key's row as stored (its secret only as the SHA-256)."""

    key_id: str
    name: str
    secret_sha256: str
    scopes: frozenset[str]
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: RowMapping) -> StoredKey:
        return cls(
            key_id=row["key_id"],
            name=row["name"],
            secret_sha256=row["secret_sha256"],
            scopes=frozenset(row["scopes"]),
            revoked_at=row["revoked_at"],
            last_used_at=row["last_used_at"],
        )

    def touch_due(self, now: datetime) -> bool:
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION


def stored_principal(stored: StoredKey | None, secret: str) -> Principal:
    """The principal of a presented secret for the stored key; pure (InvalidKey if it does not
    match, or the key is unknown or revoked)."""
    if stored is None or not _matches(secret, stored.secret_sha256):
        raise InvalidKey("the API key is not known; create one with loyalty-engine keys create")
    if stored.revoked_at is not None:
        raise InvalidKey(
            f"the API key {stored.key_id} was revoked at {stored.revoked_at.isoformat()}"
        )
    return Principal(key_id=stored.key_id, name=stored.name, scopes=stored.scopes)


def _parts(credential: str | None) -> tuple[str, str]:
    """A presented key's id and secret (InvalidKey if it is missing or not a key's form)."""
    if not credential:
        raise InvalidKey("no API key: send Authorization: Bearer <key> or X-API-Key: <key>")
    prefix, _, rest = credential.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX:
        raise InvalidKey("the API key is not known; create one with loyalty-engine keys create")
    return key_id, secret


def _cache_key(key_id: str) -> str:
    """The key a change to the key's row drops (the triggers' ``api_key:<id>``)."""
    return f"api_key:{key_id}"


def credential_of(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: ``Authorization: Bearer <key>``, else ``X-API-Key``."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("x-api-key", "").strip() or None


def principal_of(request: Request) -> Principal:
    """The request's principal, found once per request (:class:`core.http.guard.ApiGuard`
    looks keys up before the endpoint runs); a 401 problem if its key is missing, unknown or
    revoked."""
    state = request.scope.setdefault("state", {})
    found = state.get("principal")
    if isinstance(found, Principal):
        return found
    presented = credential_of(request.headers) is not None
    if "auth_error" in state:
        raise unauthenticated(state["auth_error"], presented=presented)
    runtime: Runtime = request.app.state.runtime
    try:
        principal = authenticate(runtime.engine, credential_of(request.headers), now=runtime.now())
    except InvalidKey as exc:
        raise unauthenticated(str(exc), presented=presented) from None
    state["principal"] = principal
    return principal


def unauthenticated(detail: str, *, presented: bool) -> Problem:
    challenge = f'{_REALM}, error="invalid_token"' if presented else _REALM
    return Problem(
        401, "unauthenticated", "Unauthenticated", detail, headers={"WWW-Authenticate": challenge}
    )


# Declared so that /openapi.json lists both ways of sending a key; neither refuses by itself.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <key>")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The key.")


def require_scope(scope: str) -> Callable[..., Any]:
    """A FastAPI dependency: the request's :class:`Principal`, if its key has ``scope``."""
    return require_any_scope(scope)


def require_any_scope(*scopes: str) -> Callable[..., Any]:
    """Like :func:`require_scope`, for an endpoint that any one of ``scopes`` may call."""
    for scope in scopes:
        if scope not in SCOPES:
            raise UnknownScope(scope)

    async def dependency(
        request: Request,
        _bearer_key: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        _header_key: Annotated[str | None, Depends(_api_key_header)],
    ) -> Principal:
        # Async, so no thread hop: the guard has found the principal before the endpoint runs;
        # only a request it did not look at needs the database, in a thread.
        principal = request.scope.get("state", {}).get("principal")
        if not isinstance(principal, Principal):
            principal = await run_in_threadpool(principal_of, request)
        if not any(principal.allows(scope) for scope in scopes):
            have, need = ", ".join(sorted(principal.scopes)), " or ".join(scopes)
            detail = f"the API key {principal.key_id} has scopes {have}; this needs {need}"
            raise Problem(403, "forbidden", "Forbidden", detail)
        return principal

    dependency.__name__ = "require_" + "_or_".join(scopes)
    return dependency


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _matches(secret: str, stored: str) -> bool:
    return hmac.compare_digest(_digest(secret), stored)


def _api_key(row: RowMapping) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        scopes=tuple(row["scopes"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )

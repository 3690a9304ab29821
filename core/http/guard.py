"""The middleware around every ``/v1`` request: who calls, how often, and idempotent POSTs.

In order, for each request under ``/v1/``:

1. the API key it presents is looked up once (endpoints' ``require_scope`` reuse the answer,
   see :func:`core.http.auth.principal_of`);
2. a request with a valid key counts against that key's rate limit (``core.http.limits``); over
   it, the answer is 429 ``rate_limited`` with ``Retry-After``;
3. a body larger than ``LOYALTY_API_MAX_BODY_BYTES`` is a 413 ``body_too_large``;
4. a POST with an ``Idempotency-Key`` runs at most once per key (``core.http.idempotency``).

Endpoints need nothing for any of this, and the schema declares it for each of them
(:func:`core.http.openapi.document_guard`). It is a pure ASGI middleware (not
``BaseHTTPMiddleware``) so bodies and answers pass through it without a copy when no idempotency
key is sent.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from core.http import idempotency
from core.http.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    header_pairs,
    read_body,
    replay,
    replayed_body,
)
from core.http.auth import (
    InvalidKey,
    Principal,
    authenticate,
    authenticate_cached,
    credential_of,
)
from core.http.idempotency import Fingerprint, Record, StoredResponse
from core.http.limits import RateLimiter, build_rate_limiter
from core.http.problems import Problem, problem_response
from core.readcache import ReadCache
from core.runtime import Runtime

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_POLL_SECONDS = 0.05
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_READS_ONLY = "reads_only"
_BARRIER_SECONDS = 1.0
_PURGE_EVERY_SECONDS = 3_600.0


class ApiGuard:
    """Authentication lookup, rate limit, body limit and idempotency for ``/v1``."""

    def __init__(
        self, app: ASGIApp, runtime: Runtime, read_cache: ReadCache[Any] | None = None
    ) -> None:
        self.app, self.runtime, self.read_cache = app, runtime, read_cache
        self.settings = runtime.settings
        self.limiter: RateLimiter = build_rate_limiter(runtime.settings)
        self._purged_at: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        principal = await self._principal(scope, headers)
        if principal is not None:
            refusal = await self._rate_limited(principal)
            if refusal is not None:
                await problem_response(refusal)(scope, receive, send)
                return
        too_large = self._too_large(headers)
        if too_large is not None:
            await problem_response(too_large)(scope, receive, send)
            return
        if self.read_cache is not None and scope["method"] in _WRITES:
            send = self._once_applied(scope, send, self.read_cache)
        key = headers.get("idempotency-key")
        presented = credential_of(headers) is not None
        if scope["method"] == "POST" and key is not None and (principal or not presented):
            owner = principal.key_id if principal else ""
            await self._idempotent(scope, receive, send, owner=owner, key=key)
            return
        await self.app(scope, self._bounded(receive), send)

    @staticmethod
    def _once_applied(scope: Scope, send: Send, cache: ReadCache[Any]) -> Send:
        """``send``, holding a successful write's answer until this worker's read cache has
        applied every change committed before it: the caller's next read sees its write. An
        endpoint that only reads marks itself (:func:`reads_only`) and is not held."""

        async def held(message: Message) -> None:
            if (
                message["type"] == "http.response.start"
                and message.get("status", 500) < 400
                and not scope.get("state", {}).get(_READS_ONLY)
            ):
                await run_in_threadpool(cache.barrier, _BARRIER_SECONDS)
            await send(message)

        return held

    async def _principal(self, scope: Scope, headers: Headers) -> Principal | None:
        credential = credential_of(headers)
        if credential is None:
            return None
        state = scope.setdefault("state", {})
        cache, now = self.read_cache, self.runtime.now()
        try:
            principal = authenticate_cached(cache, credential, now=now) if cache else None
            if principal is None:  # not kept, or its use is due a note: the database
                principal = await run_in_threadpool(
                    authenticate, self.runtime.engine, credential, now=now, cache=cache
                )
        except InvalidKey as exc:
            state["auth_error"] = str(exc)
            return None
        state["principal"] = principal
        return principal

    async def _rate_limited(self, principal: Principal) -> Problem | None:
        verdict = await self.limiter.hit_async(principal.key_id)
        if verdict.allowed:
            return None
        limit = self.settings.api_rate_limit
        return Problem(
            429,
            "rate_limited",
            "Too many requests",
            f"the API key {principal.key_id} may send {limit} requests a minute; "
            f"try again in {verdict.retry_after} s",
            headers={"Retry-After": str(verdict.retry_after)},
        )

    def _too_large(self, headers: Headers) -> Problem | None:
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.settings.api_max_body_bytes:
            return body_too_large(self.settings.api_max_body_bytes)
        return None

    def _bounded(self, receive: Receive) -> Receive:
        """``receive``, refusing a body (sent without a length) that grows over the limit."""
        limit, seen = self.settings.api_max_body_bytes, 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
            return message

        return bounded

    async def _idempotent(
        self, scope: Scope, receive: Receive, send: Send, *, owner: str, key: str
    ) -> None:
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            await problem_response(invalid_key(key))(scope, receive, send)
            return
        try:
            body = await read_body(self._bounded(receive))
        except ClientDisconnect:
            return  # nobody to answer, and nothing was claimed
        except BodyTooLarge:
            await problem_response(body_too_large(self.settings.api_max_body_bytes))(
                scope, receive, send
            )
            return
        fingerprint = Fingerprint.of(scope["method"], _target(scope), body)
        await self._purge_now_and_then()
        answer = await self._claim_or_wait(owner, key, fingerprint)
        if answer is None:
            await self._run_once(scope, receive, send, owner=owner, key=key, body=body)
        else:
            await answer(scope, receive, send)

    async def _claim_or_wait(self, owner: str, key: str, fingerprint: Fingerprint) -> Any:
        """``None`` when this request owns the key, else the answer to send instead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.api_idempotency_wait.total_seconds()
        while True:
            record = await run_in_threadpool(
                idempotency.claim,
                self.runtime.engine,
                key_id=owner,
                key=key,
                fingerprint=fingerprint,
                now=self.runtime.now(),
                ttl=self.settings.api_idempotency_ttl,
            )
            if record is None:
                return None
            if record.fingerprint != fingerprint:
                return problem_response(reused(key, record))
            if record.response is not None:
                return replay(record.response)
            if loop.time() >= deadline:
                return problem_response(in_progress(key))
            await asyncio.sleep(_POLL_SECONDS)

    async def _run_once(
        self, scope: Scope, receive: Receive, send: Send, *, owner: str, key: str, body: bytes
    ) -> None:
        started: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        engine = self.runtime.engine
        try:
            await self.app(scope, replayed_body(body, receive), capture)
        except BaseException:
            await run_in_threadpool(idempotency.release, engine, key_id=owner, key=key)
            raise
        status = int(started.get("status", 500))
        if not idempotency.kept(status):
            await run_in_threadpool(idempotency.release, engine, key_id=owner, key=key)
            return
        response = StoredResponse(status, header_pairs(started), b"".join(chunks))
        await run_in_threadpool(
            idempotency.complete,
            engine,
            key_id=owner,
            key=key,
            response=response,
            now=self.runtime.now(),
        )

    async def _purge_now_and_then(self) -> None:
        """Drop expired records at most once an hour per process (one indexed DELETE)."""
        clock = asyncio.get_running_loop().time()
        if self._purged_at is not None and clock - self._purged_at < _PURGE_EVERY_SECONDS:
            return
        self._purged_at = clock
        before: datetime = self.runtime.now() - self.settings.api_idempotency_ttl
        await run_in_threadpool(idempotency.purge_expired, self.runtime.engine, before=before)


def reads_only(request: Request) -> None:
    """Mark a POST that changes nothing (a checkout validation): its answer is not held until
    the read cache has caught up (see :meth:`ApiGuard._once_applied`)."""
    request.scope.setdefault("state", {})[_READS_ONLY] = True


def _target(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return scope["path"] + (f"?{query}" if query else "")


class BodyTooLarge(HTTPException):
    """Raised when a body sent without a length grows over the limit while it is read (an
    HTTP error, so FastAPI's body parsing lets it through to the problem handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body too large: over {limit:,} bytes")


def body_too_large(limit: int) -> Problem:
    return Problem(
        413,
        "body_too_large",
        "Request body too large",
        f"the body is over {limit:,} bytes (LOYALTY_API_MAX_BODY_BYTES); "
        "send it in smaller requests",
    )


def invalid_key(key: str) -> Problem:
    return Problem(
        400,
        "invalid_idempotency_key",
        "Invalid Idempotency-Key",
        f"Idempotency-Key {key[:40]!r} must be 1 to 255 printable ASCII characters, e.g. a UUID",
        errors=[{"field": "Idempotency-Key", "message": "1 to 255 printable ASCII characters"}],
    )


def reused(key: str, record: Record) -> Problem:
    first = record.fingerprint
    return Problem(
        422,
        "idempotency_key_reused",
        "Idempotency-Key reused",
        f"Idempotency-Key {key!r} was first used for another request ({first.method} "
        f"{first.path}, another body or target); send a new key for a new request",
    )


def in_progress(key: str) -> Problem:
    return Problem(
        409,
        "idempotency_in_progress",
        "Request in progress",
        f"a request with Idempotency-Key {key!r} is still running; retry to get its answer",
        headers={"Retry-After": "1"},
    )

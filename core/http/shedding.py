"""Load shedding: each serve worker works on at most ``LOYALTY_API_MAX_IN_FLIGHT`` ``/v1``
requests at once, and answers the next ones ``503 overloaded`` with ``Retry-After: 1`` at once.

Without it, a worker over its capacity queues every request it is sent: latency grows without
bound, requests are still worked on after their clients gave up, and the worker ends up doing
all of its work for nobody. With it, what the worker accepts is answered in bounded time and
the rest is refused before anything is read or looked up, which a client's retry (or a load
balancer's next upstream) handles. ``/livez``, ``/readyz`` and ``/metrics`` are never shed.
"""

from __future__ import annotations

from core.http.asgi import ASGIApp, Receive, Scope, Send
from core.http.problems import Problem, problem_response

RETRY_AFTER_SECONDS = 1


def overloaded(limit: int) -> Problem:
    return Problem(
        503,
        "overloaded",
        "The server is busy",
        f"this worker is already answering {limit} requests (LOYALTY_API_MAX_IN_FLIGHT); "
        f"try again in {RETRY_AFTER_SECONDS} s",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class LoadShedder:
    """Counts the ``/v1`` requests in flight in this process (one event loop: a plain int)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.limit or scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await problem_response(overloaded(self.limit))(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

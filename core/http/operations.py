"""``/livez`` and ``/readyz``; ``/metrics`` (Prometheus) is beside them, in
:mod:`core.http.metrics`.

``/readyz`` checks what a request needs: the database answers, its schema is at the newest
revision of every branch, Redis answers (when configured) and the program loads. Each check
is reported; any failure makes it a 503 problem (``not_ready``) listing the failing checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy import text

from core.http.deps import runtime_of
from core.http.problems import Problem
from core.runtime import Runtime

router = APIRouter(tags=["operations"])
Check = Callable[[Runtime], str | None]  # None when fine, else what is wrong


@router.get("/livez")
def livez() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


class NotReady(Problem):
    """A 503 problem carrying every check (a ``checks`` member)."""

    def __init__(self, checks: dict[str, dict[str, Any]]) -> None:
        failing = [name for name, check in checks.items() if not check["ok"]]
        detail = "; ".join(f"{name}: {checks[name]['error']}" for name in failing)
        super().__init__(503, "not_ready", "Not ready", detail)
        self.checks = checks

    def body(self) -> dict[str, Any]:
        return {**super().body(), "checks": self.checks}


@router.get(
    "/readyz",
    responses={503: {"description": "Not ready: the problem lists each failing check."}},
)
def readyz(runtime: Annotated[Runtime, Depends(runtime_of)]) -> dict[str, Any]:
    """Database and Redis reachable, schema at head, program loaded."""
    checks: dict[str, dict[str, Any]] = {}
    for name, check in _checks(runtime).items():
        error = _run(check, runtime)
        checks[name] = {"ok": True} if error is None else {"ok": False, "error": error}
    if not all(check["ok"] for check in checks.values()):
        raise NotReady(checks)
    return {"status": "ok", "checks": checks}


def _checks(runtime: Runtime) -> dict[str, Check]:
    checks: dict[str, Check] = {"database": check_database, "schema": check_schema}
    if runtime.settings.redis_url:
        checks["redis"] = check_redis
    checks["program"] = check_program
    return checks


def _run(check: Check, runtime: Runtime) -> str | None:
    try:
        return check(runtime)
    except Exception as exc:  # a check that cannot run has failed: say why
        return f"{type(exc).__name__}: {_first_line(exc)}"


def check_database(runtime: Runtime) -> str | None:
    with runtime.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return None


def check_schema(runtime: Runtime) -> str | None:
    from core.migrate import current_revisions, head_revisions

    with runtime.engine.connect() as conn:
        missing = head_revisions() - current_revisions(conn)
    if missing:
        return f"not at revisions {', '.join(sorted(missing))}; run loyalty-engine db upgrade"
    return None


def check_redis(runtime: Runtime) -> str | None:
    import redis

    assert runtime.settings.redis_url is not None
    client = redis.Redis.from_url(runtime.settings.redis_url, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return None


def check_program(runtime: Runtime) -> str | None:
    if not runtime.program_path.is_dir():
        return f"{runtime.program_path} is not a program directory; set LOYALTY_PROGRAM_DIR"
    runtime.program  # noqa: B018  loads and checks it (raises if broken)
    return None


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else "failed"

"""``POST /v1/events`` and ``GET /v1/members/{id}``: the intake and the member view of the CLI.

Events come as a JSON array or as NDJSON (``Content-Type: application/x-ndjson``), at most
:data:`MAX_EVENTS` a request, and go through ``core.events.intake`` exactly as ``events ingest``
sends them: an element or line that is not a valid event is rejected with its reason (and kept
in the dead-letter store), the rest are accepted or counted as duplicates. The answer is the
same report, each rejection naming its ``index`` in the array (0-based) or its ``line`` in the
NDJSON (1-based).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from core.events.intake import IngestReport, Intake, ingest_lines
from core.http.auth import Principal, require_any_scope, require_scope
from core.http.deps import runtime_of
from core.http.problem_docs import problem_responses
from core.http.problems import Problem
from core.http.programs import program_of
from core.http.responses import ExactJSONResponse
from core.members import MemberNotFound, fetch_member_view
from core.metrics import count_ingested
from core.privacy import mask_text
from core.runtime import Runtime

log = logging.getLogger(__name__)
MAX_EVENTS = 1_000
NDJSON = "application/x-ndjson"
router = APIRouter()
Served = Annotated[Runtime, Depends(runtime_of)]
_AUTH = (401, 403, 429)

_EVENTS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "array", "maxItems": MAX_EVENTS, "items": {"type": "object"}},
            "example": [
                {
                    "id": "evt-0001",
                    "type": "order.paid",
                    "occurred_at": "2026-11-05T21:40:00+08:00",
                    "member_id": "m-alice",
                    "data": {"order_id": "o-a4", "total": "828.00"},
                }
            ],
        },
        NDJSON: {"schema": {"type": "string", "description": "One event object per line."}},
    },
}


@router.post(
    "/events",
    tags=["events"],
    summary="Ingest up to 1,000 events (a JSON array or NDJSON)",
    openapi_extra={"requestBody": _EVENTS_BODY},
    responses={
        200: {"description": "What happened to each event: accepted, duplicate or rejected."},
        **problem_responses(
            *_AUTH,
            400,
            413,
            422,
            503,
            d400="The body is not JSON (the problem names the line and column).",
            d422="The body is not a JSON array of events.",
            d413=f"More than {MAX_EVENTS} events, or the body is over the size limit.",
        ),
    },
)
async def post_events(
    request: Request,
    runtime: Served,
    _: Annotated[Principal, Depends(require_scope("events"))],
) -> ExactJSONResponse:
    """Store, project and handle the events as ``events ingest`` does; answers counts and every
    rejection with its reason."""
    body = await request.body()
    ndjson = request.headers.get("content-type", "").split(";")[0].strip().lower() == NDJSON
    lines = ndjson_lines(body) if ndjson else array_elements(body)
    count = sum(1 for line in lines if line.strip())
    if count > MAX_EVENTS:
        raise too_many(count)
    program = program_of(runtime)
    report = await run_in_threadpool(ingest_now, runtime, lines, program)
    return ExactJSONResponse(report_body(report, ndjson=ndjson))


def ingest_now(runtime: Runtime, lines: list[bytes], program: Any) -> IngestReport:
    """Ingest at the engine clock; what the handlers enqueue goes to the broker (embedded: run
    here before the answer, as ``events ingest`` does)."""
    from core.broker import drain

    intake = Intake.for_runtime(runtime, source="api", program=program)
    report = ingest_lines(lines, intake)
    count_ingested("api", report)
    if runtime.settings.embedded:
        try:
            drain()
        except Exception:  # the events are stored: the answer says so; the log says the rest
            log.exception("work enqueued by ingested events failed in the in-process worker")
    return report


def ndjson_lines(body: bytes) -> list[bytes]:
    """The lines of an NDJSON body; blank lines are skipped (and not counted), as in a file."""
    return body.split(b"\n") if body.strip() else []


def array_elements(body: bytes) -> list[bytes]:
    """Each element of a JSON array, as the exact text sent (numbers keep every digit)."""
    text = _text(body)
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if not text.startswith("[", position):
        raise not_an_array(text, position)
    position = _skip_space(text, position + 1)
    elements: list[bytes] = []
    if text.startswith("]", position):
        return _only_whitespace_after(text, position + 1, elements)
    while True:
        try:
            _, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise invalid_json(exc.msg, exc.lineno, exc.colno) from exc
        except RecursionError as exc:
            raise invalid_json("nested too deeply", *_line_col(text, position)) from exc
        elements.append(text[position:end].encode())
        if len(elements) > MAX_EVENTS:
            raise too_many(f"more than {MAX_EVENTS}")
        position = _skip_space(text, end)
        if text.startswith("]", position):
            return _only_whitespace_after(text, position + 1, elements)
        if not text.startswith(",", position):
            raise invalid_json("expected ',' or ']' after an event", *_line_col(text, position))
        position = _skip_space(text, position + 1)


def report_body(report: IngestReport, *, ndjson: bool) -> dict[str, Any]:
    where = "line" if ndjson else "index"
    rejections = [
        {
            where: (r.line if ndjson else r.line - 1) if r.line is not None else None,
            "event_id": r.event_id,
            "reason": mask_text(r.reason),
        }
        for r in report.rejections
    ]
    facts = {
        "handler_failures": report.tally("handler_failed"),
        "waiting": report.tally("handler_waiting"),
        "coupon_refused": report.tally("coupon_refused"),
    }
    return {**report.as_dict(), "rejections": rejections} | {k: v for k, v in facts.items() if v}


@router.get(
    "/members/{member_id}",
    tags=["members"],
    summary="A member: tier, spend, points with lots, coupons, journeys",
    responses={
        200: {"description": "The member, as members show --json prints it."},
        **problem_responses(*_AUTH, 404, 422, 503, d404="No member by that id."),
    },
)
def get_member(
    runtime: Served,
    _: Annotated[Principal, Depends(require_any_scope("checkout", "admin"))],
    member_id: Annotated[str, Path(min_length=1, max_length=200)],
) -> ExactJSONResponse:
    """The same data as ``members show ID --json`` (contact details masked)."""
    program = program_of(runtime) if runtime.program_path.is_dir() else None
    with runtime.engine.connect() as conn:
        try:
            view = fetch_member_view(conn, member_id, now=runtime.now(), program=program)
        except MemberNotFound as exc:
            raise Problem(404, "member_not_found", "Member not found", str(exc)) from exc
    return ExactJSONResponse(view)


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise Problem(
            400,
            "invalid_json",
            "Body is not UTF-8",
            f"byte 0x{body[exc.start]:02x} at offset {exc.start} is not UTF-8; "
            "send events as UTF-8 JSON",
        ) from exc


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _line_col(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


def _only_whitespace_after(text: str, position: int, elements: list[bytes]) -> list[bytes]:
    rest = _skip_space(text, position)
    if rest < len(text):
        raise invalid_json("extra data after the array", *_line_col(text, rest))
    return elements


def invalid_json(message: str, line: int, column: int) -> Problem:
    return Problem(
        400,
        "invalid_json",
        "Body is not JSON",
        f"line {line} column {column}: {message}; send a JSON array of events, or "
        f"NDJSON with Content-Type: {NDJSON}",
        errors=[{"field": "body", "message": f"line {line} column {column}: {message}"}],
    )


def not_an_array(text: str, position: int) -> Problem:
    line, column = _line_col(text, position)
    got = "an empty body" if position >= len(text) else f"{text[position]!r}"
    return Problem(
        422,
        "invalid_request",
        "Body is not an array of events",
        f"line {line} column {column}: expected a JSON array of events, got {got}; "
        f"one event is [{{...}}], NDJSON needs Content-Type: {NDJSON}",
        errors=[{"field": "body", "message": "expected a JSON array of events"}],
    )


def too_many(count: int | str) -> Problem:
    return Problem(
        413,
        "too_many_events",
        "Too many events",
        f"{count} events in one request; send at most {MAX_EVENTS} per request",
    )

"""Schemathesis over every operation of the live server's ``/openapi.json``: the served Tea House
(SQLite, the example program, Mei with two coupons, and Alice, whom the schema's examples name)
behind a real uvicorn, called with an admin key. No answer is a 5xx, and every answer is one the
schema declares for the operation, in a declared media type, with a body its schema accepts.

Each operation gets :data:`EXAMPLES` valid cases (half of them, where the path names a member,
for a member the engine has) and as many invalid ones. Generation is derandomized, so a run is
the same every time; a failure names the operation and the curl command that reproduces it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from checkout_shop import MEMBER, NOW, Shop, serve_shop
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.events.intake import Intake, ingest

EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def shop(tmp_path: Path, examples: Path) -> Iterator[Shop]:
    db_url = f"sqlite:///{tmp_path / 'loyalty.db'}"
    for served in serve_shop(db_url, examples, tmp_path, api_rate_limit=0):
        program = served.runtime.program
        intake = Intake(engine=served.runtime.engine, now=NOW, program=program)
        report = ingest(alice_events(), intake)
        assert report.rejected == 0, report.rejections
        yield served


def alice_events() -> list[dict[str, Any]]:
    """m-alice, an English-speaking member with a paid order: the schema's examples name her."""
    at = NOW - timedelta(days=40)
    order = {"order_id": "o-a1", "total": "828.00", "items": [
        {"sku": "T-1", "name": "Silver Needle", "category": "tea", "price": "828.00", "qty": 1}
    ]}  # fmt: skip
    return [
        {"id": "reg-alice", "type": "member.registered", "occurred_at": at.isoformat(),
         "member_id": "m-alice", "data": {"first_name": "Alice", "locale": "en"}},
        {"id": "paid-o-a1", "type": "order.paid", "occurred_at": at.isoformat(),
         "member_id": "m-alice", "data": order},
    ]  # fmt: skip


def cases(operation: APIOperation, mode: GenerationMode) -> st.SearchStrategy[Case]:
    generated = operation.as_strategy(generation_mode=mode)
    names = {parameter.name for parameter in operation.path_parameters}
    if mode is GenerationMode.NEGATIVE or "member_id" not in names:
        return generated
    known = operation.as_strategy(generation_mode=mode, path_parameters={"member_id": MEMBER})
    return st.one_of(generated, known)


def exercise(
    operation: APIOperation, mode: GenerationMode, *, base: str, key: str, seen: Counter[int]
) -> None:
    """Send the operation's generated cases through every check, counting the statuses."""

    @given(case=cases(operation, mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        if mode is GenerationMode.POSITIVE and "Idempotency-Key" in (case.headers or {}):
            # A valid key of its own, so the endpoint answers, not a replay or a reuse.
            case.headers["Idempotency-Key"] = f"key-{sum(seen.values())}"
        headers = {"Authorization": f"Bearer {key}"}
        response = case.call(base_url=base, headers=headers, timeout=30)
        seen[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # Nothing of the operation can be made invalid (no parameters, or free text only).


def test_every_operation_answers_no_5xx_and_only_what_the_schema_declares(shop: Shop) -> None:
    schema = schemathesis.openapi.from_url(f"{shop.base}/openapi.json")
    declared = {(method.upper(), path) for path, item in schema.raw_schema["paths"].items()
                for method in item}  # fmt: skip
    failures: dict[str, str] = {}
    statuses: dict[tuple[str, str], Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        seen = statuses.setdefault((operation.method.upper(), operation.path), Counter())
        for mode in GenerationMode:
            try:
                exercise(operation, mode, base=shop.base, key=shop.keys["admin"], seen=seen)
            except (Exception, BaseExceptionGroup) as exc:  # run all, report every failure
                failures[f"{operation.label} ({mode.value})"] = str(exc)

    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert set(statuses) == declared
    assert all(seen.total() > 0 for seen in statuses.values()), statuses
    # The valid cases reach the endpoints: some succeed, not only the guard's refusals.
    successes = {operation for operation, seen in statuses.items() if seen[200] + seen[201]}
    assert successes >= {("POST", "/v1/events"), ("POST", "/v1/checkout/validate"),
                         ("GET", "/v1/members/{member_id}")}, statuses  # fmt: skip

"""Points over HTTP (mounted under ``/v1``): an operator's adjustment, admin only, over
:func:`loyalty.points.adjust_points` in one transaction as ``points adjust`` runs it. What a
cart may redeem is part of ``POST /v1/checkout/validate`` (:mod:`coupons.api`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from core.bounds import MAX_POINTS_PER_OPERATION
from core.http.auth import Principal, require_scope
from core.http.deps import runtime_of
from core.http.fields import PRINTABLE
from core.http.problem_docs import problem_responses
from core.http.problems import Problem
from core.http.programs import program_of
from core.runtime import Runtime
from loyalty.errors import (
    InsufficientPoints,
    InvalidPoints,
    LoyaltyError,
    PointsLimitExceeded,
    UnknownMember,
)
from loyalty.points import adjust_points, fetch_points

router = APIRouter(tags=["points"])
Served = Annotated[Runtime, Depends(runtime_of)]
Admin = Annotated[Principal, Depends(require_scope("admin"))]


class AdjustmentRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"points": 500, "reason": "apology for a late parcel"}]},
    )

    points: int = Field(
        ge=-MAX_POINTS_PER_OPERATION,
        le=MAX_POINTS_PER_OPERATION,
        description="Points to add (a new lot), or negative to take (soonest-expiring first).",
    )
    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=500, pattern=PRINTABLE),
    ]

    @field_validator("points")
    @classmethod
    def _not_zero(cls, points: int) -> int:
        if points == 0:
            raise ValueError("give points to add, or negative points to take; 0 changes nothing")
        return points


class AdjustmentResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_id": "m-alice",
                    "points": 500,
                    "entry_id": 42,
                    "duplicate": False,
                    "debt_paid": 0,
                    "balance": 1730,
                    "pending": 828,
                }
            ]
        }
    )

    member_id: str
    points: int
    entry_id: int | None = Field(description="The ledger entry; None for a duplicate.")
    duplicate: bool = Field(description="The same adjustment was already recorded at this time.")
    debt_paid: int = Field(description="Points of the credit that paid back a refund's debt.")
    balance: int = Field(description="Usable points after the adjustment.")
    pending: int = Field(description="Points not usable yet (inside the return window).")


@router.post(
    "/members/{member_id}/points/adjustments",
    response_model=AdjustmentResponse,
    status_code=201,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        429,
        503,
        d404="No member by that id.",
        d409="Taking more points than the member has usable.",
        d422="Invalid request, zero points, or past a points bound.",
    ),
    summary="Add or take a member's points, with a reason (admin)",
)
def adjust(
    member_id: Annotated[str, Path(min_length=1, max_length=200, pattern=PRINTABLE)],
    body: AdjustmentRequest,
    runtime: Served,
    _: Admin,
) -> dict[str, Any]:
    """An operator's correction, kept in the ledger with its reason; returns the new balance."""
    program = program_of(runtime)
    now = runtime.now()
    try:
        with runtime.engine.begin() as conn:
            result = adjust_points(
                conn, member_id, body.points, reason=body.reason, now=now, program=program
            )
            points = fetch_points(conn, member_id, now=now)
    except LoyaltyError as exc:
        raise _problem(exc) from exc
    return {
        "member_id": member_id,
        "points": body.points,
        "entry_id": result.entry_id,
        "duplicate": result.duplicate,
        "debt_paid": result.debt_paid,
        "balance": points.balance,
        "pending": points.pending,
    }


def _problem(exc: LoyaltyError) -> Problem:
    if isinstance(exc, UnknownMember):
        return Problem(404, "member_not_found", "No such member", str(exc))
    if isinstance(exc, InsufficientPoints):
        return Problem(409, "insufficient_points", "Not enough usable points", str(exc))
    field = [{"field": "points", "message": str(exc)}]
    if isinstance(exc, PointsLimitExceeded | InvalidPoints):
        return Problem(422, "invalid_points", "Invalid points", str(exc), errors=field)
    return Problem(422, "invalid_request", "Invalid request", str(exc))

"""Checkout and coupons over HTTP (mounted under ``/v1``): thin endpoints over
:mod:`coupons.checkout_check`, :mod:`coupons.reservations` and :func:`coupons.wallet.issue_coupon`,
each in one transaction as the CLI runs them.

Scopes: the checkout endpoints need ``checkout`` (the shop's backend); issuing a coupon needs
``admin``, since it gives money away (campaigns and operators issue; a shop does not). A coupon
that does not apply is a 200 with reasons; a refused reservation is a 409 problem whose ``code``
says which kind (``code_unavailable``, ``limit_reached``, ``not_eligible``,
``points_not_held``) and whose ``reasons`` are the reason codes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response, status
from starlette.concurrency import run_in_threadpool

from core.events.handlers import unit_of_work
from core.http.auth import Principal, require_scope
from core.http.deps import runtime_of
from core.http.fields import PRINTABLE
from core.http.guard import reads_only
from core.http.negotiation import ranked
from core.http.problem_docs import problem_responses
from core.http.problems import Problem
from core.http.programs import program_of
from core.http.responses import answer_json
from core.runtime import Runtime
from coupons.api_models import (
    CartRequest,
    IssueRequest,
    ReservationResponse,
    ReserveRequest,
    ValidateResponse,
    WalletEntry,
)
from coupons.carts import Cart, cart_from_items
from coupons.checkout_check import CheckoutCheck, check_checkout
from coupons.checkout_reads import DATABASE, OFFLINE, CachedReads, CheckoutReads, NeedsDatabase
from coupons.errors import (
    CheckoutRefused,
    CodeUnavailable,
    CouponError,
    CouponNotIssuable,
    LimitReached,
    NotEligible,
    UnknownCoupon,
    UnknownMember,
    UnknownReservation,
)
from coupons.messages import MESSAGES
from coupons.reservations import CheckoutReservation, release_reservation, reserve_checkout
from coupons.wallet import issue_coupon
from loyalty.errors import PointsError, PointsNotHeld

router = APIRouter()
Served = Annotated[Runtime, Depends(runtime_of)]
Checkout = Annotated[Principal, Depends(require_scope("checkout"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]
AcceptLanguage = Annotated[
    str | None,
    Header(description="The language of the reasons (default: the member's own), e.g. en, zh-CN."),
]
_AUTH = (401, 403, 422, 429)
_REFUSALS = {
    CodeUnavailable: "code_unavailable",
    LimitReached: "limit_reached",
    NotEligible: "not_eligible",
}


class RefusedProblem(Problem):
    """A 409 problem carrying the refusal's reason codes (a ``reasons`` member)."""

    def __init__(self, code: str, title: str, detail: str, reasons: tuple[str, ...]) -> None:
        super().__init__(409, code, title, detail)
        self.reasons = list(reasons)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "reasons": self.reasons}


@router.post(
    "/checkout/validate",
    tags=["checkout"],
    response_model=ValidateResponse,
    responses=problem_responses(*_AUTH, 404, 503, d404="No member by that id."),
    summary="Check a cart: every wallet coupon and entered code, the best mix, the points",
)
async def validate_checkout(
    request: Request,
    body: CartRequest,
    runtime: Served,
    _: Checkout,
    accept_language: AcceptLanguage = None,
) -> Response:
    """Every wallet coupon and every entered code against the cart (eligible or not, the
    discount, reasons), the wallet's best combination and the points redeemable on the cart
    with their value. Holds nothing; a coupon that does not apply is not an error."""
    program = program_of(runtime)
    reads_only(request)
    check = partial(
        check_checkout, program=program, member_id=body.member_id, cart=_cart(body),
        codes=body.codes, points=body.points, now=runtime.now(),
        locale=requested_locale(accept_language),
    )  # fmt: skip
    cache = getattr(request.app.state, "read_cache", None)
    reads: CheckoutReads = DATABASE if cache is None else CachedReads(cache)
    checked: CheckoutCheck | None = None
    try:
        if cache is not None:
            with suppress(NeedsDatabase):  # every read kept: on the event loop, without I/O
                checked = check(OFFLINE, reads=reads)
        if checked is None:
            checked = await run_in_threadpool(_check_on_database, runtime, check, reads)
    except CouponError as exc:
        raise _problem(exc) from exc
    # ValidateResponse is the schema; the answer is written as is (tests check it conforms).
    return Response(answer_json(checked.as_dict()), media_type="application/json")


def _check_on_database(
    runtime: Runtime, check: Callable[..., CheckoutCheck], reads: CheckoutReads
) -> CheckoutCheck:
    # Reads only: outside a transaction, as each statement of one would see the latest
    # committed rows anyway (READ COMMITTED), without BEGIN and ROLLBACK round trips.
    with runtime.engine.connect() as conn:
        return check(conn.execution_options(isolation_level="AUTOCOMMIT"), reads=reads)


@router.post(
    "/checkout/reserve",
    tags=["checkout"],
    response_model=ReservationResponse,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        *_AUTH,
        404,
        409,
        503,
        d404="No member by that id.",
        d409="Refused: nothing is held; code and reasons say why.",
    ),
    summary="Hold codes and points for an order until a time",
)
def reserve(body: ReserveRequest, runtime: Served, _: Checkout) -> dict[str, Any]:
    """Hold the codes (counting against every limit) and the points for the order for
    ``ttl_seconds``; reserving again for the order replaces its reservation. The redemption
    happens when the order is paid."""
    program = program_of(runtime)
    now = runtime.now()
    try:
        with unit_of_work(runtime.engine, now=now, program=program) as ctx:
            held = reserve_checkout(
                ctx.conn, program, member_id=body.member_id, order_id=body.order_id,
                cart=_cart(body), codes=body.codes, points=body.points, now=now,
                ttl=timedelta(seconds=body.ttl_seconds),
            )  # fmt: skip
    except (CouponError, PointsError) as exc:
        raise _problem(exc) from exc
    return reservation_body(held, now=now)


@router.post(
    "/checkout/reservations/{reservation_id}/release",
    tags=["checkout"],
    response_model=ReservationResponse,
    responses=problem_responses(*_AUTH, 404, d404="No reservation by that id."),
    summary="Free what a reservation holds (idempotent)",
)
def release(
    reservation_id: Annotated[str, Path(min_length=1, max_length=40, pattern=PRINTABLE)],
    runtime: Served,
    _: Checkout,
) -> dict[str, Any]:
    """Give the reservation's codes back to their wallets and drop its points hold. Releasing
    again, or releasing a reservation a newer one for the same order replaced, changes
    nothing; codes already redeemed by the paid order stay redeemed."""
    now = runtime.now()
    try:
        with unit_of_work(runtime.engine, now=now) as ctx:
            released = release_reservation(ctx.conn, reservation_id, now=now)
    except CouponError as exc:
        raise _problem(exc) from exc
    return reservation_body(released, now=now)


@router.post(
    "/members/{member_id}/coupons",
    tags=["coupons"],
    response_model=WalletEntry,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(
        *_AUTH,
        404,
        409,
        503,
        d404="No member by that id.",
        d409="The coupon's valid_between has ended.",
    ),
    summary="Issue a coupon into a member's wallet (admin)",
)
def issue(
    member_id: Annotated[str, Path(min_length=1, max_length=200, pattern=PRINTABLE)],
    body: IssueRequest,
    runtime: Served,
    _: Admin,
) -> dict[str, Any]:
    """A new code of the coupon in the member's wallet; with an ``issue_key`` already used,
    the code issued then."""
    program = program_of(runtime)
    now = runtime.now()
    try:
        with unit_of_work(runtime.engine, now=now, program=program) as ctx:
            entry = issue_coupon(
                ctx.conn, program, coupon_id=body.coupon_id, member_id=member_id, now=now,
                issue_key=body.issue_key,
            )  # fmt: skip
    except CouponError as exc:
        raise _problem(exc) from exc
    return {
        "coupon_id": entry.coupon_id,
        "member_id": entry.member_id,
        "code": entry.code,
        "status": entry.effective_status(now),
        "issued_at": entry.issued_at,
        "expires_at": entry.expires_at,
    }


def _cart(body: CartRequest) -> Cart:
    return cart_from_items(body.items, total=body.total, shipping=body.shipping)


def reservation_body(reservation: CheckoutReservation, *, now: datetime) -> dict[str, Any]:
    return {
        "reservation_id": reservation.reservation_id,
        "order_id": reservation.order_id,
        "member_id": reservation.member_id,
        "status": reservation.status(now),
        "until": reservation.held_until,
        "codes": [
            {"code": code, "discount": str(share)} for code, share in reservation.codes.items()
        ],
        "discount": str(reservation.discount),
        "points": reservation.points,
        "points_value": str(reservation.points_value),
    }


def requested_locale(header: str | None) -> str | None:
    """The first language of an ``Accept-Language`` header (by weight) that the reason
    catalogue has, as given (``en-GB``); None when it names none of them."""
    languages = {known.split("-")[0].lower() for known in MESSAGES}
    for tag in ranked(header):
        if tag.split("-")[0].lower() in languages:
            return tag
    return None


def _problem(exc: Exception) -> Problem:
    """The problem a service error answers with."""
    if isinstance(exc, UnknownMember):
        return Problem(404, "member_not_found", "No such member", str(exc))
    if isinstance(exc, UnknownReservation):
        return Problem(404, "reservation_not_found", "No such reservation", str(exc))
    if isinstance(exc, UnknownCoupon):
        field = [{"field": "coupon_id", "message": str(exc)}]
        return Problem(422, "unknown_coupon", "No such coupon", str(exc), errors=field)
    if isinstance(exc, CouponNotIssuable):
        return Problem(409, "coupon_not_issuable", "The coupon can no longer be issued", str(exc))
    if isinstance(exc, CheckoutRefused):
        code = _REFUSALS.get(type(exc), "not_eligible")
        return RefusedProblem(code, "The reservation was refused", str(exc), exc.reasons)
    if isinstance(exc, PointsNotHeld):
        reasons = (exc.reason,)
        return RefusedProblem("points_not_held", "The points cannot be held", str(exc), reasons)
    if isinstance(exc, PointsError):
        return RefusedProblem("points_not_held", "The points cannot be held", str(exc), ())
    return Problem(422, "invalid_request", "Invalid request", str(exc))

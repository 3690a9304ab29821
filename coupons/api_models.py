"""The bodies of the checkout and coupon endpoints (:mod:`coupons.api`), with examples, so the
OpenAPI document says exactly what goes in and comes out. Amounts go out as decimal strings
(``"30.00"``), never as floats; they come in as strings or numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from core.bounds import MAX_AMOUNT, MAX_POINTS_PER_OPERATION
from core.events.types import MAX_COUPON_CODES, MAX_ITEMS, Amount, Item
from core.http.fields import Key

Money = Annotated[str, Field(pattern=r"^\d+\.\d{2}$", examples=["30.00"])]
CodeText = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# The longest a reservation may hold codes and points: a checkout, not a layaway.
MAX_TTL_SECONDS = 3600
DEFAULT_TTL_SECONDS = 900

_LINE: dict[str, Any] = {
    "sku": "T-101",
    "name": "Dragon Well 100 g",
    "category": "tea",
    "price": "168.00",
}
_CART: dict[str, Any] = {
    "member_id": "m-alice",
    "items": [{**_LINE, "qty": 2}],
    "codes": ["K7QM-4XRT-9HPW"],
}


class CartRequest(BaseModel):
    """A member's cart: lines as in ``cart.updated`` items, the codes entered, points to use."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_CART]})

    member_id: Key
    items: list[Item] = Field(max_length=MAX_ITEMS)
    total: Amount | None = Field(
        default=None, description="The total thresholds start from; default: the lines' sum."
    )
    shipping: Amount | None = Field(default=None, description="Shipping, for free shipping.")
    codes: list[CodeText] = Field(default_factory=list, max_length=MAX_COUPON_CODES)
    points: int = Field(
        default=0, ge=0, le=MAX_POINTS_PER_OPERATION, description="Points to redeem; 0: none."
    )

    @field_validator("items")
    @classmethod
    def _within_bounds(cls, items: list[Item]) -> list[Item]:
        if sum(item.price * item.qty for item in items) > MAX_AMOUNT:
            raise ValueError(f"the lines add up to more than {MAX_AMOUNT}; check prices and qty")
        return items


class ReserveRequest(CartRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{**_CART, "order_id": "o-1001", "points": 500, "ttl_seconds": 900}]
        },
    )

    order_id: Key
    ttl_seconds: int = Field(
        default=DEFAULT_TTL_SECONDS,
        ge=60,
        le=MAX_TTL_SECONDS,
        description="How long the codes and points are held: 60 s to 1 h.",
    )


class CartSummary(BaseModel):
    total: Money
    items: int = Field(description="How many units the lines add up to.")


class WalletCouponResult(BaseModel):
    coupon_id: str
    code: str
    name: str
    status: str
    expires_at: datetime | None
    eligible: bool
    discount: Money
    free_shipping: bool
    reasons: list[str] = Field(description="Why, in the member's or the requested language.")
    reason_codes: list[str]
    entered: bool = Field(description="Whether the request's codes name it.")


class EnteredCodeResult(BaseModel):
    code: str
    coupon_id: str | None = Field(description="None for a code that does not exist.")
    name: str | None
    eligible: bool
    discount: Money = Field(description="Its share of the entered codes' discount.")
    reasons: list[str]
    reason_codes: list[str]


class EnteredCodes(BaseModel):
    codes: list[EnteredCodeResult]
    discount: Money
    ok: bool = Field(description="Every entered code applies, together (stacking included).")


class BestCombination(BaseModel):
    codes: list[str]
    discount: Money
    free_shipping: bool


PointsRefusal = Literal["points.below_minimum", "points.over_order_share", "points.insufficient"]


class PointsOnCart(BaseModel):
    balance: int = Field(description="Usable points now.")
    held: int = Field(description="Points the member's other checkouts hold.")
    available: int
    order_total: Money = Field(description="What points pay toward: the total less the codes.")
    min_points: int
    points_per_unit: int
    most_for_order: int = Field(description="The most the order total may take (max share).")
    redeemable: int = Field(description="The most the member can redeem here; 0 if none.")
    value: Money = Field(description="What the redeemable points are worth.")
    requested: int
    requested_value: Money
    requested_refusal: PointsRefusal | None = Field(
        description="Why the requested points cannot be redeemed; None when they can."
    )


class ValidateResponse(BaseModel):
    member_id: str
    locale: str = Field(description="The language the reasons are in.")
    currency: str
    cart: CartSummary
    coupons: list[WalletCouponResult] = Field(description="Every coupon in the wallet.")
    entered: EnteredCodes
    best: BestCombination = Field(description="The best valid combination of the wallet.")
    points: PointsOnCart


class ReservedCode(BaseModel):
    code: str
    discount: Money


class ReservationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reservation_id": "rsv_5f0c2a9e1b7d4c3a8e6f1d2b",
                    "order_id": "o-1001",
                    "member_id": "m-alice",
                    "status": "held",
                    "until": "2027-04-05T04:15:00Z",
                    "codes": [{"code": "K7QM-4XRT-9HPW", "discount": "30.00"}],
                    "discount": "30.00",
                    "points": 500,
                    "points_value": "10.00",
                }
            ]
        }
    )

    reservation_id: str
    order_id: str
    member_id: str
    status: Literal["held", "lapsed", "released"]
    until: datetime
    codes: list[ReservedCode]
    discount: Money
    points: int
    points_value: Money


class IssueRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"coupon_id": "friend-tea-25", "issue_key": "crm-123"}]},
    )

    coupon_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    issue_key: Key | None = Field(
        default=None, description="Issuing again with the same key returns the same code."
    )


class WalletEntry(BaseModel):
    coupon_id: str
    member_id: str
    code: str
    status: str
    issued_at: datetime
    expires_at: datetime | None

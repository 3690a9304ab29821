"""The event envelope and the data of each event type the shop sends (CONTRACT.md, Events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from core.bounds import MAX_POINTS_PER_OPERATION

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


# Text bounded by what its projection column can store (a 5 MB first name is bad input).
Text35 = Annotated[str, StringConstraints(max_length=35)]
Text64 = Annotated[str, StringConstraints(max_length=64)]
Text100 = Annotated[str, StringConstraints(max_length=100)]
Text200 = Annotated[str, StringConstraints(max_length=200)]
Text320 = Annotated[str, StringConstraints(max_length=320)]
Text500 = Annotated[str, StringConstraints(max_length=500)]
Text512 = Annotated[str, StringConstraints(max_length=512)]
Text2048 = Annotated[str, StringConstraints(max_length=2048)]


# Bounds on lists: a real order has tens of lines, never thousands.
MAX_ITEMS = 1_000
MAX_COUPON_CODES = 20
# An amount in CNY: 0 to 99,999,999,999,999.99, at most 2 decimals; as sent, a string
# ("168.00", best: no float rounding) or a number. The schema states the string's form.
AMOUNT_PATTERN = r"^\d{1,14}(\.\d{1,2})?$"
Amount = Annotated[
    Decimal,
    Field(ge=0, max_digits=16, decimal_places=2, allow_inf_nan=False),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["168.00"]},
                {"type": "number", "minimum": 0, "exclusiveMaximum": 100_000_000_000_000},
            ]
        }
    ),
]


class EventData(BaseModel):
    # Extra keys are kept in the stored event (nothing is dropped) but not interpreted.
    model_config = ConfigDict(extra="allow", frozen=True)


class Item(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    sku: Id
    name: Text500 = ""
    category: Text100 = ""
    price: Amount
    qty: int = Field(default=1, ge=1)


class Consents(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    email: bool | None = None
    sms: bool | None = None
    push: bool | None = None


def _valid_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai"
        ) from exc
    return name


Zone = Annotated[str, AfterValidator(_valid_zone)]


class MemberProfile(EventData):
    first_name: Text200 | None = None
    email: Text320 | None = None
    phone: Text64 | None = None
    push_token: Text512 | None = None
    birthday: date | None = None
    timezone: Zone | None = None
    locale: Text35 | None = None
    consents: Consents | None = None
    referral_code: Text64 | None = None
    referred_by: Text64 | None = None


class OrderPaid(EventData):
    order_id: Id
    total: Amount
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    items: list[Item] = Field(default_factory=list, max_length=MAX_ITEMS)
    coupon_codes: list[Text64] = Field(default_factory=list, max_length=MAX_COUPON_CODES)
    points_redeemed: int = Field(default=0, ge=0, le=MAX_POINTS_PER_OPERATION)
    cart_id: Id | None = None


class OrderRefunded(EventData):
    order_id: Id
    amount: Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=2, allow_inf_nan=False)]


class CartUpdated(EventData):
    cart_id: Id
    total: Amount
    items: list[Item] = Field(default_factory=list, max_length=MAX_ITEMS)


class ReviewPosted(EventData):
    order_id: Id
    sku: Id
    has_photo: bool = False


class ContentShared(EventData):
    channel: Text64
    url: Text2048 = ""


# The event types, declared once: the shop sends the first kind; the engine emits the second
# itself (campaigns may trigger on them, the shop may not send them). Program files (earn
# rules, campaigns) and the envelope take their Literal types from here.
ShopEventType = Literal[
    "member.registered",
    "member.updated",
    "order.paid",
    "order.refunded",
    "cart.updated",
    "review.posted",
    "content.shared",
]
InternalEventType = Literal["tier.changed", "tier.downgrade_pending", "referral.qualified"]
AnyEventType = Literal[ShopEventType, InternalEventType]
EventType = ShopEventType  # what an envelope may carry
SHOP_EVENT_TYPES: frozenset[str] = frozenset(get_args(ShopEventType))
INTERNAL_EVENT_TYPES: frozenset[str] = frozenset(get_args(InternalEventType))
EVENT_TYPES: tuple[str, ...] = get_args(AnyEventType)

# The data model of every ShopEventType (a test keeps the two in step).
DATA_MODELS: dict[str, type[EventData]] = {
    "member.registered": MemberProfile,
    "member.updated": MemberProfile,
    "order.paid": OrderPaid,
    "order.refunded": OrderRefunded,
    "cart.updated": CartUpdated,
    "review.posted": ReviewPosted,
    "content.shared": ContentShared,
}


class Envelope(BaseModel):
    """The outer shape of every event; ``data`` is checked against its type's model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    type: ShopEventType
    occurred_at: AwareDatetime
    member_id: Id
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Event:
    """A validated event: the envelope plus its typed data (a plain dataclass: built once per
    event on the ingest hot path, after pydantic has validated every field)."""

    id: str
    type: str
    occurred_at: datetime
    member_id: str
    data: EventData
    raw_data: dict[str, Any]

    def stored_data(self) -> dict[str, Any]:
        """The data as stored: every key exactly as sent (validated above); numbers that came in
        as JSON numbers are kept exact, as decimals (serialised as strings)."""
        return self.raw_data

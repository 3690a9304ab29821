"""The CEL variables, built once for every package: pure functions over fetched facts, as of ``at``.

Loyalty judges an event with ``at`` = the event's ``occurred_at``; coupons judge a checkout (or
the order being paid) with ``at`` = the checkout time. When an order is judged (``order.paid``
in loyalty, a redemption in coupons) that order is left out of ``member`` (``exclude_order``):
``member`` is the member just before the order, ``order`` is the order. Money is a CEL
``double`` (the CEL library has no decimal): compare it, never compute money with it.

============================== ======== ==========================================================
field                          type     meaning (as of ``at``; nothing after ``at`` counts)
============================== ======== ==========================================================
member.id                      string   the member id
member.tier                    string   the tier held at ``at``: the current tier with every change
                                        recorded after ``at`` (and the one the judged order caused)
                                        undone; a member never tiered holds the lowest tier
member.tier_rank               int      the tier's place on the ladder, 0 = lowest; -1 for a tier
                                        no longer in program.yaml
member.paid_orders             int      orders paid at or before ``at`` (refunded ones included)
member.net_spend               double   over those orders: each order's total minus what was
                                        refunded of it by ``at``, never below zero per order
member.qualifying_spend        double   the same over the orders paid in the tier window
                                        ``(at - window_days, at]``; a refund of an order paid
                                        before the window does not count (as the daily tier
                                        recalculation computes it)
member.days_since_registered   int?     whole days (24-hour periods) since registering; null if
                                        not registered by ``at``
member.days_since_last_order   int?     whole days since the latest of those orders; null if none
member.birthday_month          int?     1-12, from the profile's birthday; null if unknown
member.referrals               int      referrals by this member that settled (qualified) at or
                                        before ``at``; pending and rejected ones do not count
member.referred_by             string?  the referral code the member registered with; null if none
member.locale                  string?  the profile's locale, such as zh-CN; null if unknown
member.consents.email|sms|push bool     true only if the profile says the member consents;
                                        false when withdrawn or never given
now.year|month|day|hour        int      ``at`` in the business time zone (program.timezone)
now.weekday                    int      0 = Sunday … 6 = Saturday, as in cron
order.total / cart.total       double   the order's (cart's) total as sent
order.item_count               int      the sum of the lines' qty
order.categories               list     the distinct non-empty categories of the lines, sorted
order.items                    list     lines: {sku, name, category (string), price (double,
                                        per unit), qty (int)}
event.type                     string   the event's type, such as review.posted
event.occurred_at              timestamp when the event happened
event.data                     map      the event's data, with the fields of its type; money as
                                        double, dates as ISO text
============================== ======== ==========================================================

The profile fields (birthday_month, referred_by, locale, consents) are the profile as it is now:
no history of profiles is kept. Which variables an expression may use depends on where it is
written (:mod:`core.cel.types`): ``order`` only on ``order.paid`` and at checkout, ``event``
only on events, ``cart`` on ``cart.updated`` and at checkout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from core.cel.history import SPEND_FIELDS, MemberHistory, net_spend
from core.cel.sources import AsOf, MissingSource, member_sources
from core.cel.types import MEMBER
from core.events.types import CartUpdated, Event, OrderPaid

EVENT_ROOTS = frozenset({"event", "now", "order", "cart"})


@dataclass(frozen=True)
class VariableSettings:
    """What the variables need from program.yaml: the business zone and the tier window."""

    zone: ZoneInfo
    window: timedelta

    @classmethod
    def from_program(cls, program: Any) -> VariableSettings:
        file = program.program_file
        return cls(ZoneInfo(file.program.timezone), timedelta(days=file.tiers.window_days))


def member_variables(
    history: MemberHistory,
    settings: VariableSettings,
    *,
    at: datetime,
    exclude_order: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    fields: frozenset[str] | None = None,
) -> dict[str, Any]:
    """CEL's ``member`` as of ``at``, without ``exclude_order``. ``overrides`` are values the
    caller decided after fetching (loyalty: an upgrade planned earlier in the same batch).
    ``fields``: only these (the ones the expressions read, see :func:`member_fields_read`)."""
    wanted = frozenset(MEMBER.fields) if fields is None else fields
    variables: dict[str, Any] = {"id": history.member_id, **_profile_fields(history, at)}
    if wanted & SPEND_FIELDS:
        variables.update(_spend_fields(history, settings, at, exclude_order))
    as_of = AsOf(at, exclude_order)
    for source in member_sources:
        if source.name in history.provided and wanted.intersection(source.fields):
            variables.update(source.read(history.provided[source.name], as_of))
    variables.update(overrides or {})
    missing = [name for name in MEMBER.fields if name in wanted and name not in variables]
    if missing:
        raise MissingSource(missing)
    return {name: variables[name] for name in MEMBER.fields if name in wanted}


def _spend_fields(
    history: MemberHistory, settings: VariableSettings, at: datetime, exclude_order: str | None
) -> dict[str, Any]:
    past = [o for o in history.orders if o.paid_at <= at and o.order_id != exclude_order]
    net, qualifying = spend_amounts(history, settings, at=at, exclude_order=exclude_order)
    return {
        "paid_orders": sum(order.count for order in past),
        "net_spend": float(net),  # CEL compares numbers as doubles; the money stays exact
        "qualifying_spend": float(qualifying),
        "days_since_last_order": (at - max(o.paid_at for o in past)).days if past else None,
    }


def spend_amounts(
    history: MemberHistory,
    settings: VariableSettings,
    *,
    at: datetime,
    exclude_order: str | None = None,
) -> tuple[Decimal, Decimal]:
    """``member.net_spend`` and ``member.qualifying_spend`` as exact money (CEL gets them as
    doubles; a message shows these)."""
    past = [o for o in history.orders if o.paid_at <= at and o.order_id != exclude_order]
    refunds = [r for r in history.refunds if r.order_id != exclude_order]
    return (
        net_spend(past, refunds, at=at, window=None),
        net_spend(past, refunds, at=at, window=settings.window),
    )


def member_fields_read(sources: Iterable[str]) -> frozenset[str] | None:
    """The ``member`` fields the expressions select (``member.tier`` …); None when one uses
    ``member`` whole (``has(member.x)`` still selects; ``f(member)`` needs every field)."""
    from core.cel.parse import Ident, Node, Select, Unsupported, parse

    selected: set[str] = set()

    def walk(node: Node) -> bool:  # False: ``member`` used whole
        if isinstance(node, Select) and isinstance(node.target, Ident):
            if node.target.name == "member":
                selected.add(node.field)
            return True
        if isinstance(node, Ident):
            return node.name != "member"
        return all(walk(child) for child in _children(node))

    for source in sources:
        try:
            if not walk(parse(source)):
                return None
        except Unsupported:
            return None
    return frozenset(selected)


def fields_selected(source: str) -> tuple[tuple[str, str], ...] | None:
    """The ``(variable, field)`` pairs the expression selects (``now.month`` …), in the order
    they appear; None when it uses a name other than through one field selection
    (``member``, ``member["tier"]``, a macro's variable) or syntax the parser does not know."""
    from core.cel.parse import Ident, Node, Select, Unsupported, parse

    selected: dict[tuple[str, str], None] = {}

    def walk(node: Node) -> bool:
        if isinstance(node, Select) and isinstance(node.target, Ident):
            selected[(node.target.name, node.field)] = None
            return True
        if isinstance(node, Ident):
            return False
        return all(walk(child) for child in _children(node))

    try:
        return tuple(selected) if walk(parse(source)) else None
    except (Unsupported, RecursionError):
        return None


def _children(node: Any) -> list[Any]:
    from core.cel.parse import Node

    children: list[Any] = []
    for value in vars(node).values():
        if isinstance(value, Node):
            children.append(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    children.append(item)
                elif isinstance(item, tuple):
                    children.extend(i for i in item if isinstance(i, Node))
    return children


def _profile_fields(history: MemberHistory, at: datetime) -> dict[str, Any]:
    profile = history.profile
    registered = profile.registered_at if profile else None
    return {
        "days_since_registered": (
            (at - registered).days if registered is not None and registered <= at else None
        ),
        "birthday_month": profile.birthday.month if profile and profile.birthday else None,
        "referred_by": (profile.referred_by or None) if profile else None,
        "locale": (profile.locale or None) if profile else None,
        "consents": {
            "email": bool(profile and profile.consent_email is True),
            "sms": bool(profile and profile.consent_sms is True),
            "push": bool(profile and profile.consent_push is True),
        },
    }


def now_variables(at: datetime, zone: ZoneInfo) -> dict[str, int]:
    """CEL's ``now``: year, month, day, weekday (0 = Sunday, as in cron), hour; business zone."""
    local = at.astimezone(zone)
    return {
        "year": local.year,
        "month": local.month,
        "day": local.day,
        "weekday": local.isoweekday() % 7,
        "hour": local.hour,
    }


class Line(Protocol):
    """An order or cart line (an event's ``Item``, a coupons ``CartLine``)."""

    @property
    def sku(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def qty(self) -> int: ...


def basket_variables(total: Decimal, lines: Iterable[Line]) -> dict[str, Any]:
    """CEL's ``order`` / ``cart``."""
    lines = list(lines)
    return {
        "total": float(total),
        "item_count": sum(line.qty for line in lines),
        "categories": sorted({line.category for line in lines if line.category}),
        "items": [
            {
                "sku": line.sku,
                "name": line.name,
                "category": line.category,
                "price": float(line.price),
                "qty": line.qty,
            }
            for line in lines
        ],
    }


def event_variables(
    event: Event, zone: ZoneInfo, *, wanted: frozenset[str] = EVENT_ROOTS
) -> dict[str, Any]:
    """The variables of an event besides ``member`` (only those ``wanted``): ``event``,
    ``now`` at its occurred_at, ``order`` for ``order.paid``, ``cart`` for ``cart.updated``."""
    variables: dict[str, Any] = {}
    if "event" in wanted:
        data = cel_value(event.data.model_dump())
        variables["event"] = {"type": event.type, "occurred_at": event.occurred_at, "data": data}
    if "now" in wanted:
        variables["now"] = now_variables(event.occurred_at, zone)
    if "order" in wanted and isinstance(event.data, OrderPaid):
        variables["order"] = basket_variables(event.data.total, event.data.items)
    if "cart" in wanted and isinstance(event.data, CartUpdated):
        variables["cart"] = basket_variables(event.data.total, event.data.items)
    return variables


def cel_value(value: Any) -> Any:
    """Decimal to float and dates to ISO text, recursively: values CEL can compare."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: cel_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [cel_value(item) for item in value]
    return value

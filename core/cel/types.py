"""Every CEL variable's fields and types, and scopes: which variables an expression sees.

The types are CEL's: ``int``, ``double`` (money: the CEL library has no decimal), ``string``,
``bool``, ``timestamp``, lists, maps and objects with named fields. A field marked nullable may be
``null`` (a member with no orders has no ``days_since_last_order``). What each field means is in
:mod:`core.cel.variables` and ``docs/cel.md``.

``event.data`` has the fields of the event's type: the shop's events from their models in
:mod:`core.events.types`, the engine's own events as their package registers them
(:func:`register_event_data`); an event type nobody described has a ``data`` of any shape.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


@dataclass(frozen=True)
class Prim:
    """A CEL primitive type (``dyn``: anything, not checked)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ListOf:
    item: CelType

    def __str__(self) -> str:
        return f"list({self.item})"


@dataclass(frozen=True)
class MapOf:
    key: CelType
    value: CelType

    def __str__(self) -> str:
        return f"map({self.key}, {self.value})"


@dataclass(frozen=True)
class Obj:
    """A map with known fields (``member``, ``now``…); ``nullable`` fields may be null."""

    name: str
    fields: Mapping[str, CelType] = field(hash=False, compare=False)
    nullable: frozenset[str] = frozenset()

    def __str__(self) -> str:
        return self.name


CelType = Prim | ListOf | MapOf | Obj

BOOL, INT, UINT, DOUBLE = Prim("bool"), Prim("int"), Prim("uint"), Prim("double")
STRING, BYTES, NULL, DYN = Prim("string"), Prim("bytes"), Prim("null"), Prim("dyn")
TIMESTAMP, DURATION = Prim("timestamp"), Prim("duration")
NUMBERS = frozenset({INT, UINT, DOUBLE})

CONSENTS = Obj("member.consents", {"email": BOOL, "sms": BOOL, "push": BOOL})
MEMBER = Obj(
    "member",
    {
        "id": STRING,
        "tier": STRING,
        "tier_rank": INT,
        "paid_orders": INT,
        "net_spend": DOUBLE,
        "qualifying_spend": DOUBLE,
        "days_since_registered": INT,
        "days_since_last_order": INT,
        "birthday_month": INT,
        "referrals": INT,
        "referred_by": STRING,
        "locale": STRING,
        "consents": CONSENTS,
    },
    nullable=frozenset(
        {
            "days_since_registered",
            "days_since_last_order",
            "birthday_month",
            "referred_by",
            "locale",
        }
    ),
)
NOW = Obj("now", {name: INT for name in ("year", "month", "day", "weekday", "hour")})
ITEM = Obj("item", {"sku": STRING, "name": STRING, "category": STRING, "price": DOUBLE, "qty": INT})
BASKET = Obj(
    "order",
    {"total": DOUBLE, "item_count": INT, "categories": ListOf(STRING), "items": ListOf(ITEM)},
)
CART = Obj("cart", BASKET.fields)

_event_data: dict[str, Obj] = {}


def register_event_data(event_type: str, fields: Mapping[str, CelType]) -> None:
    """Describe the ``data`` of an engine event (a package that emits it calls this)."""
    _event_data[event_type] = Obj(f"event.data ({event_type})", dict(fields))


def event_data_type(event_type: str | None) -> CelType:
    """``event.data`` of ``event_type``; DYN for an event type nobody described (or None)."""
    if event_type is None:
        return DYN
    if event_type not in _event_data:
        from core.events.types import DATA_MODELS

        model = DATA_MODELS.get(event_type)
        if model is None:
            return DYN
        _event_data[event_type] = model_type(f"event.data ({event_type})", model)
    return _event_data[event_type]


def event_var_type(event_type: str | None) -> Obj:
    """The ``event`` variable of an expression judged on events of ``event_type``."""
    data = event_data_type(event_type)
    return Obj("event", {"type": STRING, "occurred_at": TIMESTAMP, "data": data})


def model_type(name: str, model: type[BaseModel]) -> Obj:
    """A pydantic model's fields as CEL sees them once dumped (Decimal as double, dates as text)."""
    fields: dict[str, CelType] = {}
    nullable: set[str] = set()
    for key, info in model.model_fields.items():
        options = _options(info.annotation)
        if type(None) in options:
            nullable.add(key)
        kinds = [option for option in options if option is not type(None)]
        fields[key] = _python_type(f"{name}.{key}", kinds[0]) if len(kinds) == 1 else DYN
    return Obj(name, fields, nullable=frozenset(nullable))


_PYTHON_TYPES: dict[Any, CelType] = {
    bool: BOOL,
    int: INT,
    float: DOUBLE,
    Decimal: DOUBLE,
    str: STRING,
    date: STRING,
    datetime: TIMESTAMP,
}


def _python_type(name: str, annotation: Any) -> CelType:
    if get_origin(annotation) in (list, tuple):
        (item,) = get_args(annotation)[:1]
        return ListOf(_python_type(name, _options(item)[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_type(name, annotation)
    return _PYTHON_TYPES.get(annotation, DYN)


def _options(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Annotated:
        return _options(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [option for arg in get_args(annotation) for option in _options(arg)]
    return [annotation]


@dataclass(frozen=True)
class Scope:
    """Where an expression runs: what it is (for messages) and the variables it sees."""

    what: str
    roots: Mapping[str, CelType] = field(hash=False, compare=False)
    event_type: str | None = None


def event_scope(what: str, event_type: str | None) -> Scope:
    """An expression judged on an event (earn rules, campaign triggers): ``member``, ``event``
    and ``now``, plus ``order`` for ``order.paid`` and ``cart`` for ``cart.updated``."""
    roots: dict[str, CelType] = {"member": MEMBER, "event": event_var_type(event_type), "now": NOW}
    if event_type == "order.paid":
        roots["order"] = BASKET
    if event_type == "cart.updated":
        roots["cart"] = CART
    return Scope(what, roots, event_type)


CHECKOUT = Scope("a coupon's when:", {"member": MEMBER, "order": BASKET, "cart": CART, "now": NOW})
AUDIENCE = Scope("a schedule's audience:", {"member": MEMBER, "now": NOW})

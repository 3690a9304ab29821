"""Money and other exact decimal quantities read from programs: never floats, never float maths.

YAML hands numbers over as int or float; a float is converted through ``str()`` so that ``1.2``
becomes ``Decimal('1.2')``, the number the marketer wrote, not ``1.19999…``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from core.bounds import MAX_AMOUNT, MAX_MULTIPLIER

CENT = Decimal("0.01")
_DECIMAL_SCHEMA = {
    "anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}]
}


def to_decimal(value: Any) -> Decimal:
    """Convert a number as YAML or JSON gives it (int, float, string) to an exact Decimal."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PydanticCustomError(
            "decimal", "expected a number, got {shown}", {"shown": _shown(value)}
        )
    else:
        result = _parse(str(value).strip())
    if not result.is_finite():
        raise PydanticCustomError(
            "decimal", "expected a finite number, got {shown}", {"shown": _shown(value)}
        )
    return result


def _parse(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise PydanticCustomError(
            "decimal", "expected a number such as 99 or 19.90, got {shown}", {"shown": repr(text)}
        ) from None


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value) if isinstance(value, str) else str(value)


def _money(value: Any) -> Decimal:
    amount = to_decimal(value)
    if amount < 0:
        raise PydanticCustomError(
            "money", "expected an amount of 0 or more, got {shown}", {"shown": str(amount)}
        )
    if amount > MAX_AMOUNT:
        raise PydanticCustomError(
            "money",
            "expected an amount of at most {most} (the largest an event may carry), got {shown}",
            {"most": str(MAX_AMOUNT), "shown": str(amount)},
        )
    if amount != amount.quantize(CENT):
        raise PydanticCustomError(
            "money",
            "expected an amount with at most 2 decimal places, got {shown}",
            {"shown": str(amount)},
        )
    return amount


def _decimal_type(*constraints: Any, description: str) -> Any:
    return Annotated[
        Decimal,
        BeforeValidator(to_decimal),
        *constraints,
        PlainSerializer(str, return_type=str),
        WithJsonSchema({**_DECIMAL_SCHEMA, "description": description}),
    ]


Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            **_DECIMAL_SCHEMA,
            "description": f"an amount in the program currency, 0 to {MAX_AMOUNT}",
        }
    ),
]
PositiveMoney = Annotated[Money, Gt(0)]

# A factor applied to points: tier multipliers and boosts (1.5 = half as many again).
Multiplier = _decimal_type(
    Gt(0),
    Le(MAX_MULTIPLIER),
    description=f"a factor greater than 0 and at most {MAX_MULTIPLIER}, such as 1.5",
)
# A share of a whole: the part of an order points may pay for.
Share = _decimal_type(Gt(0), Le(1), description="a share greater than 0 and at most 1")
# The share of entrants held out of an experiment: none is allowed, everyone is not.
HoldoutShare = _decimal_type(Ge(0), Lt(1), description="a share from 0 up to (not including) 1")
Percent = _decimal_type(Gt(0), Le(100), description="a percentage greater than 0, at most 100")

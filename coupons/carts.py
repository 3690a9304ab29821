"""Carts and orders as eligibility sees them: lines, amounts per category, the total.

A cart comes from a file (``{"items": [...], "total": optional, "shipping": optional}``, the
data of a ``cart.updated`` event works as is) or from an ``order.paid`` event. Amounts per
category are summed once, so each coupon's eligible amount is a lookup, not a loop over lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.events.types import Amount, Item
from core.money import CENT
from coupons.errors import InvalidCart

ZERO = Decimal("0.00")
MAX_CART_BYTES = 1024 * 1024  # a cart file read by `coupons eligible`; /dev/zero is not a cart


def _cents(amount: Decimal) -> Decimal:
    """Amounts in cents throughout, so discounts computed from them need no rounding."""
    return amount.quantize(CENT)


@dataclass(frozen=True)
class CartLine:
    sku: str
    name: str
    category: str
    price: Decimal
    qty: int

    @property
    def amount(self) -> Decimal:
        return self.price * self.qty


@dataclass(frozen=True)
class Cart:
    """Lines and the total thresholds start from (the given total, else the lines' sum)."""

    lines: tuple[CartLine, ...]
    total: Decimal
    shipping: Decimal = ZERO
    by_category: Mapping[str, Decimal] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        lines: Sequence[CartLine],
        *,
        total: Decimal | None = None,
        shipping: Decimal | None = None,
    ) -> Cart:
        by_category: dict[str, Decimal] = {}
        for line in lines:
            by_category[line.category] = by_category.get(line.category, ZERO) + line.amount
        by_category = {category: _cents(amount) for category, amount in by_category.items()}
        computed = sum(by_category.values(), ZERO)
        return cls(
            lines=tuple(lines),
            total=_cents(computed if total is None else total),
            shipping=_cents(shipping or ZERO),
            by_category=by_category,
        )

    @property
    def item_count(self) -> int:
        return sum(line.qty for line in self.lines)

    def amount_in(self, categories: frozenset[str]) -> Decimal:
        """What the lines of these categories add up to."""
        return sum((self.by_category.get(c, ZERO) for c in categories), ZERO)


class CartInput(BaseModel):
    """The cart JSON ``coupons eligible --cart`` reads; other keys (cart_id…) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    items: list[Item] = Field(default_factory=list)
    total: Amount | None = None
    shipping: Amount | None = None


def cart_from_items(
    items: Sequence[Item], *, total: Decimal | None = None, shipping: Decimal | None = None
) -> Cart:
    lines = [
        CartLine(sku=i.sku, name=i.name, category=i.category, price=i.price, qty=i.qty)
        for i in items
    ]
    return Cart.of(lines, total=total, shipping=shipping)


def parse_cart(data: Any) -> Cart:
    """A cart from decoded JSON; InvalidCart says which field is wrong."""
    try:
        given = CartInput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the cart"
        raise InvalidCart(
            f'{where}: {first["msg"]}; a cart is {{"items": [{{"sku", "price", "qty", '
            f'"category"}}], "total": optional}}'
        ) from None
    return cart_from_items(given.items, total=given.total, shipping=given.shipping)


def read_cart_file(path: Path) -> Cart:
    """A cart from a JSON file (``-`` is not supported: carts are small files)."""
    try:
        with path.open("rb") as stream:
            text = stream.read(MAX_CART_BYTES + 1)
        if len(text) > MAX_CART_BYTES:
            raise InvalidCart(f"{path}: over {MAX_CART_BYTES // 2**20} MB; a cart is a small file")
        data = json.loads(text.decode("utf-8"))
    except FileNotFoundError:
        raise InvalidCart(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidCart(f"{path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidCart(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise InvalidCart(f"{path}: JSON nested too deeply for a cart") from None
    return parse_cart(data)

"""Seeded synthetic shop data that every benchmark shares.

``generate(scale, seed)`` returns a :class:`Dataset` of shop events as JSON-ready dicts, exactly
as the shop sends them (CONTRACT.md, Events). ``scale=1.0`` means:

* 10,000 ``member.registered`` events, registrations spread over the three years before ``end``;
* 100,000 ``order.paid`` events over the two years before ``end`` (never before the buyer
  registered), 1-5 items each from :data:`CATALOGUE`, about 12% with a coupon code and 30% with
  the ``cart_id`` of a tracked cart;
* about 5,000 ``order.refunded`` events (5% of orders, half of them partial);
* about 50,000 ``cart.updated`` events: every tracked cart before its order (a third of them
  with an earlier, smaller version too) plus 10,000 abandoned carts.

Every count scales linearly. The same ``seed`` always gives the same events: each part draws
from its own ``random.Random`` stream and ``end`` is a fixed date, never the wall clock. Times are
time-zone aware (sent in the shop's +08:00); money is built from integer cents, never floats.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from random import Random
from typing import Any, NamedTuple, TypeVar

Payload = dict[str, Any]
T = TypeVar("T")

MEMBERS_PER_SCALE = 10_000
ORDERS_PER_SCALE = 100_000
REFUND_RATE = 0.05
CART_RATE = 0.30
ABANDONED_CARTS_PER_ORDER = 0.10
COUPON_RATE = 0.12
REFERRED_RATE = 0.15

DEFAULT_END = datetime(2026, 11, 30, tzinfo=UTC)
# The shop sends Shanghai time; there is no DST there, so a fixed offset is exact (and fast).
SHOP_ZONE = timezone(timedelta(hours=8), "Asia/Shanghai")
DAY = 86_400
ORDER_WINDOW = 730 * DAY
REGISTRATION_WINDOW = 1_095 * DAY


def money(cents: int) -> str:
    """An amount of integer cents as the shop sends it: a decimal string with 2 places."""
    return str(Decimal(cents).scaleb(-2))


class Product(NamedTuple):
    sku: str
    name: str
    category: str
    price_cents: int

    @property
    def item(self) -> Payload:
        """The product as an order or cart line of one unit."""
        return {
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "price": money(self.price_cents),
            "qty": 1,
        }


CATALOGUE: tuple[Product, ...] = (
    Product("K-100", "Cast iron pan", "kitchen", 32_800),
    Product("K-010", "Knife set", "kitchen", 320_000),
    Product("K-120", "Pour-over kettle", "kitchen", 26_900),
    Product("K-130", "Bamboo steamer", "kitchen", 8_850),
    Product("K-140", "Rice cooker", "kitchen", 89_900),
    Product("H-001", "Linen sofa cover", "home", 680_000),
    Product("H-020", "Wool rug", "home", 760_000),
    Product("H-030", "Ceramic vase", "home", 15_900),
    Product("H-040", "Scented candle", "home", 6_990),
    Product("H-050", "Cotton bed sheets", "home", 45_900),
    Product("P-005", "Face cream", "personal_care", 15_900),
    Product("P-010", "Shampoo", "personal_care", 5_990),
    Product("P-020", "Sunscreen SPF50", "personal_care", 12_800),
    Product("P-030", "Electric toothbrush", "personal_care", 39_900),
    Product("A-100", "Merino sweater", "apparel", 59_900),
    Product("A-110", "Running shoes", "apparel", 79_900),
    Product("A-120", "Silk scarf", "apparel", 29_900),
    Product("A-130", "Cotton T-shirt", "apparel", 9_900),
    Product("E-200", "Wireless earbuds", "electronics", 99_900),
    Product("E-210", "Power bank", "electronics", 19_900),
    Product("E-220", "Smart speaker", "electronics", 49_900),
    Product("F-300", "Oolong tea", "food", 16_800),
    Product("F-310", "Mooncake box", "food", 25_800),
    Product("F-320", "Coffee beans", "food", 11_800),
    Product("G-001", "Gift card 500", "gift_card", 50_000),
    Product("G-002", "Gift card 100", "gift_card", 10_000),
    Product("G-003", "Gift card 1000", "gift_card", 100_000),
)
COUPON_CODES = ("WELCOME20", "SPRING10", "VIP50", "FREESHIP", "DOUBLE11", "BIRTHDAY30")
ITEM_COUNTS = (1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5)
QUANTITIES = (1, 1, 1, 1, 1, 1, 2, 2, 3)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``"a:b c:d"`` as ``(("a", "b"), ("c", "d"))``: keeps tables of names compact."""
    return tuple((left, right) for left, _, right in (w.partition(":") for w in text.split()))


# (first name, its latin spelling for the e-mail address)
ZH_NAMES = _pairs(
    "伟:wei 芳:fang 娜:na 敏:min 静:jing 丽:li 强:qiang 磊:lei "
    "军:jun 洋:yang 艳:yan 杰:jie 涛:tao 明:ming 秀英:xiuying "
    "慧:hui 颖:ying 浩:hao 兰:lan 婷:ting"
)
EN_NAMES = _words(
    "Alice Bob Carol David Emma Frank Grace Henry Ivy Jack Kate Leo Mia Noah Olivia Peter Ruby "
    "Sam Tina Zoe"
)
OTHER_ZONES = (
    "Asia/Hong_Kong",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Europe/London",
    "America/Los_Angeles",
    "Australia/Sydney",
)
CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_LINES = {product: product.item for product in CATALOGUE}


@dataclass(frozen=True)
class Dataset:
    """One generated shop history; each list is in time order."""

    members: list[Payload]
    orders: list[Payload]
    refunds: list[Payload]
    carts: list[Payload]

    def events(self) -> Iterator[Payload]:
        """Every event, merged in time order (as a shop would send them)."""
        parts = (self.members, self.carts, self.orders, self.refunds)
        return heapq.merge(*parts, key=lambda e: e["occurred_at"])

    def __len__(self) -> int:
        return len(self.members) + len(self.orders) + len(self.refunds) + len(self.carts)


def generate(scale: float = 1.0, seed: int = 0, *, end: datetime = DEFAULT_END) -> Dataset:
    """A shop history of ``scale`` × (10,000 members, 100,000 orders), reproducible by ``seed``."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0 (got {scale}); 1.0 means 100,000 orders")
    members = generate_members(max(1, round(MEMBERS_PER_SCALE * scale)), seed=seed, end=end)
    orders = generate_orders(members, round(ORDERS_PER_SCALE * scale), seed=seed, end=end)
    refunds = generate_refunds(orders, seed=seed, end=end)
    return Dataset(members, orders, refunds, generate_carts(orders, seed=seed, end=end))


def generate_members(count: int, *, seed: int, end: datetime = DEFAULT_END) -> list[Payload]:
    """``member.registered`` events, in registration order; some were referred by earlier ones."""
    rng = Random(f"{seed}:members")
    end_ts = int(end.timestamp())
    times = sorted(end_ts - _below(rng, REGISTRATION_WINDOW) for _ in range(count))
    codes: list[str] = []
    result = []
    for index, ts in enumerate(times, start=1):
        result.append(_member_event(rng, index, ts, codes))
        codes.append(result[-1]["data"]["referral_code"])
    return result


def _member_event(rng: Random, index: int, ts: int, earlier_codes: list[str]) -> Payload:
    member_id = f"m-{index:06d}"
    zone = "Asia/Shanghai" if rng.random() < 0.85 else _pick(rng, OTHER_ZONES)
    chinese = rng.random() < (0.9 if zone == "Asia/Shanghai" else 0.3)
    name, latin = _pick(rng, ZH_NAMES) if chinese else (n := _pick(rng, EN_NAMES), n.lower())
    data: Payload = {
        "first_name": name,
        "email": f"{latin}.{index}@example.com",
        "phone": f"+861{_pick(rng, '3578')}{_below(rng, 10**9):09d}",
        "timezone": zone,
        "locale": "zh-CN" if chinese else "en",
        "consents": {
            "email": rng.random() < 0.7,
            "sms": rng.random() < 0.5,
            "push": rng.random() < 0.6,
        },
        "referral_code": f"{''.join(rng.choices(CODE_LETTERS, k=3))}{index:05d}",
    }
    if rng.random() < 0.92:
        data["birthday"] = (date(1960, 1, 1) + timedelta(days=_below(rng, 16_800))).isoformat()
    if rng.random() < 0.6:
        data["push_token"] = f"push-{member_id}"
    if earlier_codes and rng.random() < REFERRED_RATE:
        data["referred_by"] = _pick(rng, earlier_codes)
    return _event(f"evt-m-{index:06d}", "member.registered", ts, member_id, data)


def generate_orders(
    members: list[Payload], count: int, *, seed: int, end: datetime = DEFAULT_END
) -> list[Payload]:
    """``order.paid`` events in time order; a few members buy a lot, some hardly ever."""
    rng = Random(f"{seed}:orders")
    end_ts = int(end.timestamp())
    start = end_ts - ORDER_WINDOW
    buyers = [(m["member_id"], max(start, _timestamp(m["occurred_at"]))) for m in members]
    weights = [0.05 if rng.random() < 0.3 else rng.paretovariate(3.0) for _ in buyers]
    chosen = rng.choices(buyers, weights=weights, k=count)
    placed = sorted((lo + _below(rng, end_ts - lo + 1), member) for member, lo in chosen)
    return [_order_event(rng, i, ts, member) for i, (ts, member) in enumerate(placed, start=1)]


def _order_event(rng: Random, index: int, ts: int, member_id: str) -> Payload:
    products = _sample_products(rng, _pick(rng, ITEM_COUNTS))
    items, total = _items(rng, products)
    data: Payload = {
        "order_id": f"o-{index:07d}",
        "total": money(total),
        "currency": "CNY",
        "items": items,
        "coupon_codes": [_pick(rng, COUPON_CODES)] if rng.random() < COUPON_RATE else [],
        "points_redeemed": 0,
    }
    if rng.random() < CART_RATE:
        data["cart_id"] = f"c-{index:07d}"
    return _event(f"evt-o-{index:07d}", "order.paid", ts, member_id, data)


def _items(rng: Random, products: Iterable[Product]) -> tuple[list[Payload], int]:
    items, total = [], 0
    for product in products:
        qty = _pick(rng, QUANTITIES)
        total += product.price_cents * qty
        items.append({**_LINES[product], "qty": qty})
    return items, total


def generate_refunds(
    orders: list[Payload], *, seed: int, end: datetime = DEFAULT_END, rate: float = REFUND_RATE
) -> list[Payload]:
    """``order.refunded`` events for ``rate`` of the orders, half full and half partial."""
    rng = Random(f"{seed}:refunds")
    end_ts = int(end.timestamp())
    result: list[Payload] = []
    for order in orders:
        if rng.random() >= rate:
            continue
        total = _cents(order["data"]["total"])
        amount = total if rng.random() < 0.5 else _partial(rng, order["data"]["items"], total)
        ts = min(end_ts, _timestamp(order["occurred_at"]) + _between(rng, 3_600, 30 * DAY))
        data = {"order_id": order["data"]["order_id"], "amount": money(amount)}
        event_id = f"evt-r-{len(result) + 1:07d}"
        result.append(_event(event_id, "order.refunded", ts, order["member_id"], data))
    return sorted(result, key=lambda e: e["occurred_at"])


def _partial(rng: Random, items: list[Payload], total: int) -> int:
    """One returned unit when the order has several, else a price adjustment."""
    if len(items) > 1 or items[0]["qty"] > 1:
        return _cents(_pick(rng, items)["price"])
    return _between(rng, 1, total)


def generate_carts(
    orders: list[Payload],
    *,
    seed: int,
    end: datetime = DEFAULT_END,
    abandoned_per_order: float = ABANDONED_CARTS_PER_ORDER,
) -> list[Payload]:
    """``cart.updated`` events: each tracked cart before its order is paid, and abandoned carts."""
    rng = Random(f"{seed}:carts")
    end_ts = int(end.timestamp())
    result: list[Payload] = []
    for order in orders:
        if "cart_id" in order["data"]:
            result.extend(_converted_cart(rng, order))
    for index in range(1, round(len(orders) * abandoned_per_order) + 1):
        template = _pick(rng, orders)
        ts = min(end_ts, _timestamp(template["occurred_at"]) + _between(rng, DAY, 30 * DAY))
        items, total = _items(rng, _sample_products(rng, _pick(rng, ITEM_COUNTS[:8])))
        data = {"cart_id": f"c-a-{index:07d}", "total": money(total), "items": items}
        event_id = f"evt-c-a-{index:07d}"
        result.append(_event(event_id, "cart.updated", ts, template["member_id"], data))
    return sorted(result, key=lambda e: e["occurred_at"])


def _converted_cart(rng: Random, order: Payload) -> list[Payload]:
    data, member_id = order["data"], order["member_id"]
    last = _timestamp(order["occurred_at"]) - _between(rng, 60, 3 * 3_600)
    final = {"cart_id": data["cart_id"], "total": data["total"], "items": data["items"]}
    versions = [_event(f"evt-{data['cart_id']}-2", "cart.updated", last, member_id, final)]
    if rng.random() < 1 / 3:
        first_item = data["items"][0]
        earlier = {
            "cart_id": data["cart_id"],
            "items": [first_item],
            "total": money(_cents(first_item["price"]) * first_item["qty"]),
        }
        ts = last - _between(rng, 60, DAY)
        versions.insert(
            0, _event(f"evt-{data['cart_id']}-1", "cart.updated", ts, member_id, earlier)
        )
    return versions


def _pick(rng: Random, options: Sequence[T]) -> T:
    # The hot path of 100,000 orders: rng.choice and rng.sample take more pure-Python steps
    # (sample checks the Sequence ABC on every call). The bias of int(random() * n), below
    # 2**-40 for these sizes, does not matter for benchmark data.
    return options[int(rng.random() * len(options))]


def _below(rng: Random, limit: int) -> int:
    return int(rng.random() * limit)


def _between(rng: Random, low: int, high: int) -> int:
    """Like ``rng.randrange(low, high)``."""
    return low + int(rng.random() * (high - low))


def _sample_products(rng: Random, count: int) -> list[Product]:
    picked: list[Product] = []
    while len(picked) < count:
        product = _pick(rng, CATALOGUE)
        if product not in picked:
            picked.append(product)
    return picked


def _event(event_id: str, kind: str, ts: int, member_id: str, data: Payload) -> Payload:
    at = datetime.fromtimestamp(ts, SHOP_ZONE).isoformat()
    return {"id": event_id, "type": kind, "occurred_at": at, "member_id": member_id, "data": data}


def _timestamp(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def _cents(amount: str) -> int:
    return int(Decimal(amount).scaleb(2))


def to_jsonl(events: Iterable[Payload]) -> Iterator[str]:
    """Each event as one JSON line (UTF-8 text, newline-terminated, as read from a file)."""
    for event in events:
        yield json.dumps(event, ensure_ascii=False) + "\n"


def event_rows(
    events: Iterable[Payload], *, source: str, received_at: datetime
) -> Iterator[Payload]:
    """Rows of the ``events`` table for a raw-insert baseline: typed values, times in UTC."""
    for event in events:
        yield {
            "id": event["id"],
            "type": event["type"],
            "occurred_at": datetime.fromisoformat(event["occurred_at"]).astimezone(UTC),
            "member_id": event["member_id"],
            "data": event["data"],
            "source": source,
            "received_at": received_at,
        }


def order_rows(events: Iterable[Payload]) -> Iterator[Payload]:
    """Rows of the ``orders`` table for the ``order.paid`` events among ``events``."""
    for event in events:
        if event["type"] != "order.paid":
            continue
        data = event["data"]
        yield {
            "order_id": data["order_id"],
            "member_id": event["member_id"],
            "total": Decimal(data["total"]),
            "currency": data["currency"],
            "paid_at": datetime.fromisoformat(event["occurred_at"]).astimezone(UTC),
            "items": data["items"],
            "coupon_codes": data["coupon_codes"],
            "points_redeemed": data["points_redeemed"],
            "cart_id": data.get("cart_id"),
            "event_id": event["id"],
        }

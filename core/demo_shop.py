"""The demo's simulated shoppers: a seeded population of a tea shop's members and what they do.

Pure apart from its seeded random generator: :class:`Shoppers` writes the events of one day
(registrations, carts, orders, refunds, reviews, shares) as the shop would send them, and reads
the engine only through what a shop sees, the outbox lines sent so far, so that a member who got a
cart reminder or a coupon is more likely to come back. The response rates are the simulation's
assumptions (:data:`RETURN_AFTER`), stated in the demo's output; the engine measures them back.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZH_NAMES = "伟 芳 娜 敏 静 丽 强 磊 洋 艳 杰 娟 涛 明 超 霞 平 刚 桂英 玉兰 晨 悦 琳 浩".split()  # noqa: SIM905
EN_NAMES = "Amy Ben Chloe Dan Emma Finn Grace Hugo Isla Jack Kate Leo Mia Noah Olivia Paul".split()  # noqa: SIM905
ABROAD = ("Europe/London", "America/New_York", "Asia/Singapore", "Australia/Sydney")
# (sku, name, category, price): what the example program's coupons and earning rules know
CATALOGUE = (
    ("OL-030", "Tieguanyin oolong", "tea", "90.00"),
    ("BC-010", "Jasmine silver needle", "tea", "134.00"),
    ("WT-020", "White peony", "tea", "158.00"),
    ("TW-310", "Bamboo tea tray", "teaware", "228.00"),
    ("DH-050", "Da Hong Pao", "tea", "268.00"),
    ("TW-220", "Celadon tea cups (set of 6)", "teaware", "396.00"),
    ("LJ-100", "Longjing spring harvest", "tea", "580.00"),
    ("TW-900", "Glass gongfu set", "teaware", "899.00"),
    ("PU-2006", "2006 aged Pu'er cake", "tea", "4400.00"),
)
COLLECTOR = ("YX-001", "Yixing clay teapot", "teaware", "6800.00")
# Chance that a member with an abandoned cart pays for it after an outbox message of this
# template (within a day of it), and on any day without one (up to four days).
RETURN_AFTER = {"cart-coupon": 0.45, "cart-reminder": 0.22}
RETURN_UNPROMPTED = 0.06
CART_CAMPAIGN = "cart-abandonment"

# The shop's checkout: (member id, cart, when) → the coupon codes it applies and their discount.
Checkout = Callable[[str, Sequence[Mapping[str, Any]], datetime], tuple[list[str], Decimal]]


@dataclass
class Member:
    member_id: str
    number: int
    zone: ZoneInfo
    big_spender: bool
    registered_at: datetime | None = None
    orders: int = 0


@dataclass
class OpenCart:
    member_id: str
    cart_id: str
    data: dict[str, Any]
    left_at: datetime
    answered: set[str] = field(default_factory=set)  # outbox message ids already rolled for


@dataclass
class DayEvents:
    """One day's events, in time order, with what the day's line of the demo counts."""

    events: list[dict[str, Any]]
    joined: int = 0
    carts: int = 0
    returned: int = 0  # abandoned carts paid for this day


class Shoppers:
    """A seeded population: ``members`` shoppers, ``joining`` of whom register during the days
    :meth:`day` is asked for after ``opens``; the rest registered before it."""

    def __init__(
        self,
        *,
        seed: int,
        members: int,
        joining: int,
        opens: datetime,
        checkout: Checkout | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.checkout = checkout
        self.used_codes: set[str] = set()
        self.opens = opens
        self.members = [self._member(n) for n in range(1, members + 1)]
        self.waiting = self.members[members - joining :]  # register on the days after opens
        self.carts: dict[str, OpenCart] = {}
        self.later: list[dict[str, Any]] = []  # events generated for after the day asked
        self._ids = 0

    def history(self, since: datetime) -> list[dict[str, Any]]:
        """The events before ``opens``: registrations since ``since`` and their orders."""
        events: list[dict[str, Any]] = []
        span = (self.opens - since).total_seconds()
        for member in self.members[: len(self.members) - len(self.waiting)]:
            joined = since + timedelta(seconds=self.rng.uniform(0, span * 0.9))
            events.append(self._registered(member, joined, referrer=self._referrer(member)))
            at = joined
            for _ in range(self.rng.choice((0, 1, 1, 2, 2, 3, 4))):
                at += timedelta(days=self.rng.expovariate(1 / 25))
                if at >= self.opens:
                    break
                events += self._order(member, at, self._items(member))
        return self._until(events, self.opens)

    def day(self, day: date, outbox: Iterable[Mapping[str, Any]]) -> DayEvents:
        """The events of business day ``day``, given the outbox lines sent before it."""
        start = datetime.combine(day, time(0), SHANGHAI)
        result = DayEvents(events=[])
        result.returned = self._returns(start, outbox, result.events)
        for member in self._joining_on(day):
            at = start + timedelta(hours=self.rng.uniform(8, 22))
            result.events.append(self._registered(member, at, referrer=self._referrer(member)))
            result.joined += 1
        for member in self.members:
            if member.registered_at is None or member.registered_at >= start:
                continue
            new = member.orders == 0 and start - member.registered_at < timedelta(days=5)
            if self.rng.random() < 0.07:
                result.carts += 1
                result.events += self._cart(member, start)
            elif self.rng.random() < (0.12 if new else 0.015):
                local = start.astimezone(member.zone) + timedelta(hours=self.rng.uniform(9, 22))
                result.events += self._order(member, local, self._items(member))
        result.events = self._until(result.events, start + timedelta(days=1))
        return result

    def _until(self, events: list[dict[str, Any]], end: datetime) -> list[dict[str, Any]]:
        """The events (and those held from before) before ``end``; later ones are held."""
        cut = end.astimezone(SHANGHAI).isoformat(timespec="seconds")
        pending = sorted([*self.later, *events], key=_when)
        self.later = [e for e in pending if _when(e) >= cut]
        return [e for e in pending if _when(e) < cut]

    # --- what members do ---------------------------------------------------------------

    def _cart(self, member: Member, start: datetime) -> list[dict[str, Any]]:
        at = start + timedelta(hours=self.rng.uniform(9, 22))
        cart_id = f"c-{member.number:04d}-{self._next()}"
        items = self._items(member)
        data = {"cart_id": cart_id, "total": _total(items), "items": items}
        event = self._event("cart.updated", member, at, data)
        if self.rng.random() < 0.4:  # paid at once: never abandoned
            paid = at + timedelta(minutes=self.rng.uniform(5, 80))
            return [event, *self._order(member, paid, items, cart_id=cart_id)]
        self.carts[cart_id] = OpenCart(member.member_id, cart_id, data, at)
        return [event]

    def _returns(self, start: datetime, outbox: Iterable[Mapping[str, Any]], out: list) -> int:
        """Abandoned carts paid for today: after a message of the cart campaign, or unprompted."""
        by_member: dict[str, list[Mapping[str, Any]]] = {}
        for line in outbox:
            if line.get("campaign_id") == CART_CAMPAIGN:
                by_member.setdefault(str(line["member_id"]), []).append(line)
        returned = 0
        for cart in list(self.carts.values()):
            if start - cart.left_at > timedelta(days=4):
                del self.carts[cart.cart_id]
                continue
            when = self._return_time(cart, by_member.get(cart.member_id, []), start)
            if when is None:
                continue
            member = self._by_id(cart.member_id)
            out += self._order(member, when, cart.data["items"], cart_id=cart.cart_id)
            del self.carts[cart.cart_id]
            returned += 1
        return returned

    def _return_time(
        self, cart: OpenCart, lines: list[Mapping[str, Any]], start: datetime
    ) -> datetime | None:
        for line in lines:
            sent = datetime.fromisoformat(str(line["sent_at"]))
            if sent < cart.left_at or line["message_id"] in cart.answered:
                continue
            cart.answered.add(str(line["message_id"]))
            if self.rng.random() < RETURN_AFTER.get(str(line.get("template")), 0.0):
                return max(start, sent) + timedelta(hours=self.rng.uniform(0.5, 20))
        if self.rng.random() < RETURN_UNPROMPTED:
            return start + timedelta(hours=self.rng.uniform(9, 22))
        return None

    def _order(
        self, member: Member, at: datetime, items: list[dict[str, Any]], cart_id: str | None = None
    ) -> list[dict[str, Any]]:
        member.orders += 1
        order_id = f"o-{member.number:04d}-{self._next()}"
        total = Decimal(_total(items))
        data: dict[str, Any] = {"order_id": order_id, "total": str(total), "items": items}
        data["currency"] = "CNY"
        if self.checkout is not None and at >= self.opens:  # the shop applies the best codes
            codes, discount = self.checkout(member.member_id, items, at)
            codes = [code for code in codes if code not in self.used_codes]
            if codes:
                self.used_codes.update(codes)
                data["coupon_codes"] = codes
                data["total"] = str(total - discount)
        if cart_id:
            data["cart_id"] = cart_id
        events = [self._event("order.paid", member, at, data)]
        roll = self.rng.random()
        if roll < 0.05:
            share = self.rng.choice((Decimal("1"), Decimal("0.5")))
            amount = (Decimal(data["total"]) * share).quantize(Decimal("0.01"))
            refund = {"order_id": order_id, "amount": str(amount)}
            events.append(self._event("order.refunded", member, at + timedelta(days=3), refund))
        elif roll < 0.30:
            review = {"order_id": order_id, "sku": items[0]["sku"], "has_photo": roll < 0.2}
            events.append(self._event("review.posted", member, at + timedelta(days=2), review))
        elif roll < 0.38:
            post = {"channel": "wechat", "url": f"https://tea.example.com/p/{items[0]['sku']}"}
            events.append(self._event("content.shared", member, at + timedelta(hours=1), post))
        return events

    def _items(self, member: Member) -> list[dict[str, Any]]:
        if member.big_spender and self.rng.random() < 0.5:
            choices = [CATALOGUE[-1], CATALOGUE[-2], COLLECTOR]
        else:
            choices = list(CATALOGUE[:-1])
        picked = self.rng.sample(choices, k=self.rng.choice((1, 1, 2)))
        return [
            {"sku": sku, "name": name, "category": category, "price": price,
             "qty": self.rng.choice((1, 1, 2))}
            for sku, name, category, price in picked
        ]  # fmt: skip

    # --- who they are ------------------------------------------------------------------

    def _member(self, n: int) -> Member:
        abroad = self.rng.random() < 0.15
        zone = ZoneInfo(self.rng.choice(ABROAD)) if abroad else SHANGHAI
        return Member(f"m-{n:04d}", n, zone, big_spender=self.rng.random() < 0.12)

    def _registered(self, member: Member, at: datetime, *, referrer: str | None) -> dict:
        member.registered_at = at
        english = member.zone != SHANGHAI or self.rng.random() < 0.1
        consents = {
            "email": self.rng.random() < 0.85,
            "sms": not english and self.rng.random() < 0.6,
            "push": self.rng.random() < 0.7,
        }
        birthday = date(self.rng.randint(1965, 2004), 1, 1) + timedelta(
            days=self.rng.randint(0, 364)
        )
        data: dict[str, Any] = {
            "first_name": self.rng.choice(EN_NAMES if english else ZH_NAMES),
            "email": f"{member.member_id}@example.com",
            "phone": f"+86139{member.number:08d}",
            "birthday": birthday.isoformat(),
            "timezone": member.zone.key,
            "locale": "en" if english else "zh-CN",
            "consents": consents,
            "referral_code": f"TEA{member.number:04d}",
        }
        if consents["push"]:
            data["push_token"] = f"push-{member.member_id}"
        if referrer:
            data["referred_by"] = referrer
        return self._event("member.registered", member, at, data)

    def _referrer(self, member: Member) -> str | None:
        earlier = [m for m in self.members if m.registered_at is not None and m.orders]
        if not earlier or self.rng.random() > 0.3:
            return None
        return f"TEA{self.rng.choice(earlier).number:04d}"

    def _joining_on(self, day: date) -> list[Member]:
        days_left = max(1, 14 - (day - self.opens.date()).days)
        count = min(len(self.waiting), round(len(self.waiting) / days_left))
        joining, self.waiting = self.waiting[:count], self.waiting[count:]
        return joining

    def _by_id(self, member_id: str) -> Member:
        return self.members[int(member_id.removeprefix("m-")) - 1]

    def _event(self, kind: str, member: Member, at: datetime, data: dict) -> dict[str, Any]:
        return {
            "id": f"e-{self._next()}",
            "type": kind,
            "occurred_at": at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
            "member_id": member.member_id,
            "data": data,
        }

    def _next(self) -> int:
        self._ids += 1
        return self._ids


def _when(event: Mapping[str, Any]) -> str:
    return str(event["occurred_at"])


def _total(items: list[dict[str, Any]]) -> str:
    return str(sum((Decimal(i["price"]) * i["qty"] for i in items), Decimal("0.00")))

"""A served Tea House for the checkout and points tests: one member, Mei (zh-CN, a Silver Bud
since a 3,200.00 order two months ago, 3,400 usable points), two coupons in her wallet, and
API keys of each scope, behind a real uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from live_server import http_runtime, live_server

from core.clock import FixedClock, set_clock
from core.events.intake import Intake, ingest
from core.http.app import create_app
from core.http.auth import create_key
from core.runtime import Runtime
from coupons.wallet import issue_coupon

NOW = datetime(2027, 4, 5, 4, 0, tzinfo=UTC)  # noon in Shanghai, inside the spring harvest
MEMBER = "m-mei"
BALANCE = 3400  # the welcome 200 and 3,200 for the order, long past its return window
CART = [{"sku": "T-2", "name": "Dragon Well", "category": "tea", "price": "250.00", "qty": 2}]


@dataclass(frozen=True)
class Shop:
    base: str
    runtime: Runtime
    keys: dict[str, str]  # scope → a key with only that scope
    ladder: str  # Mei's spring-harvest-ladder code: 80.00 off a 500.00 cart
    first_brew: str  # Mei's first-brew-15 code: not for her, she has ordered before
    app: FastAPI | None = None  # the served app

    def post(
        self, path: str, body: Any = None, *, scope: str | None = "checkout", **headers: str
    ) -> httpx.Response:
        if scope is not None:
            headers["Authorization"] = f"Bearer {self.keys[scope]}"
        return httpx.post(f"{self.base}{path}", json=body, headers=headers, timeout=30)

    def validate(self, **changes: Any) -> httpx.Response:
        return self.post("/v1/checkout/validate", cart_body(**changes))

    def reserve(self, order_id: str, **changes: Any) -> httpx.Response:
        return self.post("/v1/checkout/reserve", cart_body(order_id=order_id, **changes))


def cart_body(**changes: Any) -> dict[str, Any]:
    return {"member_id": MEMBER, "items": CART, **changes}


def member_events() -> list[dict[str, Any]]:
    registered = {"first_name": "Mei", "locale": "zh-CN", "timezone": "Asia/Shanghai"}
    line = {**CART[0], "price": "3200.00", "qty": 1}
    order = {"order_id": "o-0", "total": "3200.00", "items": [line]}
    return [
        _event("reg-mei", "member.registered", registered, NOW - timedelta(days=90)),
        _event("paid-o-0", "order.paid", order, NOW - timedelta(days=60)),
    ]


def _event(event_id: str, kind: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "occurred_at": at.isoformat(),
        "member_id": MEMBER,
        "data": data,
    }


@dataclass(frozen=True)
class _Setup:
    runtime: Runtime
    keys: dict[str, str]
    codes: list[str]


def _set_up(db_url: str, examples: Path, folder: Path, **settings: object) -> _Setup:
    set_clock(FixedClock(NOW))
    runtime = http_runtime(db_url, examples / "program", folder, **settings)
    program = runtime.program
    report = ingest(member_events(), Intake(engine=runtime.engine, now=NOW, program=program))
    assert report.rejected == 0, report.rejections
    with runtime.engine.begin() as conn:
        codes = [
            issue_coupon(
                conn, program, coupon_id=coupon, member_id=MEMBER, now=NOW - timedelta(hours=1)
            ).code
            for coupon in ("spring-harvest-ladder", "first-brew-15")
        ]
    scopes = ("checkout", "admin", "events")
    keys = {scope: create_key(runtime.engine, f"{scope} key", [scope])[1] for scope in scopes}
    return _Setup(runtime, keys, codes)


def serve_shop(db_url: str, examples: Path, folder: Path, **settings: object) -> Iterator[Shop]:
    """Set the shop up, serve it, yield it (a fixture's body)."""
    setup = _set_up(db_url, examples, folder, **settings)
    app = create_app(setup.runtime)
    with live_server(setup.runtime, app) as base:
        yield Shop(base, setup.runtime, setup.keys, *setup.codes, app=app)

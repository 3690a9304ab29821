"""The shop ``benchmarks/bench_http.py`` serves: the example program with a 50-coupon wallet, a
gold member who holds all 50 and a 20-line cart, members for the event batches, and API keys.

The program is ``examples/home-goods/program`` (the shared example's copy) with its 8 coupons
plus 42 variants of them, written to a folder of the run: the served engine loads it from disk
like any deployment. Validity windows are moved around the real clock (the server runs on it),
half open now and half opening tomorrow, so every coupon can be issued and some are not yet
valid at checkout.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from sqlalchemy import Engine

from benchmarks.datagen import CATALOGUE, generate_members, money
from core.events.intake import Intake, ingest
from core.http.auth import create_key
from core.program.loader import Program, load_program
from coupons.wallet import issue_coupon

EXAMPLE_PROGRAM = Path(__file__).resolve().parents[1] / "examples" / "home-goods" / "program"
MEMBER = "m-bench"
WALLET_SIZE = 50
CART_LINES = 20
ENTERED = (1, 7)  # the wallet codes the shopper typed in (two stacking groups)
SCOPES = ("checkout", "events")
POINTS = 500
GROUPS = ("platform", "default", "member_day", "shipping", "brand_a", "brand_b")


@dataclass(frozen=True)
class Shop:
    """What the benchmark needs of the seeded database."""

    program_dir: Path
    program: Program
    keys: dict[str, str]  # scope → plaintext key
    codes: list[str]  # the member's wallet, in coupon order
    members: list[str]  # the members the event batches pay orders for
    cart: dict[str, Any]  # the body of POST /v1/checkout/validate


def write_program(folder: Path, *, now: datetime) -> Path:
    """The example program with 50 coupons, in ``folder/program``."""
    target = folder / "program"
    shutil.copytree(EXAMPLE_PROGRAM, target)
    yaml = YAML(typ="safe")
    examples = yaml.load((EXAMPLE_PROGRAM / "coupons.yaml").read_text(encoding="utf-8"))
    originals = examples["coupons"]
    coupons = [_variant(originals[i % len(originals)], i, now=now) for i in range(WALLET_SIZE)]
    with (target / "coupons.yaml").open("w", encoding="utf-8") as out:
        yaml.dump({"coupons": coupons}, out)
    return target


def _variant(example: dict[str, Any], index: int, *, now: datetime) -> dict[str, Any]:
    coupon = json.loads(json.dumps(example, default=str))  # a deep copy
    if index >= 8:  # the first 8 keep their ids: the campaigns issue them by id
        coupon["id"] = f"{coupon['id']}-v{index:02d}"
    stacking = coupon.setdefault("stacking", {})
    if not stacking.get("exclusive") and index >= 8:
        stacking["group"] = GROUPS[index % len(GROUPS)]
    if "valid_between" in coupon:
        start = now - timedelta(days=3) if index % 2 else now + timedelta(days=1)
        coupon["valid_between"] = {
            "from": start.isoformat(),
            "to": (start + timedelta(days=10)).isoformat(),
        }
    return coupon


def set_up(engine: Engine, folder: Path, *, members: int) -> Shop:
    """Write the program, seed the members and the wallet, create the keys."""
    now = datetime.now(UTC)
    program_dir = write_program(folder, now=now)
    program = load_program(program_dir)
    others = generate_members(members, seed=1)
    report = ingest([*_bench_member(now), *others], Intake(engine=engine, now=now, program=program))
    if report.rejected:
        raise RuntimeError(f"seeding the shop rejected events: {report.rejections[:3]}")
    with engine.begin() as conn:
        codes = [
            issue_coupon(
                conn, program, coupon_id=coupon_id, member_id=MEMBER, now=now - timedelta(hours=1)
            ).code
            for coupon_id in program.coupons
        ]
    keys = {scope: create_key(engine, f"bench {scope}", [scope])[1] for scope in SCOPES}
    member_ids = [event["member_id"] for event in others]
    return Shop(program_dir, program, keys, codes, member_ids, cart_body(codes))


def _bench_member(now: datetime) -> list[dict[str, Any]]:
    """A gold member (a 60,000.00 order two months ago: points usable, tier reached)."""
    registered = {"first_name": "Lin", "locale": "zh-CN", "timezone": "Asia/Shanghai"}
    line = {**CATALOGUE[5].item, "price": "60000.00"}
    order = {"order_id": "o-bench-0", "total": "60000.00", "items": [line]}
    return [
        _event("bench-reg", "member.registered", registered, now - timedelta(days=400)),
        _event("bench-paid-0", "order.paid", order, now - timedelta(days=60)),
    ]


def _event(event_id: str, kind: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "occurred_at": at.isoformat(),
        "member_id": MEMBER,
        "data": data,
    }


def cart_body(codes: list[str]) -> dict[str, Any]:
    """20 lines of the catalogue (gift cards included), shipping, two entered codes, points."""
    items = [p.item | {"qty": 1 + i % 3} for i, p in enumerate(CATALOGUE[:CART_LINES])]
    return {
        "member_id": MEMBER,
        "items": items,
        "shipping": money(1_200),
        "codes": [codes[i] for i in ENTERED],
        "points": POINTS,
    }

"""Loyalty's part of ``members show`` (tier, spend, next tier, points and lots, referrals) and
of the demo summary."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, select

from core.cel.history import fetch_histories
from core.events.tables import members
from loyalty.ladder import TierLadder, net_spend, progress
from loyalty.points import fetch_points
from loyalty.referral_codes import fetch_codes
from loyalty.referral_store import fetch_referrals
from loyalty.tiers_store import fetch_history, fetch_tier_row


def fetch_loyalty(conn: Connection, member_id: str, now: datetime, program: Any) -> dict[str, Any]:
    """The member's loyalty section, JSON-ready (decimals as strings)."""
    row = fetch_tier_row(conn, member_id)
    view: dict[str, Any] = {
        "tier": row.tier_id if row else None,
        "qualifying_spend": str(row.qualifying_spend) if row else "0.00",
        "tier_since": row.since if row else None,
        "tier_history": fetch_history(conn, member_id),
        "points": fetch_points(conn, member_id, now=now).as_dict(),
        "referral_code": fetch_codes(conn, [member_id]).get(member_id),
        "referrals": fetch_referrals(conn, member_id),
    }
    if program is not None:
        view.update(_tier_view(conn, member_id, now, program, row))
    return view


def _tier_view(
    conn: Connection, member_id: str, now: datetime, program: Any, row: Any
) -> dict[str, Any]:
    ladder = TierLadder.from_program(program)
    snapshot = fetch_histories(conn, [member_id], program=program)[member_id]
    spend = net_spend(snapshot.orders, snapshot.refunds, at=now, window=ladder.window)
    where = progress(ladder, row.tier_id if row else None, spend)
    below = row.below_since if row else None
    return {
        "tier": where.level.id,
        "tier_name": where.level.name(program.program_file.program.default_locale),
        "tier_multiplier": str(where.level.multiplier),
        "qualifying_spend": str(spend),
        "tier_earned_with": str(row.qualifying_spend) if row else "0.00",
        "next_tier": {
            "tier": where.next_level.id,
            "min_spend": str(where.next_level.min_spend),
            "needed": str(where.needed),
        }
        if where.next_level
        else None,
        "downgrade": {"below_since": below, "on": below + ladder.grace} if below else None,
        "business_timezone": program.program_file.program.timezone,
    }


def _local(value: datetime, view: dict[str, Any]) -> str:
    """A time as people read it: in the program's time zone, to the minute."""
    zone = view.get("business_timezone")
    return f"{value.astimezone(ZoneInfo(zone)) if zone else value:%Y-%m-%d %H:%M}"


def render_loyalty(view: dict[str, Any], console: Console) -> None:
    """Print the section for people (times in the program's time zone)."""
    next_tier = view.get("next_tier")
    climb = f"; {next_tier['needed']} more for {next_tier['tier']}" if next_tier else ""
    console.print(
        f"tier     [bold]{view['tier'] or '-'}[/] on qualifying spend "
        f"{view['qualifying_spend']}{climb}"
    )
    if view.get("downgrade"):
        console.print(
            f"         [yellow]downgrade on {_local(view['downgrade']['on'], view)}[/] "
            "unless the spend recovers"
        )
    points = view["points"]
    console.print(
        f"points   balance [bold]{points['balance']}[/], pending {points['pending']}"
        + (f", [red]owes {points['debt']}[/]" if points["debt"] else "")
    )
    table = Table(title_justify="left", show_edge=False)
    for column in ("points", "remaining", "available", "expires", "from"):
        table.add_column(column, justify="right" if column in ("points", "remaining") else "left")
    for lot in points["lots"]:
        expires = lot["expires_at"]
        table.add_row(
            str(lot["points"]),
            str(lot["remaining"]),
            _local(lot["available_at"], view),
            _local(expires, view) if expires else "never",
            lot["rule_id"] or "",
        )
    if points["lots"]:
        console.print(table)
    console.print(f"referral code {view['referral_code'] or '-'}; " + _referral_line(view))


def _referral_line(view: dict[str, Any]) -> str:
    made = view["referrals"]["referred"]
    mine = view["referrals"]["referred_by"]
    parts = [f"referred by {mine['code']} ({_outcome(mine)})"] if mine else []
    parts += [f"referred {r['referee']} ({_outcome(r)})" for r in made]
    return ", ".join(parts) or "no referrals"


def _outcome(referral: dict[str, Any]) -> str:
    return referral["status"] + (f": {referral['reason']}" if referral["reason"] else "")


def print_demo_summary(runtime: Any, console: Console) -> None:
    """The demo's loyalty table: each member's tier, points and referral outcomes."""
    now, program = runtime.now(), runtime.program_or_none()
    table = Table(title="loyalty", title_justify="left")
    for column in ("member", "tier", "spend", "balance", "pending", "owed", "referrals"):
        table.add_column(
            column, justify="left" if column in ("member", "tier", "referrals") else "right"
        )
    with runtime.engine.connect() as conn:
        for member_id in conn.execute(
            select(members.c.member_id).order_by(members.c.first_seen_at, members.c.member_id)
        ).scalars():
            view = fetch_loyalty(conn, member_id, now, program)
            points = view["points"]
            table.add_row(
                member_id,
                view["tier"] or "-",
                f"{Decimal(view['qualifying_spend']):,.2f}",
                str(points["balance"]),
                str(points["pending"]),
                str(points["debt"]),
                _referral_line(view),
            )
    console.print(table)

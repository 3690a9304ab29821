"""Loyalty's part of ``members show`` (tier, spend, next tier, points and lots, referrals) and
of the demo summary."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection

from core.cel.history import fetch_histories
from loyalty.calendar import business_zone
from loyalty.demo_summary import (
    MOVES_WINDOW,
    LoyaltySummary,
    PointsTotals,
    ReferralCounts,
    TopMember,
    fetch_summary,
)
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
    """The demo's loyalty part: tiers and their moves, points totals, the top spenders and
    referrals by outcome, for any number of members (``loyalty.demo_summary`` fetches it)."""
    program = runtime.program_or_none()
    with runtime.engine.connect() as conn:
        summary = fetch_summary(conn, now=runtime.now(), program=program)
    zone = business_zone(program) if program is not None else ZoneInfo("UTC")
    if summary.tiers:
        console.print(_moves_title(summary, zone), highlight=False)
        console.print(_tiers_table(summary))
    else:
        console.print("loyalty  no program: no tiers or qualifying spend to show")
    console.print(_points_grid(summary.points))
    if summary.top:
        window = TierLadder.from_program(program).window.days
        currency = program.program_file.program.currency
        console.print(
            f"top {len(summary.top)} by qualifying spend ({currency}, the last {window} days)",
            highlight=False,
        )
        console.print(_top_table(summary.top))
    console.print(_referrals_grid(summary.referrals))


def _moves_title(summary: LoyaltySummary, zone: ZoneInfo) -> str:
    until = summary.now.astimezone(zone)
    return (
        f"loyalty tiers, with the moves of the {MOVES_WINDOW.days} days to {until:%d %b %Y %H:%M}"
    )


def _tiers_table(summary: LoyaltySummary) -> Table:
    table = _compact_table(("tier", "name"), ("members", "moved up", "moved down", "in grace"))
    for line in summary.tiers:
        counts = (line.members, line.up, line.down, line.in_grace)
        table.add_row(line.tier_id, line.name, *(f"{n:,}" for n in counts))
    return table


def _points_grid(points: PointsTotals) -> Table:
    """Points in three columns: credited, taken out, where they are now."""
    columns = [
        [("earned", points.earned), ("awarded", points.awarded), ("adjusted", points.adjusted)],
        [
            ("redeemed", points.redeemed),
            ("refunds gave back", points.given_back),
            ("refunds took back", points.taken_back),
            ("expired", points.expired),
        ],
        [("usable", points.usable), ("pending", points.pending), ("owed", points.owed)],
    ]
    if points.other:
        columns[0].append(("other entries", points.other))
    if points.due_to_expire:
        columns[2].append(("due to expire", points.due_to_expire))
    grid = Table.grid(padding=(0, 2))
    grid.add_column()
    for _ in columns:
        grid.add_column()
        grid.add_column(justify="right")
    for row in itertools.zip_longest(*columns, fillvalue=("", None)):
        label = "points" if not grid.rows else ""
        grid.add_row(label, *(cell for name, n in row for cell in (name, _count(n))))
    return grid


def _count(points: int | None) -> str:
    return "" if points is None else f"{points:,}"


def _top_table(top: tuple[TopMember, ...]) -> Table:
    table = _compact_table(("member", "name", "tier"), ("spend", "balance", "pending"))
    for member in top:
        table.add_row(
            member.member_id,
            member.first_name or "-",
            member.tier_id,
            f"{member.spend:,.2f}",
            f"{member.balance:,}",
            f"{member.pending:,}",
        )
    return table


def _compact_table(texts: tuple[str, ...], numbers: tuple[str, ...]) -> Table:
    """A table without borders: a bold header and one line per row, numbers to the right."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in texts:
        table.add_column(column)
    for column in numbers:
        table.add_column(column, justify="right")
    return table


def _referrals_grid(counts: ReferralCounts) -> Table:
    """Referrals by outcome; long lines wrap under their text, not under the label."""
    rejected = sum(n for _, n in counts.rejected)
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in counts.rejected)
    grid = Table.grid(padding=(0, 2))
    grid.add_column()
    grid.add_column()
    grid.add_row(
        "referrals",
        f"{counts.total:,}: settled {counts.settled:,}, qualified and settling "
        f"{counts.qualified:,}, awaiting a first order {counts.waiting:,}",
    )
    grid.add_row("", f"rejected {rejected:,}" + (f": {reasons}" if reasons else ""))
    return grid

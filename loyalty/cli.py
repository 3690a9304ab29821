"""``points redeem|refused|adjust|expire|verify``, ``tiers recalc``: parse, call a service, print.

Every command runs at the engine clock (global ``--now``); user errors exit 1 with the reason.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer

from core.cli.options import MAX_POINTS, MemberId, parse_money, parse_reason, parse_text
from core.cli.output import console, errors, fail, print_json, shown
from core.cli.runtime import program_or_fail
from core.events.handlers import unit_of_work
from core.runtime import get_runtime
from loyalty.errors import LoyaltyError
from loyalty.expiry import expire_points
from loyalty.order_redemption import fetch_refusals
from loyalty.points import adjust_points
from loyalty.redemption import redeem_points
from loyalty.tier_recalc import recalculate_tiers
from loyalty.verify import verify_ledger

points_app = typer.Typer(help="Points: redeem, adjust, expire, and verify the ledger.")
tiers_app = typer.Typer(help="Tiers: the daily recalculation.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
# Negative points (``points adjust m-1 -50``) must reach the argument, not the option parser.
_NUMBERS_AS_ARGUMENTS = {"ignore_unknown_options": True}


@points_app.command("redeem")
def redeem(
    member_id: MemberId,
    points: Annotated[int, typer.Argument(min=1, max=MAX_POINTS, help="Points to redeem.")],
    order: Annotated[
        str, typer.Option("--order", parser=parse_text, help="The order the points pay for.")
    ],
    total: Annotated[
        Decimal, typer.Option("--total", parser=parse_money, help="The order's total: 828.00.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Redeem points against an order (soonest-expiring lots first)."""
    runtime = get_runtime()
    program = program_or_fail(runtime)
    try:
        with runtime.engine.begin() as conn:
            result = redeem_points(
                conn,
                member_id,
                points,
                order_id=order,
                order_total=total,
                now=runtime.now(),
                program=program,
            )
    except LoyaltyError as exc:
        fail(str(exc))
    if as_json:
        print_json(result.as_dict())
        return
    drawn = ", ".join(f"lot {lot} ({-pts})" for lot, pts in result.moves)
    console.print(
        f"redeemed {result.points} points = {result.value} off order {order}; from {drawn}"
    )


@points_app.command("refused")
def refused(
    member_id: Annotated[
        str | None,
        typer.Option("--member", parser=parse_text, help="Only this member's refusals."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="Show at most this many.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Paid orders whose points_redeemed could not be redeemed, newest first, and why."""
    with get_runtime().engine.connect() as conn:
        found = fetch_refusals(conn, member_id=member_id, limit=limit)
    if as_json:
        print_json([vars(refusal) for refusal in found])
        return
    if not found:
        console.print("no refused points redemptions")
    for r in found:
        console.print(
            f"{r.refused_at.isoformat()}  {shown(r.member_id)}  order {shown(r.order_id)}: "
            f"{r.points} points not redeemed ({r.reason})\n    {shown(r.message)}",
            soft_wrap=True,
        )


@points_app.command("adjust", context_settings=_NUMBERS_AS_ARGUMENTS)
def adjust(
    member_id: MemberId,
    points: Annotated[
        int,
        typer.Argument(min=-MAX_POINTS, max=MAX_POINTS, help="Points to add, or negative to take."),
    ],
    reason: Annotated[
        str, typer.Option("--reason", parser=parse_reason, help="Why (kept in the ledger).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Add points (a new lot) or take them (soonest-expiring first), with a reason."""
    runtime = get_runtime()
    program = program_or_fail(runtime)
    try:
        with runtime.engine.begin() as conn:
            result = adjust_points(
                conn, member_id, points, reason=reason, now=runtime.now(), program=program
            )
    except LoyaltyError as exc:
        fail(str(exc))
    data = {
        "member_id": member_id,
        "points": points,
        "entry_id": result.entry_id,
        "duplicate": result.duplicate,
        "debt_paid": result.debt_paid,
    }
    if as_json:
        print_json(data)
        return
    said = "already recorded" if result.duplicate else f"entry {result.entry_id}"
    console.print(f"adjusted {member_id} by {points} points ({said})")


@points_app.command("expire")
def expire(as_json: JsonOption = False) -> None:
    """Expire the lots due by now (the daily job, run now)."""
    runtime = get_runtime()
    program = program_or_fail(runtime)
    now = runtime.now()
    with unit_of_work(runtime.engine, now=now, program=program) as ctx:
        report = expire_points(ctx.conn, as_of=now, now=now)
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        f"expired {report.points} points in {report.lots} lots of "
        f"{report.members} members, due by {now.isoformat()}"
    )


@points_app.command("verify")
def verify(as_json: JsonOption = False) -> None:
    """Check that every member's lots agree with the ledger; exit 1 on any disagreement."""
    with get_runtime().engine.connect() as conn:
        problems = verify_ledger(conn)
    if as_json:
        print_json({"ok": not problems, "problems": [vars(p) for p in problems]})
    elif not problems:
        console.print("ledger ok: every lot and balance agrees with its entries")
    for problem in problems if not as_json else []:
        errors.print(f"[red]problem[/] {problem}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)


@tiers_app.command("recalc")
def recalc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show who would move; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Recalculate every member's tier now (the daily job); --dry-run only shows who moves."""
    runtime = get_runtime()
    program = program_or_fail(runtime)
    now = runtime.now()
    with unit_of_work(runtime.engine, now=now, program=program) as ctx:
        report = recalculate_tiers(ctx, as_of=now, program=program, dry_run=dry_run)
    if as_json:
        print_json(report.as_dict())
        return
    _print_recalc(report)


def _print_recalc(report: Any) -> None:
    verb = "would change" if report.dry_run else "changed"
    counts = report.as_dict()["counts"]
    console.print(
        f"{len(report.decisions)} members {verb}: "
        + ", ".join(f"{action} {n}" for action, n in counts.items())
    )
    for d in report.decisions:
        console.print(
            f"  {d.member_id}: {d.action} {d.from_tier} → {d.to_tier} (qualifying spend {d.spend})"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(points_app, name="points")
    app.add_typer(tiers_app, name="tiers")

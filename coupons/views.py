"""What people see of coupons outside the ``coupons`` commands: ``members show`` and the demo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection

from core.members import MemberSection
from core.runtime import Runtime
from coupons.explain import EligibilityReport, explain_newest_cart
from coupons.refusals import count_refusals, describe_refusals, fetch_refusals
from coupons.wallet import member_coupons, wallet_summary

# ``members show`` lists the newest refusals; ``coupons refused --member`` lists them all.
SHOWN_REFUSALS = 10


def fetch_member_coupons(
    conn: Connection, member_id: str, now: datetime, program: Any
) -> dict[str, Any]:
    found = fetch_refusals(conn, member_id=member_id, limit=SHOWN_REFUSALS)
    return {
        "coupons": member_coupons(conn, member_id, now=now),
        "refused_coupon_codes": {
            "count": count_refusals(conn, member_id=member_id) if found else 0,
            "newest": describe_refusals(found, program),
        },
    }


def render_member_coupons(view: dict[str, Any], console: Console) -> None:
    _render_wallet(view.get("coupons") or [], console)
    refused = view.get("refused_coupon_codes") or {"count": 0, "newest": []}
    if not refused["count"]:
        console.print("refused coupon codes  none")
        return
    print_refusals(refused["newest"], console, title="refused coupon codes")
    more = refused["count"] - len(refused["newest"])
    if more > 0:
        member_id = refused["newest"][0]["member_id"]
        console.print(f"… and {more} more: loyalty-engine coupons refused --member {member_id}")


def print_refusals(refusals: list[dict[str, Any]], console: Console, *, title: str) -> None:
    """Refused codes as a table, newest first, reasons in the member's locale."""
    table = Table(title=title, title_justify="left")
    for column in ("paid at", "order", "member", "code", "coupon", "reason"):
        table.add_column(column)
    for refusal in refusals:
        table.add_row(
            refusal["refused_at"].isoformat(timespec="minutes"),
            refusal["order_id"],
            refusal["member_id"],
            refusal["code"],
            refusal["coupon_id"] or "-",
            f"{refusal['text']} ({refusal['reason']})",
        )
    console.print(table)


def _render_wallet(coupons: list[dict[str, Any]], console: Console) -> None:
    if not coupons:
        console.print("coupons  none")
        return
    table = Table(title="coupons", title_justify="left")
    for column in ("coupon", "code", "status", "expires"):
        table.add_column(column)
    for coupon in coupons:
        expires = coupon["expires_at"]
        table.add_row(
            coupon["coupon_id"],
            coupon["code"],
            coupon["status"],
            expires.isoformat(timespec="minutes") if expires else "never",
        )
    console.print(table)


member_section = MemberSection("coupons", fetch_member_coupons, render_member_coupons)


def print_report(report: EligibilityReport, console: Console, *, title: str) -> None:
    """An eligibility report as a table, then the best combination."""
    table = Table(title=title, title_justify="left")
    for column in ("code", "coupon", "eligible", "discount", "reasons"):
        table.add_column(column, justify="right" if column == "discount" else "left")
    for e in report.ordered():
        table.add_row(
            e.code,
            report.text.coupon_name(e.rule, e.entry.coupon_id),
            "[green]yes[/]" if e.eligible else "[red]no[/]",
            report.text.money(e.discount),
            "; ".join(report.reasons(e)),
        )
    console.print(table)
    best = report.best
    codes = ", ".join(best.codes) or "none"
    console.print(f"best     {codes}: {report.text.money(best.discount)} off")


# How the demo names a code's status: every code ever issued is in one of them now.
_WALLET_WORDS = {"issued": "unused", "reserved": "held at checkout"}


def print_demo_summary(runtime: Runtime, console: Console) -> None:
    """The demo's coupons part: wallets by status, and one cart explained."""
    now = runtime.now()
    with runtime.engine.connect() as conn:
        counts = wallet_summary(conn, now=now)
        explained = explain_newest_cart(conn, runtime.program, now=now)
    held = ", ".join(f"{n} {_WALLET_WORDS.get(status, status)}" for status, n in counts.items())
    console.print(f"coupons  {'codes in wallets: ' + held if held else 'none issued yet'}")
    if explained is not None:
        cart_id, report, preview = explained
        whose = "every coupon, as if issued now," if preview else "the wallet"
        title = f"{whose} for {report.member_id}'s open cart {cart_id} ({report.text.locale})"
        print_report(report, console, title=title)


def demo_checkout(
    runtime: Runtime, member_id: str, items: Sequence[Mapping[str, Any]], when: datetime
) -> tuple[list[str], Decimal]:
    """The demo shop's checkout: the best combination of the member's wallet for these items."""
    from coupons.carts import parse_cart
    from coupons.explain import check_eligibility

    with runtime.engine.connect() as conn:
        report = check_eligibility(
            conn, runtime.program, member_id=member_id, cart=parse_cart({"items": items}), now=when
        )
    return list(report.best.codes), report.best.discount

"""``loyalty-engine coupons …``: thin commands; each parses, calls one service, prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.cli.options import MemberId, parse_text
from core.cli.output import console, fail, print_json
from core.cli.runtime import program_or_fail
from core.events.handlers import unit_of_work
from core.runtime import get_runtime
from coupons.carts import read_cart_file
from coupons.checkout import expire_wallets
from coupons.code_files import generate_code_file
from coupons.errors import CouponError
from coupons.explain import check_eligibility
from coupons.refusals import describe_refusals, fetch_refusals
from coupons.views import print_refusals, print_report
from coupons.wallet import generate_coupon_codes, issue_coupon

coupons_app = typer.Typer(help="Coupons: wallets, eligibility with reasons, codes.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@coupons_app.command("eligible")
def eligible(
    member_id: MemberId,
    cart: Annotated[
        Path,
        typer.Option("--cart", help='JSON file: {"items": [...], "total": optional}.'),
    ],
    as_json: JsonOption = False,
) -> None:
    """Every wallet coupon against the cart: eligible or not, discount, reasons; the best mix."""
    runtime = get_runtime()
    program = program_or_fail(runtime)
    try:
        parsed = read_cart_file(cart)
        with runtime.engine.connect() as conn:
            report = check_eligibility(
                conn, program, member_id=member_id, cart=parsed, now=runtime.now()
            )
    except CouponError as exc:
        fail(str(exc))
    if as_json:
        print_json(report.as_dict())
        return
    print_report(report, console, title=f"coupons for {member_id} ({report.text.locale})")


@coupons_app.command("issue")
def issue(
    coupon_id: Annotated[
        str, typer.Argument(parser=parse_text, help="The coupon's id in coupons.yaml.")
    ],
    member_id: MemberId,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            parser=parse_text,
            help="Issue key: issuing again with it returns the same code.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a coupon into a member's wallet."""
    runtime = get_runtime()
    program = program_or_fail(runtime)
    now = runtime.now()
    try:
        with unit_of_work(runtime.engine, now=now, program=program) as ctx:
            entry = issue_coupon(
                ctx.conn, program, coupon_id=coupon_id, member_id=member_id, now=now, issue_key=key
            )
    except CouponError as exc:
        fail(str(exc))
    shown = {
        "coupon_id": entry.coupon_id,
        "member_id": entry.member_id,
        "code": entry.code,
        "status": entry.effective_status(now),
        "issued_at": entry.issued_at,
        "expires_at": entry.expires_at,
    }
    if as_json:
        print_json(shown)
        return
    expires = entry.expires_at.isoformat(timespec="minutes") if entry.expires_at else "never"
    console.print(f"issued {entry.code} ({entry.coupon_id}) to {member_id}; expires {expires}")


@coupons_app.command("generate")
def generate(
    coupon_id: Annotated[str, typer.Argument(help="The coupon's id in coupons.yaml.")],
    count: Annotated[int, typer.Argument(min=1, help="How many codes.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the codes to this file.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Generate COUNT unclaimed codes (at most 1,000,000 a call); the first member to use one
    claims it. With --output the file is written before the codes are committed."""
    runtime = get_runtime()
    program = program_or_fail(runtime)
    now = runtime.now()
    try:
        if output is not None:
            codes = generate_code_file(
                runtime.engine, program, coupon_id=coupon_id, count=count, output=output, now=now
            )
        else:
            with unit_of_work(runtime.engine, now=now, program=program) as ctx:
                codes = generate_coupon_codes(
                    ctx.conn, program, coupon_id=coupon_id, count=count, now=now
                )
    except CouponError as exc:
        fail(str(exc))
    if as_json:
        listed = {"codes": codes} if output is None else {"output": str(output)}
        print_json({"coupon_id": coupon_id, "count": len(codes), **listed})
    elif output is not None:
        console.print(f"{len(codes)} codes of {coupon_id} written to {output}")
    else:
        typer.echo("\n".join(codes))


@coupons_app.command("expire")
def expire(as_json: JsonOption = False) -> None:
    """Run the daily job now: release lapsed reservations, expire codes past their expiry."""
    runtime = get_runtime()
    now = runtime.now()
    with unit_of_work(runtime.engine, now=now) as ctx:
        released, expired = expire_wallets(ctx.conn, now=now)
    if as_json:
        print_json({"released": released, "expired": expired})
        return
    console.print(f"released {released} lapsed reservation(s), expired {expired} code(s)")


@coupons_app.command("refused")
def refused(
    member_id: Annotated[
        str | None,
        typer.Option("--member", parser=parse_text, help="Only this member's refused codes."),
    ] = None,
    order_id: Annotated[
        str | None,
        typer.Option("--order", parser=parse_text, help="Only this order's refused codes."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="Show at most this many.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Codes on paid orders that could not be redeemed, newest first, with the reason in the
    member's locale."""
    runtime = get_runtime()
    program = program_or_fail(runtime, required=False)
    with runtime.engine.connect() as conn:
        found = fetch_refusals(conn, member_id=member_id, order_id=order_id, limit=limit)
    shown = describe_refusals(found, program)
    if as_json:
        print_json(shown)
    elif not shown:
        console.print("no refused coupon codes")
    else:
        print_refusals(shown, console, title="refused coupon codes")


def register(app: typer.Typer) -> None:
    app.add_typer(coupons_app, name="coupons")

"""``members show``: a member as the engine sees it, with every package's section."""

from __future__ import annotations

from typing import Any

import typer

from core.cli.options import JsonOption, MemberId
from core.cli.output import console, fail, print_json, shown
from core.members import MemberNotFound, fetch_member_view, member_sections
from core.runtime import get_runtime

members_app = typer.Typer(help="Look up members.")


@members_app.command("show")
def show(
    member_id: MemberId,
    as_json: JsonOption = False,
) -> None:
    """Tier, qualifying spend, points with lots and expiry dates, coupons, journeys."""
    runtime = get_runtime()
    program = runtime.program_or_none()
    with runtime.engine.connect() as conn:
        try:
            view = fetch_member_view(conn, member_id, now=runtime.now(), program=program)
        except MemberNotFound as exc:
            fail(str(exc))
    if as_json:
        print_json(view)
        return
    _print_view(_literal(view))


def _print_view(view: dict[str, Any]) -> None:
    console.print(
        f"[bold]{view['member_id']}[/] {view['first_name'] or ''} "
        f"({view['locale'] or '?'}, {view['timezone'] or '?'})"
    )
    console.print(
        f"contact  email {view['email'] or '-'}, phone {view['phone'] or '-'}; consents "
        + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in view["consents"].items())
    )
    orders = view["orders"]
    console.print(
        f"orders   {orders['paid_orders']} paid, {orders['paid']} paid in total, "
        f"{orders['refunded']} refunded"
    )
    for section in member_sections:
        section.render(view, console)


def _literal(value: Any) -> Any:
    """The view with its text escaped for rich: names and codes the shop sent print as sent."""
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal(item) for item in value]
    return shown(value) if isinstance(value, str) else value


def register(app: typer.Typer) -> None:
    app.add_typer(members_app, name="members")

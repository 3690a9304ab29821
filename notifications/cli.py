"""``loyalty-engine notifications …``: unsubscribe, replay, log. Thin: parse, call, print."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from core.cli.options import MAX_LIMIT, parse_text, parse_token
from core.cli.output import console, fail, print_json
from core.runtime import get_runtime
from notifications.errors import MessageNotFound, ReplayRefused, UnsubscribeTokenInvalid

notifications_app = typer.Typer(help="Message delivery: the log, replays, unsubscribes.")


@notifications_app.command("unsubscribe")
def unsubscribe(
    token: Annotated[
        str, typer.Argument(parser=parse_token, help="The token from an unsubscribe link.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Apply an unsubscribe link: the member gets nothing more on that channel."""
    from notifications.dispatcher import current_options
    from notifications.records import apply_unsubscribe

    runtime = get_runtime()
    secret = current_options().unsubscribe_secret
    try:
        with runtime.engine.begin() as conn:
            request, added = apply_unsubscribe(
                conn,
                token,
                now=runtime.now(),
                secret=secret.get_secret_value() if secret else None,
            )
    except UnsubscribeTokenInvalid as exc:
        fail(str(exc))
    if as_json:
        print_json({"member_id": request.member_id, "channel": request.channel, "new": added})
        return
    already = "" if added else " (already unsubscribed)"
    console.print(f"{request.member_id} unsubscribed from {request.channel}{already}")


@notifications_app.command("replay")
def replay(
    message: Annotated[
        str | None, typer.Option("--message", parser=parse_text, help="A message id.")
    ] = None,
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="Every dead-lettered message.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Send again a dead, failed or unknown message (--message), or every dead one."""
    import worker
    from core.broker import drain
    from notifications.actors import enqueue_sends
    from notifications.records import replay as replay_messages

    if (message is None) == (not all_dead):
        fail("pass either --message ID or --all-dead")
    runtime = get_runtime()
    worker.setup(runtime.settings)
    try:
        ids = replay_messages(runtime.engine, now=runtime.now(), message_id=message,
                              all_dead=all_dead)  # fmt: skip
    except (MessageNotFound, ReplayRefused) as exc:
        fail(str(exc))
    enqueue_sends(ids)
    if runtime.settings.embedded:
        drain()  # no other process can reach the in-process broker
    if as_json:
        print_json({"replayed": ids})
        return
    console.print(f"replayed {len(ids)} message(s)" + (": " + ", ".join(ids) if ids else ""))


@notifications_app.command("log")
def log(
    member: Annotated[
        str | None, typer.Option("--member", parser=parse_text, help="Only this member.")
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most this many, newest first."),
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Messages with their status, reason, attempts and provider (addresses masked)."""
    from notifications.records import fetch_log

    runtime = get_runtime()
    with runtime.engine.connect() as conn:
        entries = fetch_log(conn, member_id=member, limit=limit)
    if as_json:
        print_json([entry.as_dict() for entry in entries])
        return
    table = Table(title="messages", title_justify="left")
    for column in ("message", "member", "template", "channel", "to", "status", "reason", "tries"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            entry.message_id, entry.member_id, entry.template_id, entry.channel or "-",
            entry.to or "-", entry.status, entry.reason or "", str(entry.attempts),
        )  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(notifications_app, name="notifications")

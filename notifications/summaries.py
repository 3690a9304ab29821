"""The package's lines in ``demo`` and ``members show``: delivery counts, masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from sqlalchemy import Connection, select

from notifications.records import fetch_log, summarize
from notifications.tables import unsubscribes

RECENT = 5


def print_delivery_summary(runtime: Any, console: Console) -> None:
    """``messages  sent 3 (email 2, push 1), deferred 1 (push 1)`` - by status, then channel."""
    with runtime.engine.connect() as conn:
        counts = summarize(conn)
    if not counts:
        console.print("messages none yet")
        return
    by_status: dict[str, dict[str, int]] = {}
    for (status, channel), count in sorted(counts.items()):
        by_status.setdefault(status, {})[channel] = count
    parts = []
    for status, channels in by_status.items():
        detail = ", ".join(
            f"{'no channel' if channel == '-' else channel} {count}"
            for channel, count in channels.items()
        )
        parts.append(f"{status} {sum(channels.values())} ({detail})")
    console.print("messages " + ", ".join(parts))


def fetch_member_messages(
    conn: Connection, member_id: str, now: datetime, program: Any
) -> dict[str, Any]:
    """``members show --json`` → ``messages`` (newest first, masked) and ``unsubscribed``."""
    stopped = conn.execute(
        select(unsubscribes.c.channel).where(unsubscribes.c.member_id == member_id)
    ).scalars()
    recent = [
        {
            "message_id": entry.message_id,
            "template_id": entry.template_id,
            "channel": entry.channel,
            "to": entry.to,
            "status": entry.status,
            "reason": entry.reason,
            "created_at": entry.created_at,
        }
        for entry in fetch_log(conn, member_id=member_id, limit=RECENT)
    ]
    return {"messages": recent, "unsubscribed": sorted(stopped)}


def render_member_messages(view: dict[str, Any], console: Console) -> None:
    stopped = ", ".join(view.get("unsubscribed") or []) or "none"
    console.print(f"messages unsubscribed from {stopped}")
    for message in view.get("messages") or []:
        reason = f" ({message['reason']})" if message["reason"] else ""
        console.print(
            f"  {message['created_at']:%Y-%m-%d %H:%M} {message['template_id']} "
            f"{message['channel'] or '-'} {message['to'] or '-'} {message['status']}{reason}"
        )

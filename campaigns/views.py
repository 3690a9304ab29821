"""What people see of campaigns outside the ``campaigns`` commands: ``members show`` and the demo.

Each send step's message is looked up through notifications' service
(``notifications.states.fetch_message_states``), never in its tables: a step ``done`` means the
message was recorded; its state says whether it was sent, deferred, suppressed or cancelled.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from sqlalchemy import Connection

from campaigns.assignment import steps_of
from campaigns.definitions import step_ids
from campaigns.queries import (
    count_journeys,
    fetch_campaign_message_ids,
    fetch_member_journeys,
    fetch_steps,
)
from core.members import MemberSection

SHOWN_JOURNEYS = 20  # newest journeys in ``members show``


def fetch_journeys_section(
    conn: Connection, member_id: str, now: datetime, program: Any
) -> dict[str, Any]:
    """``members show --json`` → ``journeys``: the member's journeys, newest first."""
    from notifications.states import fetch_message_states

    rows = fetch_member_journeys(conn, member_id, limit=SHOWN_JOURNEYS)
    ran = fetch_steps(conn, [row.journey_id for row in rows])
    ids = {step.message_id for steps in ran.values() for step in steps if step.message_id}
    states = fetch_message_states(conn, ids)
    campaigns = program.campaigns if program is not None else {}
    journeys = []
    for row in rows:
        campaign = campaigns.get(row.campaign_id)
        order = _step_order(campaign, row.arm)
        steps = sorted(ran.get(row.journey_id, []), key=lambda s: (s.executed_at, order(s)))
        journeys.append(_journey(row, campaign, [_step(s, states) for s in steps]))
    zone = program.program_file.program.timezone if program is not None else None
    return {"journeys": journeys, "business_timezone": zone}


def _step_order(campaign: Any, arm: str) -> Any:
    steps = steps_of(campaign, arm) if campaign is not None else None
    index = {step_id: i for i, step_id in enumerate(step_ids(steps or ()))}
    return lambda step: index.get(step.step_id, len(index))


def _journey(row: Any, campaign: Any, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "journey_id": row.journey_id,
        "campaign_id": row.campaign_id,
        "campaign_name": campaign.name if campaign is not None else None,
        "arm": row.arm,
        "status": row.status,
        "reason": row.reason,
        "entered_at": row.entered_at,
        "ended_at": row.ended_at,
        "next_step": row.step_id if row.status == "active" else None,
        "next_run_at": row.next_run_at if row.status == "active" else None,
        "last_error": row.last_error,
        "steps": steps,
    }


def _step(step: Any, states: dict[str, Any]) -> dict[str, Any]:
    state = states.get(step.message_id) if step.message_id else None
    return {
        "step_id": step.step_id,
        "kind": step.kind,
        "status": step.status,
        "reason": step.reason,
        "member_id": step.member_id,
        "executed_at": step.executed_at,
        "coupon_code": step.coupon_code,
        "points": step.points,
        "message_id": step.message_id,
        "message": None
        if state is None
        else {
            "status": state.status,
            "reason": state.reason,
            "channel": state.channel,
            "not_before": state.not_before,
            "sent_at": state.sent_at,
        },
    }


def render_journeys_section(view: dict[str, Any], console: Console) -> None:
    journeys = view.get("journeys") or []
    if not journeys:
        console.print("journeys none")
        return
    zone = view.get("business_timezone")
    console.print("journeys")
    for journey in journeys:
        ended = f" ({journey['reason']})" if journey["reason"] else ""
        upcoming = ""
        if journey["next_step"]:
            upcoming = f"; next {journey['next_step']} at {_local(journey['next_run_at'], zone)}"
        console.print(
            f"  [bold]{journey['campaign_id']}[/] {journey['arm']}: {journey['status']}{ended}, "
            f"entered {_local(journey['entered_at'], zone)}{upcoming}",
            soft_wrap=True,
        )
        for step in journey["steps"]:
            console.print(f"    {step_line(step)}", soft_wrap=True)


def step_line(step: dict[str, Any]) -> str:
    """``send:welcome done → email sent``, ``issue_coupon:first-brew-15 done (K3F9-…)``."""
    outcome = step["status"] + (f" ({step['reason']})" if step["reason"] else "")
    message = step.get("message")
    if message is not None and not (step["status"] == "skipped" and not message["channel"]):
        why = f" ({message['reason']})" if message["reason"] else ""
        outcome += f" → {message['channel'] or '-'} {message['status']}{why}"
    elif step["coupon_code"]:
        outcome += f" ({step['coupon_code']})"
    elif step["points"]:
        outcome += f" ({step['points']} points)"
    return f"{step['step_id']} {outcome}"


def _local(value: datetime | None, zone: str | None) -> str:
    if value is None:
        return "-"
    return f"{value.astimezone(ZoneInfo(zone)) if zone else value:%Y-%m-%d %H:%M}"


member_section = MemberSection("journeys", fetch_journeys_section, render_journeys_section)


def print_demo_summary(runtime: Any, console: Console) -> None:
    """The demo's journeys part: per campaign, entries by outcome and the messages sent."""
    from notifications.states import fetch_message_states

    with runtime.engine.connect() as conn:
        counts = count_journeys(conn)
        message_ids = fetch_campaign_message_ids(conn)
        states = fetch_message_states(conn, {m for ids in message_ids.values() for m in ids})
    if not counts:
        console.print("journeys none yet")
        return
    console.print("journeys")
    for campaign_id in sorted(counts):
        messages = [states[m] for m in message_ids.get(campaign_id, []) if m in states]
        console.print(f"  {demo_line(campaign_id, counts[campaign_id], messages)}", soft_wrap=True)
    idle = sorted(set(runtime.program.campaigns) - set(counts))
    if idle:
        console.print(f"  no journeys: {', '.join(idle)}", soft_wrap=True)


def demo_line(
    campaign_id: str, counts: dict[tuple[str, str, str | None], int], messages: list[Any]
) -> str:
    """``cart-abandonment entered 2: completed 1, holdout 1; sent 2 (email 1, push 1)``."""
    outcomes: Counter[str] = Counter()
    exits: Counter[str] = Counter()
    for (_arm, status, reason), count in counts.items():
        key = "holdout" if reason == "holdout" else status
        outcomes[key] += count
        if status == "exited":
            exits[reason or "?"] += count
    parts = [
        f"{key} {outcomes[key]}" for key in ("active", "completed", "holdout") if outcomes[key]
    ]
    if outcomes["exited"]:
        why = ", ".join(f"{reason} {n}" for reason, n in sorted(exits.items()))
        parts.append(f"exited {outcomes['exited']} ({why})")
    line = f"{campaign_id} entered {sum(outcomes.values())}: {', '.join(parts)}"
    return line + "; " + _messages_text(messages)


def _messages_text(messages: list[Any]) -> str:
    if not messages:
        return "no messages"
    by_status: dict[str, Counter[str]] = {}
    for state in messages:
        by_status.setdefault(state.status, Counter())[state.channel or "no channel"] += 1
    parts = []
    for status in sorted(by_status, key=lambda s: (s != "sent", s)):
        channels = by_status[status]
        detail = ", ".join(f"{channel} {n}" for channel, n in sorted(channels.items()))
        parts.append(f"{status} {sum(channels.values())} ({detail})")
    return "messages " + ", ".join(parts)


def print_experiment_reports(runtime: Any, console: Console) -> None:
    """The demo's experiments part: each experiment's arms and lifts, and its HTML page written
    beside the demo's outbox (the full report is ``campaigns report ID``)."""
    from campaigns.report import build_report, report_lines
    from campaigns.report_facts import fetch_report_facts
    from campaigns.report_html import write_html
    from core.demo import demo_directory

    program = runtime.program
    zone = program.program_file.program.timezone
    experiments = sorted(cid for cid, c in program.campaigns.items() if c.experiment is not None)
    with runtime.engine.connect() as conn:
        reports = [build_report(fetch_report_facts(conn, cid, program, runtime.now()))
                   for cid in experiments]  # fmt: skip
    for report in reports:
        if not report.entered:
            continue
        lines = report_lines(report, zone=zone)
        shown = lines[: lines.index("messages by channel") - 1]
        path = demo_directory(runtime) / f"{report.campaign_id}-report.html"
        write_html(report, path, zone=zone)
        console.print(f"[bold]experiment[/] {shown[0]}", soft_wrap=True)
        console.print("\n".join(shown[1:]), soft_wrap=True, highlight=False, markup=False)
        console.print(f"the whole report, with charts: {path}", soft_wrap=True)


def print_program_report(runtime: Any, console: Console) -> None:
    """The demo's program report: the global control group against everyone else over the
    fortnight that ends today (``program report --since … --until …``)."""
    from datetime import timedelta

    from campaigns.program_report import build_program_report, report_lines
    from campaigns.program_report_facts import Window, fetch_program_report_facts

    program = runtime.program
    now = runtime.now()
    window = Window.ending(now - timedelta(microseconds=1), days=14,
                           zone=program.program_file.program.timezone)  # fmt: skip
    with runtime.engine.connect() as conn:
        facts = fetch_program_report_facts(
            conn, program, since=window.since, until=window.until, now=now
        )
    lines = report_lines(build_program_report(facts))
    console.print(f"[bold]{lines[0]}[/]", soft_wrap=True)
    console.print("\n".join(lines[1:]), soft_wrap=True, highlight=False, markup=False)

"""How the ``campaigns`` commands print for people (``--json`` prints the services' values).

Text from files, members or the database goes through ``shown`` before it is put in rich
markup. Times print in the business time zone, to the minute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console

from campaigns.dry_run import DryRun
from campaigns.overview import StatusChange
from campaigns.preview import CampaignPreview
from campaigns.sandbox import StepRecord
from core.cli.output import shown

LEFT_OUT = {
    "in_journey": "in a journey of it already",
    "reentry_window": "inside the re-entry window",
    "already_entered": "entered already for this trigger",
    "not_entered": "not entered",
}


def local(value: datetime | None, zone: str) -> str:
    return "-" if value is None else f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"


def status_text(row: dict[str, Any]) -> str:
    if row["status_source"] == "file":
        return row["status"]
    note = f": {row['status_note']}" if row["status_note"] else ""
    return f"{row['status']} (set by campaigns pause|resume{note})"


def print_list(rows: list[dict[str, Any]], console: Console) -> None:
    """One line per campaign (its name on the next), narrow enough for an 80-column terminal."""
    if not rows:
        console.print("no campaigns in the program")
        return
    columns = ("campaign", "kind", "trigger", "status", "active", "today")
    cells = [
        (row["campaign_id"], row["kind"], row["trigger"],
         row["status"] + ("*" if row["status_source"] == "override" else ""),
         str(row["journeys_active"]), str(row["entered_today"]))
        for row in rows
    ]  # fmt: skip
    widths = [max(len(c) for c in [name, *(cell[i] for cell in cells)]) for i, name in
              enumerate(columns)]  # fmt: skip
    console.print(f"[bold]{_line(columns, widths)}[/]")
    for row, cell in zip(rows, cells, strict=True):
        console.print(shown(_line(cell, widths)), soft_wrap=True)
        console.print(f"  [dim]{shown(row['name'])}[/]", soft_wrap=True)
    console.print("[dim]today: journeys entered since midnight (business time zone)[/]")
    for row in rows:
        if row["status_source"] == "override":
            when = f"{row['status_changed_at']:%Y-%m-%d %H:%M} UTC"
            console.print(f"* {shown(row['campaign_id'])}: {shown(status_text(row))}, {when}")


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    text = [cell.rjust(w) if i >= 4 else cell.ljust(w) for i, (cell, w) in
            enumerate(zip(cells, widths, strict=True))]  # fmt: skip
    return "  ".join(text).rstrip()


def print_show(view: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]{shown(view['campaign_id'])}[/] {shown(view['name'])} ({view['kind']})")
    console.print(f"status   {shown(status_text(view))}; version {view['version']}")
    console.print(f"trigger  {shown(view['trigger']['text'])}")
    for arm, steps in view["steps"].items():
        console.print(f"steps    {shown(arm)}" if arm != "main" else "steps")
        for number, step in enumerate(steps, start=1):
            console.print(f"  {number}. {shown(step['text'])}  [dim]id {shown(step['step_id'])}[/]")
    console.print(f"experiment {shown(_experiment(view['experiment']))}")
    console.print(f"exit on  {', '.join(view['exit_on']) or 'nothing'}")
    reentry = view["reentry_after"]
    console.print(f"re-entry {'after ' + reentry if reentry else 'never (enters once)'}")
    goal = view["goal"]
    console.print(f"goal     {goal['event'] + ' within ' + goal['within'] if goal else 'none'}")
    journeys = view["journeys"]
    console.print(f"journeys {journeys['total']}")
    for arm, counts in journeys["by_arm"].items():
        detail = ", ".join(f"{label} {n}" for label, n in counts.items() if label != "total")
        console.print(f"  {shown(arm)} {counts['total']}: {shown(detail)}")


def _experiment(experiment: dict[str, Any] | None) -> str:
    if experiment is None:
        return "none"
    variants = ", ".join(
        f"{name} weight {weight}" for name, weight in experiment["variants"].items()
    )
    return f"holdout {experiment['holdout']}" + (f"; variants {variants}" if variants else "")


def print_change(change: StatusChange, console: Console, *, embedded: bool) -> None:
    was = "" if change.previous == change.status else f" (was {change.previous})"
    console.print(f"{shown(change.campaign_id)} is {change.status}{was}")
    if change.status == "paused":
        console.print("it enrols no one; its journeys hold at their next step until resumed")
        return
    ran = "ran now" if embedded else "queued for the workers"
    console.print(f"{len(change.due)} held journey(s) due: {ran}")


def print_preview(result: CampaignPreview, console: Console, *, zone: str) -> None:
    forced = " (--variant)" if result.forced else ""
    console.print(
        f"preview of [bold]{shown(result.campaign_id)}[/] for [bold]{shown(result.member_id)}[/]: "
        f"arm {shown(result.arm)}{forced}; context: {shown(result.context)}; times in {zone}"
    )
    if result.paused:
        console.print("[yellow]the campaign is paused[/]: shown as it would run once resumed")
    for note in result.notes:
        console.print(f"[dim]note:[/] {shown(note)}")
    for number, step in enumerate(result.steps, start=1):
        console.print(
            f"{number}. {shown(step.step_id)} {_step_outcome(step, zone)}", soft_wrap=True
        )
        if step.message is not None and step.message.status != "suppressed":
            _print_content(step, console)
    if not result.messages:
        console.print("no messages")
    console.print(f"outcome  {shown(result.outcome)} [dim](nothing was sent or written)[/]")


def _step_outcome(step: StepRecord, zone: str) -> str:
    message = step.message
    if message is None:
        extra = step.coupon_code or (f"{step.points} points" if step.points else "")
        why = f" ({step.reason})" if step.reason else ""
        return shown(f"{step.status}{why}" + (f": {extra}" if extra else ""))
    if message.status != "queued":
        return shown(f"{message.channel or '-'}: {message.status} ({message.reason})")
    after = " after quiet hours" if message.send_reason == "quiet_hours" else ""
    return shown(
        f"{message.channel} to {message.to or '-'} ({step.member_id}, {message.locale}) "
        f"at {local(message.send_at, zone)}{after}"
    )


def _print_content(step: StepRecord, console: Console) -> None:
    message = step.message
    assert message is not None
    for label, text in (("subject", message.subject), ("title", message.title)):
        if text:
            console.print(f"   {label}: {shown(text)}", soft_wrap=True)
    for line in (message.body or "").splitlines():
        console.print(f"   | {shown(line)}", soft_wrap=True)


def print_dry_run(result: DryRun, console: Console, *, limit: int, zone: str) -> None:
    head = f"dry run of [bold]{shown(result.campaign_id)}[/] at {local(result.now, zone)} ({zone})"
    if result.event_triggered:
        console.print(head)
        console.print(f"a {result.trigger} campaign enters members only as events arrive")
        console.print(f"journeys active now: {result.active_journeys}")
        return
    arms = ", ".join(f"{arm} {n}" for arm, n in sorted(result.arms().items()))
    console.print(head)
    console.print(f"{len(result.entrants)} would enter" + (f": {arms}" if arms else ""))
    if result.paused:
        console.print("[yellow]the campaign is paused[/]: no one enters until it is resumed")
    for entrant in result.entrants[:limit]:
        console.print(f"  [bold]{shown(entrant.member_id)}[/] {shown(entrant.arm)}")
        for step in entrant.steps:
            console.print(f"    {_brief(step)}", soft_wrap=True)
    if len(result.entrants) > limit:
        console.print(f"  … and {len(result.entrants) - limit} more (--limit, --json)")
    _print_left_out(result, console, zone=zone)
    console.print("[dim]nothing was sent or written[/]")


def _brief(step: StepRecord) -> str:
    message = step.message
    if message is None:
        extra = step.coupon_code or (f"{step.points} points" if step.points else "")
        return shown(f"{step.step_id} {step.status}" + (f" {extra}" if extra else ""))
    state = "" if message.status == "queued" else f" [{message.status}: {message.reason}]"
    return shown(
        f"{step.step_id} {message.channel or '-'} {message.template_id}: "
        f"{message.first_line[:80]}{state}"
    )


def _print_left_out(result: DryRun, console: Console, *, zone: str) -> None:
    if result.left_out is None:
        console.print(f"left out: not told for {result.trigger} triggers")
        return
    if not result.left_out:
        return
    console.print(f"left out {len(result.left_out)}")
    for item in result.left_out:
        until = f" until {local(item.until, zone)}" if item.until else ""
        console.print(f"  {shown(item.member_id)}: {LEFT_OUT.get(item.reason, item.reason)}{until}")

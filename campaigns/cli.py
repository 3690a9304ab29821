"""``loyalty-engine campaigns …``: list, show, pause, resume, preview, dry-run, report.

Thin: each command parses, calls one service (campaigns.overview, .preview, .dry_run,
.report), prints (campaigns.printing, .report). Unknown campaigns, members and variants exit 1
with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from campaigns.controls import Status
from campaigns.errors import CampaignError
from core.cli.options import JsonOption, parse_reason, parse_text
from core.cli.output import console, errors, fail, print_json, shown
from core.cli.runtime import program_or_fail
from core.runtime import get_runtime

campaigns_app = typer.Typer(help="Campaigns: status and journeys, pause and resume, previews.")
CampaignId = Annotated[str, typer.Argument(parser=parse_text, help="The campaign's id.")]
NoteOption = Annotated[
    str | None, typer.Option("--note", parser=parse_reason, help="Why (kept with the status).")
]
SHOWN_ENTRANTS = 50


@campaigns_app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """Every campaign: kind, trigger, status, journeys active and entered today."""
    from campaigns.overview import list_campaigns
    from campaigns.printing import print_list

    runtime = get_runtime()
    program = program_or_fail(runtime)
    with runtime.engine.connect() as conn:
        rows = list_campaigns(conn, program, now=runtime.now())
    if as_json:
        print_json(rows)
        return
    print_list(rows, console)


@campaigns_app.command("show")
def show_command(campaign_id: CampaignId, as_json: JsonOption = False) -> None:
    """The campaign in words: trigger, steps per variant, experiment; its journeys by arm."""
    from campaigns.overview import show_campaign
    from campaigns.printing import print_show

    runtime = get_runtime()
    program = program_or_fail(runtime)
    try:
        with runtime.engine.connect() as conn:
            view = show_campaign(conn, program, campaign_id)
    except CampaignError as exc:
        fail(str(exc))
    if as_json:
        print_json(view)
        return
    print_show(view, console)


@campaigns_app.command("pause")
def pause_command(
    campaign_id: CampaignId, note: NoteOption = None, as_json: JsonOption = False
) -> None:
    """Stop the campaign now: it enrols no one and its journeys hold at their next step."""
    _change(campaign_id, "paused", note=note, as_json=as_json)


@campaigns_app.command("resume")
def resume_command(
    campaign_id: CampaignId, note: NoteOption = None, as_json: JsonOption = False
) -> None:
    """Start the campaign again: held journeys run their due steps now."""
    _change(campaign_id, "active", note=note, as_json=as_json)


def _change(campaign_id: str, status: Status, *, note: str | None, as_json: bool) -> None:
    import worker
    from campaigns.jobs import enqueue_advance
    from campaigns.overview import change_status
    from campaigns.printing import print_change
    from core.broker import drain

    runtime = get_runtime()
    program = program_or_fail(runtime)
    try:
        change = change_status(
            runtime.engine, program, campaign_id, status, now=runtime.now(), note=note
        )
    except CampaignError as exc:
        fail(str(exc))
    if change.due:
        worker.setup(runtime.settings)
        enqueue_advance(list(change.due))
        if runtime.settings.embedded:
            drain()  # no other process can reach the in-process broker
    if as_json:
        print_json(change.as_dict())
        return
    print_change(change, console, embedded=runtime.settings.embedded)


@campaigns_app.command("preview")
def preview_command(
    campaign_id: CampaignId,
    member: Annotated[str, typer.Option("--member", parser=parse_text, help="The member's id.")],
    variant: Annotated[
        str | None,
        typer.Option("--variant", parser=parse_text, help="Preview this variant."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every message the member would get from the campaign, rendered, with when it would go.

    Nothing is sent, queued or written."""
    from campaigns.preview import preview_campaign
    from campaigns.printing import print_preview

    runtime = get_runtime()
    program = program_or_fail(runtime)
    try:
        result = preview_campaign(
            runtime.engine, program, campaign_id, member_id=member, variant=variant,
            now=runtime.now(),
        )  # fmt: skip
    except CampaignError as exc:
        fail(str(exc))
    if as_json:
        print_json(result.as_dict())
    else:
        print_preview(result, console, zone=program.program_file.program.timezone)
    _fail_on_step_errors(result.errors)


@campaigns_app.command("dry-run")
def dry_run_command(
    campaign_id: CampaignId,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, max=100_000, help="Show at most this many entrants."),
    ] = SHOWN_ENTRANTS,
    as_json: JsonOption = False,
) -> None:
    """Who would enter now, in which arm, and what each would get; who was left out and why.

    Runs the campaign's trigger scan at the engine clock; sends and writes nothing."""
    from campaigns.dry_run import dry_run_campaign
    from campaigns.printing import print_dry_run

    runtime = get_runtime()
    program = program_or_fail(runtime)
    try:
        result = dry_run_campaign(runtime.engine, program, campaign_id, now=runtime.now())
    except CampaignError as exc:
        fail(str(exc))
    if as_json:
        print_json(result.as_dict())
    else:
        print_dry_run(result, console, limit=limit, zone=program.program_file.program.timezone)
    _fail_on_step_errors(result.errors)


@campaigns_app.command("report")
def report_command(
    campaign_id: Annotated[
        str | None, typer.Argument(parser=parse_text, help="The campaign's id.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="One line per campaign.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the report as one HTML page.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Entered, messages, conversions and revenue per arm; lift of each variant over the holdout.

    ``--all``: one line per campaign. ``--html FILE`` writes a self-contained page with charts."""
    from campaigns.report import all_lines, build_report, report_lines, summary_line
    from campaigns.report_facts import fetch_report_facts

    if every == (campaign_id is not None) or (every and html is not None):
        fail("give a campaign id, or --all (without --html) for every campaign")
    runtime = get_runtime()
    program = program_or_fail(runtime)
    ids: list[str] = sorted(program.campaigns) if campaign_id is None else [campaign_id]
    try:
        with runtime.engine.connect() as conn:
            reports = [
                build_report(fetch_report_facts(conn, cid, program, runtime.now())) for cid in ids
            ]
    except CampaignError as exc:
        fail(str(exc))
    if every:
        rows = [summary_line(report) for report in reports]
        if as_json:
            print_json(rows)
        else:
            console.print(shown("\n".join(all_lines(rows))), soft_wrap=True)
        return
    if html is not None:
        from campaigns.report_html import write_html

        write_html(reports[0], html, zone=program.program_file.program.timezone)
    if as_json:
        print_json(reports[0].as_dict())
    else:
        zone = program.program_file.program.timezone
        console.print(shown("\n".join(report_lines(reports[0], zone=zone))), soft_wrap=True)
    if html is not None and not as_json:
        console.print(f"HTML report written to {shown(str(html))}")


def _fail_on_step_errors(found: tuple[str, ...]) -> None:
    for error in found:
        errors.print(f"[yellow]step failed[/] {shown(error)}", soft_wrap=True)
    if found:
        fail(f"{len(found)} step(s) failed; fix the campaign or the program, then preview again")


def register(app: typer.Typer) -> None:
    from campaigns import program_cli

    app.add_typer(campaigns_app, name="campaigns")
    program_cli.register(app)

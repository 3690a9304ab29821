"""The campaigns package's program files (``campaigns/*.yaml``) and the checks across them.

Importing this module (the wiring does) registers the file kind, the campaigns' CEL
expressions (a trigger's ``when:``, a schedule's ``audience:``) and the checks:

* every step names a coupon of coupons.yaml and a template of templates/ that has the channels
  it may send by; ``member: referrer|referee`` appears only in referral_qualified campaigns;
* a journey does not end with a wait, and no two of its steps share an ``id:``;
* every event a campaign waits for (``trigger.event``, a referral_qualified trigger,
  ``exit_on``, ``goal.event``) is one this program produces: the shop's always, the engine's
  as the package that emits them says (:func:`core.events.internal.produced_events`);
* an audience or ``when:`` can match someone (:mod:`core.program.never_true`).
"""

from __future__ import annotations

from collections.abc import Iterator

from campaigns.definitions import Campaign, Send, Step
from core.cel.types import AUDIENCE, event_scope
from core.events.internal import event_needs, produced_events
from core.program.cel_check import site_issue
from core.program.crossref import did_you_mean
from core.program.kinds import (
    FileKind,
    Loaded,
    LoadedFiles,
    Site,
    register_cross_check,
    register_expressions,
    register_file_kind,
)
from core.program.never_true import why_never_true
from core.program.yamlsource import Loc, ProgramIssue, SourceDocument
from coupons.definitions import CouponsFile
from notifications.template_files import TemplateFile

# program.campaigns: file name (= id) → Campaign
CAMPAIGNS = FileKind(
    attribute="campaigns",
    path="campaigns",
    model=Campaign,
    schema_name="campaign",
    title="campaigns/<id>.yaml: one campaign",
)


def check_campaigns(files: LoadedFiles) -> Iterator[ProgramIssue]:
    """The names each campaign's steps use exist in the other files."""
    for campaign in files.folder("campaigns", Campaign).values():
        for journey_loc, steps in campaign.model.journeys():
            for index, step in enumerate(steps):
                yield from _check_step(campaign, (*journey_loc, index), step, files)


def _check_step(
    campaign: Loaded[Campaign], loc: Loc, step: Step, files: LoadedFiles
) -> Iterator[ProgramIssue]:
    document = campaign.document
    recipient = getattr(getattr(step, step.kind), "member", None)  # a wait has no member
    if recipient and campaign.model.trigger.kind != "referral_qualified":
        yield document.issue(
            (*loc, step.kind, "member"),
            f"member: {recipient} exists only in referral_qualified campaigns",
            hint="remove member: to address the member in the journey",
        )
    coupons = files.file("coupons", CouponsFile)
    if step.issue_coupon is not None and coupons is not None:
        coupon_ids = {coupon.id for coupon in coupons.model.coupons}
        if step.issue_coupon.coupon not in coupon_ids:
            yield document.issue(
                (*loc, "issue_coupon", "coupon"),
                f"no coupon {step.issue_coupon.coupon!r} in coupons.yaml",
                hint=did_you_mean(step.issue_coupon.coupon, coupon_ids),
            )
    if step.send is not None:
        yield from _check_send(document, (*loc, "send"), step.send, files)


def _check_send(
    document: SourceDocument, loc: Loc, send: Send, files: LoadedFiles
) -> Iterator[ProgramIssue]:
    name = send.template
    names = files.names("templates")
    if name not in names:
        yield document.issue(
            (*loc, "template"),
            f"no template {name!r} in templates/",
            hint=did_you_mean(name, names),
        )
        return
    template = files.folder("templates", TemplateFile).get(name)
    if template is None:
        return  # its own file has errors, reported there
    missing = [channel for channel in send.channel if channel not in template.model.channels]
    if missing:
        yield document.issue(
            (*loc, "channel"),
            f"template {name!r} has no {' or '.join(missing)} message, "
            f"but this step may send by {' or '.join(missing)}",
            hint=f"add {', '.join(missing)} to templates/{name}.yaml or drop it from channel",
        )


def campaign_expressions(files: LoadedFiles) -> Iterator[Site]:
    """Each event trigger's ``when:`` (on its event) and each schedule's ``audience:``."""
    for campaign in files.folder("campaigns", Campaign).values():
        trigger = campaign.model.trigger
        if trigger.when is not None:
            scope = event_scope(f"a campaign triggered by {trigger.event}", trigger.event)
            yield Site(campaign.document, ("trigger", "when"), trigger.when, scope)
        if trigger.schedule is not None and trigger.schedule.audience is not None:
            loc = ("trigger", "schedule", "audience")
            yield Site(campaign.document, loc, trigger.schedule.audience, AUDIENCE)


def check_journeys(files: LoadedFiles) -> Iterator[ProgramIssue]:
    """No journey ends with a wait (it would do nothing) or gives two steps one ``id:``."""
    for campaign in files.folder("campaigns", Campaign).values():
        for loc, steps in campaign.model.journeys():
            if steps[-1].wait is not None:
                yield campaign.document.issue(
                    (*loc, len(steps) - 1, "wait"),
                    "a wait as the last step does nothing",
                    hint="remove it, or add a step after it",
                )
            yield from _duplicate_ids(campaign.document, loc, steps)


def _duplicate_ids(
    document: SourceDocument, loc: Loc, steps: tuple[Step, ...]
) -> Iterator[ProgramIssue]:
    first: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step.id is None:
            continue
        if step.id in first:
            yield document.issue(
                (*loc, index, "id"),
                f"duplicate step id {step.id!r}",
                hint=f"{_shown(loc)}[{first[step.id]}] already uses it; "
                "journeys in flight find their step by its id",
            )
        first.setdefault(step.id, index)


def _shown(loc: Loc) -> str:
    """``("experiment", "variants", "a", "steps")`` as ``experiment.variants.a.steps``."""
    return ".".join(str(segment) for segment in loc)


def check_events(files: LoadedFiles) -> Iterator[ProgramIssue]:
    """Every event a campaign waits for is produced in this program."""
    if files.program is None:
        return
    produced = produced_events(files.program.model)
    for campaign in files.folder("campaigns", Campaign).values():
        for loc, event_type in _awaited(campaign.model):
            if event_type not in produced:
                yield campaign.document.issue(
                    loc, f"nothing in this program emits {event_type}", hint=_needs(event_type)
                )


def _needs(event_type: str) -> str:
    needs = event_needs(event_type)
    if not needs:
        return f"no package emits {event_type}"
    return f"{event_type} needs {' or '.join(needs)} in program.yaml"


def _awaited(campaign: Campaign) -> Iterator[tuple[Loc, str]]:
    trigger = campaign.trigger
    if trigger.event is not None:
        yield ("trigger", "event"), trigger.event
    if trigger.referral_qualified is not None:
        yield ("trigger", "referral_qualified"), "referral.qualified"
    for index, event_type in enumerate(campaign.exit_on):
        yield ("exit_on", index), event_type
    if campaign.goal is not None:
        yield ("goal", "event"), campaign.goal.event


def check_conditions(files: LoadedFiles) -> Iterator[ProgramIssue]:
    """No audience or ``when:`` is a condition nobody can meet."""
    for site in campaign_expressions(files):
        never = why_never_true(site.expression.source)
        if never is not None:
            audience = site.loc[-1] == "audience"
            hint = (
                "this audience matches no member"
                if audience
                else "this when: matches no event, so no member ever enters the campaign"
            )
            yield site_issue(site, never.reason, hint, at=never.at)


register_file_kind(CAMPAIGNS)
register_cross_check(check_campaigns)
register_cross_check(check_journeys)
register_cross_check(check_events)
register_cross_check(check_conditions)
register_expressions(campaign_expressions)

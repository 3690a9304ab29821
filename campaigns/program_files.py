"""The campaigns package's program files (``campaigns/*.yaml``) and the checks across them.

Importing this module (the wiring does) registers the file kind, the campaigns' CEL
expressions (a trigger's ``when:``, a schedule's ``audience:``) and the checks: every step
names a coupon of coupons.yaml and a template of templates/ that has the channels it may send
by, and ``member: referrer|referee`` appears only in referral_qualified campaigns.
"""

from __future__ import annotations

from collections.abc import Iterator

from campaigns.definitions import Campaign, Send, Step
from core.cel.types import AUDIENCE, event_scope
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


register_file_kind(CAMPAIGNS)
register_cross_check(check_campaigns)
register_expressions(campaign_expressions)

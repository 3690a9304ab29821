"""Checks across files: every name one file uses must exist in another, positioned where used.

Each check runs only on what loaded, so one broken file does not bury the rest under
follow-on errors (a send naming a template whose file failed is not reported again).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

from campaigns.definitions import Campaign, Send, Step
from core.expressions import Expression
from core.program.program_file import BoostRule, ProgramFile
from core.program.yamlsource import Loc, ProgramIssue, SourceDocument
from coupons.definitions import CouponsFile
from notifications.template_files import TemplateFile

M = TypeVar("M", bound=BaseModel)
# `member.tier == "gold"` and `member.tier != 'gold'` name a tier inside CEL.
_TIER_IN_CEL = re.compile(r"""member\.tier\s*[!=]=\s*["']([^"']*)["']""")


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A validated model with the document it came from, for positions."""

    model: M
    document: SourceDocument


@dataclass(frozen=True)
class LoadedFiles:
    """Everything that loaded, plus the names of every template file present (loaded or not)."""

    program: Loaded[ProgramFile] | None
    coupons: Loaded[CouponsFile] | None
    campaigns: dict[str, Loaded[Campaign]] = field(default_factory=dict)
    templates: dict[str, Loaded[TemplateFile]] = field(default_factory=dict)
    template_names: frozenset[str] = frozenset()


def cross_reference(files: LoadedFiles) -> list[ProgramIssue]:
    """Every cross-file issue in the program, errors and warnings."""
    issues: list[ProgramIssue] = []
    if files.program is not None:
        issues += _check_boosts(files.program)
        issues += _check_template_locales(files, files.program.model.locales)
    for campaign in files.campaigns.values():
        issues += _check_campaign(campaign, files)
    if files.coupons is not None and files.program is not None:
        issues += _check_coupons(files.coupons, files.program.model)
    issues += _check_tiers_in_cel(files)
    return issues


def _did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _check_boosts(program: Loaded[ProgramFile]) -> Iterator[ProgramIssue]:
    rules = program.model.points.earn
    ids = {rule.id for rule in rules if not isinstance(rule, BoostRule)}
    for index, rule in enumerate(rules):
        if isinstance(rule, BoostRule) and rule.boosts not in ids:
            yield program.document.issue(
                ("points", "earn", index, "boosts"),
                f"boosts names no purchase or fixed earn rule: {rule.boosts!r}",
                hint=_did_you_mean(rule.boosts, ids),
            )


def _check_template_locales(files: LoadedFiles, locales: tuple[str, ...]) -> Iterator[ProgramIssue]:
    for template in files.templates.values():
        for loc, texts in template.model.texts():
            missing = [locale for locale in locales if locale not in texts]
            if missing:
                yield template.document.issue(
                    loc,
                    f"no text for locale {', '.join(map(repr, missing))}",
                    hint=f"every text needs each program locale: {', '.join(locales)}",
                )


def _check_campaign(campaign: Loaded[Campaign], files: LoadedFiles) -> Iterator[ProgramIssue]:
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
    if step.issue_coupon is not None and files.coupons is not None:
        coupon_ids = {coupon.id for coupon in files.coupons.model.coupons}
        if step.issue_coupon.coupon not in coupon_ids:
            yield document.issue(
                (*loc, "issue_coupon", "coupon"),
                f"no coupon {step.issue_coupon.coupon!r} in coupons.yaml",
                hint=_did_you_mean(step.issue_coupon.coupon, coupon_ids),
            )
    if step.send is not None:
        yield from _check_send(document, (*loc, "send"), step.send, files)


def _check_send(
    document: SourceDocument, loc: Loc, send: Send, files: LoadedFiles
) -> Iterator[ProgramIssue]:
    name = send.template
    if name not in files.template_names:
        yield document.issue(
            (*loc, "template"),
            f"no template {name!r} in templates/",
            hint=_did_you_mean(name, files.template_names),
        )
        return
    template = files.templates.get(name)
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


def _check_coupons(coupons: Loaded[CouponsFile], program: ProgramFile) -> Iterator[ProgramIssue]:
    tier_ids = {level.id for level in program.tiers.levels}
    for index, coupon in enumerate(coupons.model.coupons):
        for position, tier in enumerate(coupon.eligibility.tiers):
            if tier not in tier_ids:
                yield coupons.document.issue(
                    ("coupons", index, "eligibility", "tiers", position),
                    f"no tier {tier!r}",
                    hint=_did_you_mean(tier, tier_ids),
                )
        yield from _check_name_locales(
            coupons.document, ("coupons", index, "name"), coupon.name, program.locales
        )


def _expressions(files: LoadedFiles) -> Iterator[tuple[SourceDocument, Loc, Expression | None]]:
    """Every CEL expression in the program with where it is written."""
    if files.program is not None:
        for index, rule in enumerate(files.program.model.points.earn):
            yield files.program.document, ("points", "earn", index, "when"), rule.when
    if files.coupons is not None:
        for index, coupon in enumerate(files.coupons.model.coupons):
            yield (
                files.coupons.document,
                ("coupons", index, "eligibility", "when"),
                (coupon.eligibility.when),
            )
    for campaign in files.campaigns.values():
        trigger = campaign.model.trigger
        yield campaign.document, ("trigger", "when"), trigger.when
        audience = trigger.schedule.audience if trigger.schedule else None
        yield campaign.document, ("trigger", "schedule", "audience"), audience


def _check_tiers_in_cel(files: LoadedFiles) -> Iterator[ProgramIssue]:
    if files.program is None:
        return
    tier_ids = {level.id for level in files.program.model.tiers.levels}
    for document, loc, expression in _expressions(files):
        for tier in _TIER_IN_CEL.findall(expression.source if expression else ""):
            if tier not in tier_ids:
                yield document.issue(loc, f"no tier {tier!r}", hint=_did_you_mean(tier, tier_ids))


def _check_name_locales(
    document: SourceDocument, loc: Loc, names: dict[str, str], locales: tuple[str, ...]
) -> Iterator[ProgramIssue]:
    missing = [locale for locale in locales if locale not in names]
    if missing:
        yield document.issue(
            loc,
            f"no name for locale {', '.join(map(repr, missing))}",
            severity="warning",
            hint="members with that locale see the default locale's name",
        )

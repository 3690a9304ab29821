"""CEL at load and at ``check``: every expression against the variables where it is written.

For each ``when:`` and ``audience:`` in the program, with the variables its place gives it
(:mod:`core.cel.types`: an earn rule on ``review.posted`` sees ``member``, ``event`` and
``now``; a coupon sees ``member``, ``order``/``cart`` and ``now``; an audience ``member`` and
``now``):

1. every field it selects must exist (``member.birthday_mnth``: did you mean
   ``birthday_month``?) and operators must get types they take (:mod:`core.cel.typecheck`);
2. it must be a condition: true or false;
3. it is evaluated for each sample member (:mod:`core.cel.samples`); a failure there is a
   failure production would have for every such member. Null fields are the usual cause:
   ``member.days_since_last_order > 30`` fails for a member with no orders, while
   ``member.paid_orders > 0 && member.days_since_last_order > 30`` does not, so the issue
   names the null field and the guard that fixes it.

Each problem is a :class:`ProgramIssue` at the file position inside the expression.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from core.cel.parse import Unsupported, parse, position
from core.cel.samples import DESCRIPTIONS, sample_variables
from core.cel.sources import MissingSource
from core.cel.typecheck import TypeReport, check_types
from core.cel.types import BOOL, DYN, MEMBER, event_scope
from core.expressions import ExpressionError
from core.program.kinds import Loaded, LoadedFiles, Site
from core.program.kinds import expression_sites as registered_sites
from core.program.program_file import BoostRule, ProgramFile
from core.program.yamlsource import ProgramIssue, locate, position_inside

__all__ = ["Site", "check_expressions", "check_site", "expression_sites", "site_issue"]


def check_expressions(files: LoadedFiles) -> list[ProgramIssue]:
    """Every CEL issue in what loaded (evaluation needs program.yaml: zone, tiers)."""
    program = _ProgramView(files.program.model) if files.program is not None else None
    return [issue for site in expression_sites(files) for issue in check_site(site, program)]


def expression_sites(files: LoadedFiles) -> Iterator[Site]:
    """Every CEL expression in the program, with its place and scope: program.yaml's earn
    rules, then each package's (:func:`core.program.kinds.register_expressions`)."""
    if files.program is not None:
        yield from _earn_rule_sites(files.program)
    for sites in registered_sites:
        yield from sites(files)


def _earn_rule_sites(program: Loaded[ProgramFile]) -> Iterator[Site]:
    rules = program.model.points.earn
    on = {rule.id: rule.on for rule in rules if not isinstance(rule, BoostRule)}
    for index, rule in enumerate(rules):
        event_type = on.get(rule.boosts) if isinstance(rule, BoostRule) else rule.on
        what = f"an earn rule on {event_type}" if event_type else "a boost"
        if rule.when is not None:
            yield Site(
                program.document,
                ("points", "earn", index, "when"),
                rule.when,
                event_scope(what, event_type),
            )


def check_site(site: Site, program: Any | None) -> list[ProgramIssue]:
    """The issues of one expression: static ones first; evaluation only when there are none."""
    source = site.expression.source
    try:
        report = check_types(parse(source), site.scope)
    except (Unsupported, RecursionError):
        report = TypeReport()  # syntax (or nesting) this checker does not parse: evaluated only
    if report.problems:
        return [
            site_issue(site, problem.message, problem.hint, at=problem.at)
            for problem in report.problems
        ]
    if report.result not in (BOOL, DYN):
        return [
            site_issue(
                site,
                f"{source!r} gives a {report.result}, but a condition must be true or false",
                'compare it, such as member.tier == "gold" or member.paid_orders >= 1',
            )
        ]
    return _evaluate(site, report, program) if program is not None else []


def _evaluate(site: Site, report: TypeReport, program: Any) -> list[ProgramIssue]:
    try:
        samples = sample_variables(program, site.scope.event_type)
    except MissingSource:
        return []  # a package's fields are not registered: only the static check ran
    for name, variables in samples.items():
        seen = {root: variables[root] for root in site.scope.roots}
        try:
            site.expression.is_true(seen)
        except ExpressionError as exc:
            hint = _null_hint(report, seen.get("member", {}), DESCRIPTIONS[name])
            return [site_issue(site, f"fails for {DESCRIPTIONS[name]}: {_reason(exc)}", hint)]
    return []


def _reason(exc: ExpressionError) -> str:
    """The CEL library's error, first sentence (the rest is general advice)."""
    cause = exc.__cause__
    if cause is None or isinstance(cause, KeyError):
        return exc.message
    return str(cause).split(". ")[0].rstrip(".")


def _null_hint(report: TypeReport, member: Mapping[str, Any], who: str) -> str | None:
    """Name the null member fields the expression reads, and the guard that fixes them."""
    nulls = sorted(
        path
        for path in report.reads
        if path.startswith("member.")
        and path.count(".") == 1
        and path.split(".")[1] in MEMBER.nullable
        and member.get(path.split(".")[1]) is None
    )
    if not nulls:
        return None
    field = nulls[0]
    return (
        f"{' and '.join(nulls)} {'is' if len(nulls) == 1 else 'are'} null for {who}; "
        f"guard it: {field} != null && …"
    )


def site_issue(
    site: Site, message: str, hint: str | None, *, at: int | None = None
) -> ProgramIssue:
    """An issue about an expression, at offset ``at`` of its text (its start without one)."""
    issue = site.document.issue(site.loc, message, hint=hint)
    if at is None:
        return issue
    line, column = position(site.expression.source, at)
    spot = locate(site.document.tree, site.loc)
    line, column = position_inside(spot, line=line, column=column)
    return replace(issue, line=line, column=column)


@dataclass(frozen=True)
class _ProgramView:
    """What the samples read of a program (its program.yaml) while its files are checked."""

    program_file: ProgramFile

"""Checks across files: every name one file uses must exist in another, positioned where used.

Core checks its own: program.yaml's boosts name an earn rule, and every tier a CEL expression
names (``member.tier == "gold"``, in any file) is a level of program.yaml. Each package checks
its files through :func:`core.program.kinds.register_cross_check` (campaigns: steps name
coupons and templates; coupons: eligibility tiers; notifications: template locales).

Each check runs only on what loaded, so one broken file does not bury the rest under
follow-on errors (a send naming a template whose file failed is not reported again).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator

from core.program.cel_check import expression_sites
from core.program.kinds import Loaded, LoadedFiles, cross_checks
from core.program.program_file import BoostRule, ProgramFile
from core.program.yamlsource import ProgramIssue

# `member.tier == "gold"` and `member.tier != 'gold'` name a tier inside CEL.
_TIER_IN_CEL = re.compile(r"""member\.tier\s*[!=]=\s*["']([^"']*)["']""")


def cross_reference(files: LoadedFiles) -> list[ProgramIssue]:
    """Every cross-file issue in the program, errors and warnings."""
    issues: list[ProgramIssue] = []
    if files.program is not None:
        issues += _check_boosts(files.program)
    for check in cross_checks:
        issues += check(files)
    issues += _check_tiers_in_cel(files)
    return issues


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest of ``choices`` to a misspelt ``name``, if one is close."""
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
                hint=did_you_mean(rule.boosts, ids),
            )


def _check_tiers_in_cel(files: LoadedFiles) -> Iterator[ProgramIssue]:
    if files.program is None:
        return
    tier_ids = {level.id for level in files.program.model.tiers.levels}
    for site in expression_sites(files):
        for tier in _TIER_IN_CEL.findall(site.expression.source):
            if tier not in tier_ids:
                yield site.document.issue(
                    site.loc, f"no tier {tier!r}", hint=did_you_mean(tier, tier_ids)
                )

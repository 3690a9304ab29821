"""The coupons package's program file (``coupons.yaml``) and the checks across it.

Importing this module (the wiring does) registers the file kind, its eligibility ``when:``
expressions and the check that every tier and name locale it uses is one of program.yaml's.
"""

from __future__ import annotations

from collections.abc import Iterator

from core.cel.types import CHECKOUT
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
from core.program.program_file import ProgramFile
from core.program.yamlsource import Loc, ProgramIssue, SourceDocument
from coupons.definitions import CouponDefinition, CouponsFile


def _by_id(file: CouponsFile) -> dict[str, CouponDefinition]:
    return {coupon.id: coupon for coupon in file.coupons}


# program.coupons: id → CouponDefinition
COUPONS = FileKind(
    attribute="coupons",
    path="coupons.yaml",
    model=CouponsFile,
    schema_name="coupons",
    title="coupons.yaml: coupon definitions",
    collect=_by_id,
)


def check_coupons(files: LoadedFiles) -> Iterator[ProgramIssue]:
    """Each coupon's eligibility tiers exist; its name has every program locale (a warning)."""
    coupons = files.file("coupons", CouponsFile)
    if coupons is None or files.program is None:
        return
    program = files.program.model
    yield from _check_tiers(coupons, program)
    for index, coupon in enumerate(coupons.model.coupons):
        yield from _check_name_locales(
            coupons.document, ("coupons", index, "name"), coupon.name, program.locales
        )


def _check_tiers(coupons: Loaded[CouponsFile], program: ProgramFile) -> Iterator[ProgramIssue]:
    tier_ids = {level.id for level in program.tiers.levels}
    for index, coupon in enumerate(coupons.model.coupons):
        for position, tier in enumerate(coupon.eligibility.tiers):
            if tier not in tier_ids:
                yield coupons.document.issue(
                    ("coupons", index, "eligibility", "tiers", position),
                    f"no tier {tier!r}",
                    hint=did_you_mean(tier, tier_ids),
                )


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


def coupon_expressions(files: LoadedFiles) -> Iterator[Site]:
    """Each coupon's ``eligibility.when``, judged at checkout."""
    coupons = files.file("coupons", CouponsFile)
    if coupons is None:
        return
    for index, coupon in enumerate(coupons.model.coupons):
        if coupon.eligibility.when is not None:
            loc: Loc = ("coupons", index, "eligibility", "when")
            yield Site(coupons.document, loc, coupon.eligibility.when, CHECKOUT)


register_file_kind(COUPONS)
register_cross_check(check_coupons)
register_expressions(coupon_expressions)

"""``campaigns report``: what a campaign did, per arm, and whether its variants beat the holdout.

Pure: :func:`build_report` computes on the :class:`~campaigns.report_facts.ReportFacts` fetched
before. Per arm: entered, messaged (journeys with a message sent), conversions, the conversion
rate with its 95% Wilson score interval, revenue and revenue per entrant. Each variant (or
``main``, for a campaign with a holdout and no variants) is compared with the holdout: the
absolute lift (its rate minus the holdout's) with the 95% Newcombe hybrid score interval, the
two-sided p-value of the two-proportion z-test, significant when p < 0.05. Without a holdout, or
with an empty one, there is no lift, and ``lift_note`` says why. Money is Decimal (a string in
JSON); rates are floats.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.assignment import GLOBAL_CONTROL, HOLDOUT, MAIN
from campaigns.report_facts import ReportFacts
from campaigns.stats import newcombe_difference, two_proportion_z_test, wilson_interval

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05
CENT = Decimal("0.01")


@dataclass(frozen=True)
class ArmReport:
    """One arm's numbers; ``rate`` and its interval are None for an arm no one entered."""

    arm: str
    entered: int
    messaged: int
    conversions: int
    rate: float | None
    rate_low: float | None
    rate_high: float | None
    revenue: Decimal
    revenue_per_entrant: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "revenue": str(self.revenue),
            "revenue_per_entrant": _money(self.revenue_per_entrant),
        }


@dataclass(frozen=True)
class Lift:
    """An arm against the holdout: the rate difference, its interval, the z-test's p-value."""

    arm: str
    baseline: str
    difference: float
    low: float
    high: float
    z: float
    p_value: float
    significant: bool

    def as_dict(self) -> dict[str, Any]:
        # z is undefined when both arms convert none (or all): JSON has no NaN, so null
        return {k: None if isinstance(v, float) and math.isnan(v) else v
                for k, v in self.__dict__.items()}  # fmt: skip


@dataclass(frozen=True)
class CampaignReport:
    """A campaign's report; ``as_dict`` is the ``--json`` and what the HTML page draws."""

    campaign_id: str
    name: str
    generated_at: datetime
    arms: tuple[ArmReport, ...]
    messages: dict[str, dict[str, int]]  # channel → status → messages
    suppressions: dict[str, int]  # reason → messages suppressed
    lifts: tuple[Lift, ...]
    lift_note: str | None
    per_day: dict[str, int]  # business day (ISO date) → conversions

    @property
    def entered(self) -> int:
        return sum(arm.entered for arm in self.arms)

    @property
    def messaged(self) -> int:
        return sum(arm.messaged for arm in self.arms)

    @property
    def conversions(self) -> int:
        return sum(arm.conversions for arm in self.arms)

    @property
    def revenue(self) -> Decimal:
        return sum((arm.revenue for arm in self.arms), Decimal("0.00"))

    @property
    def rate(self) -> float | None:
        return self.conversions / self.entered if self.entered else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "generated_at": self.generated_at.isoformat(),
            "funnel": {
                "entered": self.entered,
                "messaged": self.messaged,
                "converted": self.conversions,
            },
            "rate": self.rate,
            "revenue": str(self.revenue),
            "arms": [arm.as_dict() for arm in self.arms],
            "messages": self.messages,
            "suppressions": self.suppressions,
            "lifts": [lift.as_dict() for lift in self.lifts],
            "lift_note": self.lift_note,
            "conversions_per_day": self.per_day,
        }


def build_report(facts: ReportFacts) -> CampaignReport:
    """The report of these facts."""
    arms = tuple(_arm(facts, name) for name in _arm_names(facts))
    lifts, note = _lifts(facts, {arm.arm: arm for arm in arms})
    messages: dict[str, dict[str, int]] = {}
    suppressions: Counter[str] = Counter()
    for row in facts.messages:
        by_status = messages.setdefault(row.channel or "none", {})
        by_status[row.status] = by_status.get(row.status, 0) + row.count
        if row.status == "suppressed":
            suppressions[row.reason or "unknown"] += row.count
    return CampaignReport(
        campaign_id=facts.campaign_id,
        name=facts.name,
        generated_at=facts.now,
        arms=arms,
        messages=messages,
        suppressions=dict(sorted(suppressions.items())),
        lifts=lifts,
        lift_note=note,
        per_day=_per_day(facts),
    )


def _arm_names(facts: ReportFacts) -> list[str]:
    """The experiment's arms in file order, then any others journeys ran (a removed variant,
    the global control group)."""
    named = list(facts.variants) or [MAIN]
    if facts.holdout > 0 or HOLDOUT in facts.entered:
        named.append(HOLDOUT)
    seen = set(facts.entered) | {c.arm for c in facts.conversions}
    rest = sorted(seen - set(named) - {GLOBAL_CONTROL})
    return named + rest + ([GLOBAL_CONTROL] if GLOBAL_CONTROL in seen else [])


def _arm(facts: ReportFacts, name: str) -> ArmReport:
    entered = facts.entered.get(name, 0)
    converted = [c for c in facts.conversions if c.arm == name]
    revenue = sum((c.revenue for c in converted), Decimal("0.00"))
    low, high = wilson_interval(len(converted), entered, confidence=CONFIDENCE) if entered else (
        None, None
    )  # fmt: skip
    return ArmReport(
        arm=name,
        entered=entered,
        messaged=facts.messaged.get(name, 0),
        conversions=len(converted),
        rate=len(converted) / entered if entered else None,
        rate_low=low,
        rate_high=high,
        revenue=revenue,
        revenue_per_entrant=(revenue / entered).quantize(CENT, ROUND_HALF_UP) if entered else None,
    )


def _lifts(facts: ReportFacts, arms: dict[str, ArmReport]) -> tuple[tuple[Lift, ...], str | None]:
    holdout = arms.get(HOLDOUT)
    if holdout is None:
        return (), "no holdout: the campaign has no experiment with a holdout to compare with"
    if holdout.entered == 0:
        return (), "no lift: the holdout is empty (no journey entered it yet)"
    compared = [arms[name] for name in (facts.variants or (MAIN,)) if name in arms]
    lifts = tuple(_lift(arm, holdout) for arm in compared if arm.entered)
    if not lifts:
        return (), "no lift: no variant has entrants yet"
    return lifts, None


def _lift(arm: ArmReport, holdout: ArmReport) -> Lift:
    x1, n1, x2, n2 = arm.conversions, arm.entered, holdout.conversions, holdout.entered
    low, high = newcombe_difference(x1, n1, x2, n2, confidence=CONFIDENCE)
    z, p = two_proportion_z_test(x1, n1, x2, n2)
    return Lift(arm.arm, HOLDOUT, x1 / n1 - x2 / n2, low, high, z, p, p < SIGNIFICANCE)


def _per_day(facts: ReportFacts) -> dict[str, int]:
    """Conversions per business day, every day from the first to the last (zeros included)."""
    zone = ZoneInfo(facts.zone)
    counts = Counter(c.converted_at.astimezone(zone).date() for c in facts.conversions)
    if not counts:
        return {}
    first, last = min(counts), max(counts)
    days: list[date] = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {day.isoformat(): counts.get(day, 0) for day in days}


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def summary_line(report: CampaignReport) -> dict[str, Any]:
    """``campaigns report --all``: one campaign's totals."""
    return {
        "campaign_id": report.campaign_id,
        "name": report.name,
        "entered": report.entered,
        "conversions": report.conversions,
        "rate": report.rate,
        "revenue": str(report.revenue),
    }


def report_lines(report: CampaignReport, *, zone: str) -> list[str]:
    """The report as plain text lines, none wider than 80 columns (ids and names aside)."""
    when = f"{report.generated_at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"
    width = max(14, *(len(arm.arm) + 2 for arm in report.arms))
    lines = [
        f"{report.campaign_id}: {report.name} (as of {when})",
        f"entered {report.entered}, messaged {report.messaged}, converted "
        f"{report.conversions} ({_pct(report.rate)}), revenue {report.revenue:,}",
        "",
        f"{'arm':<{width}}{'entered':>8}{'msgd':>6}{'conv':>6}{'rate':>7}  {'95% CI':<15}"
        f"{'revenue':>11}{'/entrant':>9}",
    ]
    for arm in report.arms:
        interval = f"{_pct(arm.rate_low)}-{_pct(arm.rate_high)}" if arm.rate is not None else "-"
        lines.append(
            f"{arm.arm:<{width}}{arm.entered:>8}{arm.messaged:>6}{arm.conversions:>6}"
            f"{_pct(arm.rate):>7}  {interval:<15}{arm.revenue:>11,}"
            f"{_amount(arm.revenue_per_entrant):>9}"
        )
    lines += ["", "lift over the holdout (rate difference, 95% Newcombe interval, z-test)"]
    lines += [f"  {report.lift_note}"] if report.lift_note else []
    for lift in report.lifts:
        verdict = "significant at 5%" if lift.significant else "not significant"
        lines.append(
            f"  {lift.arm:<{width - 2}} {_points(lift.difference)} [{_points(lift.low)}, "
            f"{_points(lift.high)}]  p {lift.p_value:.3f}  {verdict}"
        )
    lines += ["", "messages by channel"] + (
        [f"  {channel}: " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
         for channel, counts in sorted(report.messages.items())] or ["  none"]
    )  # fmt: skip
    lines += ["", "suppressions"] + (
        [f"  {reason} {n}" for reason, n in report.suppressions.items()] or ["  none"]
    )
    lines += ["", "conversions per day"] + (
        [f"  {day} {n}" for day, n in report.per_day.items()] or ["  none"]
    )
    return lines


def all_lines(rows: list[dict[str, Any]]) -> list[str]:
    """``campaigns report --all`` as text: one line per campaign."""
    if not rows:
        return ["no campaigns in the program"]
    width = max(12, *(len(row["campaign_id"]) for row in rows)) + 2
    lines = [f"{'campaign':<{width}}{'entered':>9}{'conv':>7}{'rate':>8}{'revenue':>13}"]
    for row in rows:
        lines.append(
            f"{row['campaign_id']:<{width}}{row['entered']:>9}{row['conversions']:>7}"
            f"{_pct(row['rate']):>8}{row['revenue']:>13}"
        )
    return lines


def _amount(value: Decimal | None) -> str:
    """An amount in the text report: ``50,322.96`` (the JSON keeps ``"50322.96"``)."""
    return "-" if value is None else f"{value:,}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _points(value: float) -> str:
    return f"{value * 100:+.1f} pts"

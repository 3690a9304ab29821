"""``program report``: what marketing as a whole adds, measured against the global control group.

Pure: :func:`build_program_report` computes on the
:class:`~campaigns.program_report_facts.ProgramReportFacts` fetched before. The members
registered by the window's end fall in two groups: the global control group
(``messaging.global_control``, ``campaigns.assignment.in_global_control``), whom no marketing
campaign reaches, and the marketed, everyone else. Per group: members, marketing messages sent
in the window (and per member), purchasers (members with an order paid in the window) with the
purchase rate and its 95% Wilson interval, orders, revenue (those orders net of their refunds)
and revenue per member. The lift of marketing is the marketed group minus the control group:
the purchase-rate difference with the 95% Newcombe interval and the two-sided z-test
(significant when p < 0.05), and the difference in revenue per member with its 95% normal
interval (unequal variances). Without a control group (share 0), or with an empty one, there is
no lift: ``note`` says why and only the marketed group is shown. Money is Decimal (a string in
JSON); rates are floats; what cannot be computed is None (null), never NaN.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.assignment import GLOBAL_CONTROL, in_global_control
from campaigns.program_report_facts import ProgramReportFacts, Window
from campaigns.stats import (
    mean_difference_interval,
    newcombe_difference,
    two_proportion_z_test,
    wilson_interval,
)

MARKETED = "marketed"
CONFIDENCE = 0.95
SIGNIFICANCE = 0.05
CENT = Decimal("0.01")


@dataclass(frozen=True)
class GroupReport:
    """One group's numbers; rates and per-member figures are None for an empty group."""

    group: str
    members: int
    messages: int
    messages_per_member: float | None
    purchasers: int
    purchase_rate: float | None
    rate_low: float | None
    rate_high: float | None
    orders: int
    revenue: Decimal
    revenue_per_member: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "revenue": str(self.revenue),
            "revenue_per_member": _money(self.revenue_per_member),
        }


@dataclass(frozen=True)
class MarketingLift:
    """The marketed group against the control group. The revenue interval is None when a group
    has fewer than 2 members (one member's revenue has no spread to estimate)."""

    rate_difference: float
    rate_low: float
    rate_high: float
    z: float
    p_value: float
    significant: bool
    revenue_per_member_difference: Decimal
    revenue_low: Decimal | None
    revenue_high: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: _number(v) for k, v in self.__dict__.items()},
            "revenue_per_member_difference": str(self.revenue_per_member_difference),
            "revenue_low": _money(self.revenue_low),
            "revenue_high": _money(self.revenue_high),
        }


@dataclass(frozen=True)
class ProgramReport:
    """The program's report; ``as_dict`` is the ``--json``."""

    window: Window
    generated_at: datetime
    share: Decimal
    groups: tuple[GroupReport, ...]  # marketed first, then the control group when there is one
    lift: MarketingLift | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.window.since.isoformat(),
            "until": self.window.until.isoformat(),
            "timezone": self.window.zone,
            "generated_at": self.generated_at.isoformat(),
            "global_control": str(self.share),
            "groups": [group.as_dict() for group in self.groups],
            "lift": self.lift.as_dict() if self.lift else None,
            "note": self.note,
        }


@dataclass
class _Totals:
    """A group's sums as the members are counted into it."""

    members: int = 0
    messages: int = 0
    purchasers: int = 0
    orders: int = 0
    revenue: Decimal = field(default_factory=lambda: Decimal("0.00"))
    revenue_squares: Decimal = field(default_factory=lambda: Decimal("0.0000"))


def build_program_report(facts: ProgramReportFacts) -> ProgramReport:
    """The report of these facts."""
    totals = _totals(facts)
    marketed, control = totals[MARKETED], totals[GLOBAL_CONTROL]
    groups = [_group(MARKETED, marketed)]
    note = _note(facts, control, marketed)
    if note is None or control.members:
        groups.append(_group(GLOBAL_CONTROL, control))
    lift = None if note else _lift(marketed, control)
    return ProgramReport(facts.window, facts.now, facts.share, tuple(groups), lift, note)


def _totals(facts: ProgramReportFacts) -> dict[str, _Totals]:
    control = {m for m in facts.members if in_global_control(m, facts.share)}
    totals = {MARKETED: _Totals(), GLOBAL_CONTROL: _Totals()}
    totals[GLOBAL_CONTROL].members = len(control)
    totals[MARKETED].members = len(facts.members) - len(control)
    for member_id, activity in facts.activity.items():
        group = totals[GLOBAL_CONTROL if member_id in control else MARKETED]
        group.messages += activity.messages
        group.purchasers += 1 if activity.orders else 0
        group.orders += activity.orders
        group.revenue += activity.revenue
        group.revenue_squares += activity.revenue * activity.revenue
    return totals


def _note(facts: ProgramReportFacts, control: _Totals, marketed: _Totals) -> str | None:
    if facts.share == 0:
        return (
            "no global control group: messaging.global_control is 0 in program.yaml, so every "
            "member is marketed; set it (e.g. 0.05) to measure what marketing adds"
        )
    if control.members == 0:
        return (
            f"no lift: the global control group is empty (no member registered by "
            f"{facts.window.until} falls in its {_share(facts.share)} share)"
        )
    if marketed.members == 0:
        return "no lift: every member registered by then is in the global control group"
    return None


def _group(name: str, totals: _Totals) -> GroupReport:
    n = totals.members
    low, high = wilson_interval(totals.purchasers, n, confidence=CONFIDENCE) if n else (None, None)
    return GroupReport(
        group=name,
        members=n,
        messages=totals.messages,
        messages_per_member=totals.messages / n if n else None,
        purchasers=totals.purchasers,
        purchase_rate=totals.purchasers / n if n else None,
        rate_low=low,
        rate_high=high,
        orders=totals.orders,
        revenue=totals.revenue,
        revenue_per_member=_cents(totals.revenue / n) if n else None,
    )


def _lift(marketed: _Totals, control: _Totals) -> MarketingLift:
    x1, n1, x2, n2 = marketed.purchasers, marketed.members, control.purchasers, control.members
    low, high = newcombe_difference(x1, n1, x2, n2, confidence=CONFIDENCE)
    z, p = two_proportion_z_test(x1, n1, x2, n2)
    revenue_low = revenue_high = None
    if n1 >= 2 and n2 >= 2:
        bounds = mean_difference_interval(
            n1, marketed.revenue, marketed.revenue_squares,
            n2, control.revenue, control.revenue_squares, confidence=CONFIDENCE,
        )  # fmt: skip
        revenue_low, revenue_high = (_cents(Decimal(repr(bound))) for bound in bounds)
    return MarketingLift(
        rate_difference=x1 / n1 - x2 / n2,
        rate_low=low,
        rate_high=high,
        z=z,
        p_value=p,
        significant=p < SIGNIFICANCE,
        revenue_per_member_difference=_cents(marketed.revenue / n1 - control.revenue / n2),
        revenue_low=revenue_low,
        revenue_high=revenue_high,
    )


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _share(share: Decimal) -> str:
    return f"{(share * 100).normalize():f}%"


def report_lines(report: ProgramReport) -> list[str]:
    """The report as plain text lines, none wider than 80 columns."""
    window, zone = report.window, report.window.zone
    when = f"{report.generated_at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"
    control = f"{_share(report.share)} of members, sent no marketing" if report.share else "none"
    lines = [
        f"program report: business days {window.since} to {window.until} ({zone})",
        f"as of {when}",
        f"global control group: {control}",
        "",
        f"{'':<{_LABEL}}" + "".join(f"{g.group.replace('_', ' '):>{_CELL}}" for g in report.groups),
    ]
    for label, cell in _ROWS:
        lines.append(f"{label:<{_LABEL}}" + "".join(f"{cell(g):>{_CELL}}" for g in report.groups))
    lines += ["", "lift of marketing: marketed minus global control, 95% intervals"]
    lines += [f"  {part}" for part in textwrap.wrap(report.note, 76)] if report.note else []
    if report.lift:
        lines += _lift_lines(report.lift)
    return lines


def _lift_lines(lift: MarketingLift) -> list[str]:
    verdict = "significant at 5%" if lift.significant else "not significant"
    revenue = (
        f"[{lift.revenue_low:+,}, {lift.revenue_high:+,}] (normal, unequal variances)"
        if lift.revenue_low is not None and lift.revenue_high is not None
        else "(no interval: a group has fewer than 2 members)"
    )
    return [
        f"  {'purchase rate':<20}{_points(lift.rate_difference)} [{_points(lift.rate_low)}, "
        f"{_points(lift.rate_high)}]  p {lift.p_value:.3f}  {verdict}",
        f"  {'revenue per member':<20}{lift.revenue_per_member_difference:+,} {revenue}",
    ]


_LABEL = 22
_CELL = 16
_ROWS: tuple[tuple[str, Any], ...] = (
    ("members", lambda g: str(g.members)),
    ("marketing messages", lambda g: str(g.messages)),
    ("  per member", lambda g: _decimal(g.messages_per_member)),
    ("purchasers", lambda g: str(g.purchasers)),
    ("purchase rate", lambda g: _pct(g.purchase_rate)),
    ("  95% Wilson interval", lambda g: _interval(g)),
    ("orders", lambda g: str(g.orders)),
    ("revenue", lambda g: f"{g.revenue:,}"),
    (
        "  per member",
        lambda g: "-" if g.revenue_per_member is None else f"{g.revenue_per_member:,}",
    ),
)


def _interval(group: GroupReport) -> str:
    if group.rate_low is None:
        return "-"
    return f"{_pct(group.rate_low)}-{_pct(group.rate_high)}"


def _decimal(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _points(value: float) -> str:
    return f"{value * 100:+.1f} pts"

"""What may be sent, to whom, and when: pure decisions on fetched values, ``now`` passed in.

The guardrails run in this order and the first that stops a message names the reason:

1. consent for the channel (the members projection's consent, withdrawn by ``member.updated``,
   and no unsubscribe recorded) → suppressed ``no_consent`` / ``unsubscribed``;
2. an address for the channel → suppressed ``no_address``;
3. the suppression list (hard bounces, complaints, invalid addresses) → ``suppressed_address``;
4. quiet hours in the member's time zone (marketing only) → deferred ``quiet_hours`` to the end
   of the window;
5. frequency caps per day and per week (marketing only; counted by :mod:`notifications.caps`)
   → ``frequency_cap_day`` / ``frequency_cap_week``: a campaign's message is suppressed (its
   step is skipped, the reason recorded), any other marketing message is deferred to when the
   cap allows (see :mod:`notifications.screening`).

Local times are turned into instants DST-safely: a wall time skipped by a spring-forward gap
means the instant the same length after the gap starts (02:30 on the day New York skips
02:00-03:00 is 03:30 EDT, as PEP 495 ``fold=0`` and java.time read it); a wall time repeated
when clocks fall back means its first occurrence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

CHANNELS = ("email", "sms", "push")
Outcome = Literal["send", "suppress", "defer"]
Period = Literal["day", "week"]


@dataclass(frozen=True)
class Recipient:
    """A member as the guardrails see them (from the members projection and unsubscribes)."""

    member_id: str
    first_name: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    timezone: str | None = None
    locale: str | None = None
    consents: Mapping[str, bool | None] = field(default_factory=dict)
    unsubscribed: frozenset[str] = frozenset()

    def address(self, channel: str) -> str | None:
        value = {"email": self.email, "sms": self.phone, "push": self.push_token}[channel]
        return value.strip() if value and value.strip() else None


@dataclass(frozen=True)
class QuietHours:
    """Member's local times; ``start`` after ``end`` means the window spans midnight."""

    start: time
    end: time


@dataclass(frozen=True)
class Policy:
    """The program's messaging guardrails (program.yaml ``messaging``)."""

    business_timezone: str = "UTC"
    quiet_hours: QuietHours | None = None
    per_day: int | None = None
    per_week: int | None = None

    @classmethod
    def from_program(cls, program: Any) -> Policy:
        if program is None:
            return cls()
        messaging = program.program_file.messaging
        quiet = messaging.quiet_hours
        cap = messaging.frequency_cap.marketing if messaging.frequency_cap else None
        return cls(
            business_timezone=program.program_file.program.timezone,
            quiet_hours=QuietHours(quiet.start, quiet.end) if quiet else None,
            per_day=cap.per_day if cap else None,
            per_week=cap.per_week if cap else None,
        )


@dataclass(frozen=True)
class Decision:
    """``send``, or ``suppress``/``defer`` with the reason (and for ``defer``, until when)."""

    outcome: Outcome
    reason: str | None = None
    until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "send"


SEND = Decision("send")


def check_receivable(recipient: Recipient, channel: str) -> Decision:
    """Guardrails 1 and 2: consent for the channel, then an address for it."""
    if recipient.consents.get(channel) is not True:
        return Decision("suppress", "no_consent")
    if channel in recipient.unsubscribed:
        return Decision("suppress", "unsubscribed")
    if recipient.address(channel) is None:
        return Decision("suppress", "no_address")
    return SEND


def choose_channel(
    recipient: Recipient, channels: Sequence[str]
) -> tuple[str | None, dict[str, Decision]]:
    """The first channel the member can receive (consent and address), and why not the others."""
    refused: dict[str, Decision] = {}
    for channel in channels:
        decision = check_receivable(recipient, channel)
        if decision.ok:
            return channel, refused
        refused[channel] = decision
    return None, refused


def decide(
    recipient: Recipient,
    *,
    channel: str,
    kind: str,
    suppressed: bool,
    policy: Policy,
    now: datetime,
) -> Decision:
    """Guardrails 1-4 for a send attempt now; caps (5) need counting, see :func:`cap_deferral`."""
    decision = check_receivable(recipient, channel)
    if not decision.ok:
        return decision
    if suppressed:
        return Decision("suppress", "suppressed_address")
    when, reason = planned_time(recipient, kind=kind, at=now, policy=policy)
    if reason is not None:
        return Decision("defer", reason, when)
    return SEND


def planned_time(
    recipient: Recipient, *, kind: str, at: datetime, policy: Policy
) -> tuple[datetime, str | None]:
    """When a message sent at ``at`` goes, caps aside (guardrail 4): ``at``, or for a
    marketing message inside the member's quiet hours their end, with ``quiet_hours``."""
    if kind == "marketing" and policy.quiet_hours is not None:
        end = quiet_hours_end(at, member_zone(recipient, policy), policy.quiet_hours)
        if end is not None:
            return end, "quiet_hours"
    return at, None


def member_zone(recipient: Recipient, policy: Policy) -> tzinfo:
    from notifications.formatting import zone

    try:
        return zone(recipient.timezone or policy.business_timezone)
    except (KeyError, ValueError):  # a zone the projection accepted but this host lacks
        return zone(policy.business_timezone)


def local_instant(day: date, at: time, zone: tzinfo) -> datetime:
    """The instant the clocks in ``zone`` show ``at`` on ``day`` (DST-safe, see the module)."""
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def in_quiet_hours(local: time, window: QuietHours) -> bool:
    if window.start == window.end:
        return False
    if window.start < window.end:
        return window.start <= local < window.end
    return local >= window.start or local < window.end


def quiet_hours_end(now: datetime, zone: tzinfo, window: QuietHours) -> datetime | None:
    """When the quiet window ``now`` falls in ends (an instant), or None if ``now`` is outside."""
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not in_quiet_hours(wall, window):
        return None
    ends_tomorrow = window.start > window.end and wall >= window.start
    day = local.date() + timedelta(days=1 if ends_tomorrow else 0)
    return local_instant(day, window.end, zone)


def cap_periods(now: datetime, zone: tzinfo) -> dict[Period, str]:
    """The member's current day and ISO week, as counter keys (``d2026-11-05``, ``w2026-W45``)."""
    local = now.astimezone(zone)
    year, week, _ = local.isocalendar()
    return {"day": f"d{local.date().isoformat()}", "week": f"w{year}-W{week:02d}"}


def cap_deferral(now: datetime, zone: tzinfo, period: Period, policy: Policy) -> datetime:
    """When a cap that is full ``now`` allows again: the member's next day (or Monday),
    moved past quiet hours if it starts inside them."""
    local = now.astimezone(zone)
    days = 1 if period == "day" else 7 - local.weekday()
    start = local_instant(local.date() + timedelta(days=days), time(0), zone)
    if policy.quiet_hours is not None:
        end = quiet_hours_end(start, zone, policy.quiet_hours)
        if end is not None:
            return end
    return start


def cap_limits(policy: Policy) -> dict[Period, int]:
    limits: dict[Period, int] = {}
    if policy.per_day:
        limits["day"] = policy.per_day
    if policy.per_week:
        limits["week"] = policy.per_week
    return limits

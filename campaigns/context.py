"""The variables a journey's message is rendered with (CONTRACT.md, "Template variables").

``member`` is CEL's member (the one variable builder, core.cel) plus first_name, tier_name and
points_balance; ``coupon`` is the newest coupon this journey issued to the recipient; ``points``
says what this journey awarded them and what of theirs expires next; ``cart`` and ``order`` come
from the trigger; ``referrer`` and ``referee`` from the referral that triggered the journey.

Built for a whole batch of messages at once: each source is one query for every recipient.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from campaigns.settings import referral_link
from campaigns.tables import journey_steps
from core.cel.history import fetch_histories
from core.cel.variables import VariableSettings, member_variables, spend_amounts
from core.db import in_values

EXPIRY_HORIZON = timedelta(days=366)  # "points.expiring": what of theirs expires within a year


@dataclass(frozen=True)
class Known:
    """What a batch's messages need, fetched once: members, journey steps, coupons, points."""

    members: Mapping[str, dict[str, Any]]
    locales: Mapping[str, str]
    steps: Mapping[tuple[str, str], list[Any]]  # (journey, recipient) → steps, oldest first
    coupons: Mapping[tuple[str, str], dict[str, Any]]  # (code, locale) → template value
    expiring: Mapping[str, dict[str, Any]]
    referral_codes: Mapping[str, str]


def message_variables(
    conn: Connection, journey: Any, *, recipient_id: str, program: Any, now: datetime
) -> dict[str, Any]:
    """Every template variable for one message of ``journey`` to ``recipient_id``."""
    [variables] = message_variables_for(conn, [(journey, recipient_id)], program=program, now=now)
    return variables


def message_variables_for(
    conn: Connection, wanted: Sequence[tuple[Any, str]], *, program: Any, now: datetime
) -> list[dict[str, Any]]:
    """The variables of each (journey, recipient) message, fetching for all of them at once."""
    known = _fetch(conn, wanted, program=program, now=now)
    return [_variables(journey, recipient, known, program) for journey, recipient in wanted]


def _people(journey: Any, recipient_id: str) -> list[str]:
    referral = (journey.context or {}).get("referral") or {}
    others = [str(referral[key]) for key in ("referrer_id", "referee_id") if referral.get(key)]
    return [recipient_id, *others]


def _fetch(
    conn: Connection, wanted: Sequence[tuple[Any, str]], *, program: Any, now: datetime
) -> Known:
    from loyalty.expiry import fetch_expiring_points
    from loyalty.referral_codes import fetch_codes

    people = sorted({person for j, r in wanted for person in _people(j, r)})
    recipients = sorted({r for _, r in wanted})
    members, locales = member_values(conn, people, program=program, now=now)
    steps = _journey_steps(conn, sorted({j.journey_id for j, _ in wanted}))
    expiring = {
        found.member_id: {
            "expiring": found.points,
            "expires_at": found.first_expires_at,
            "expiring_value": found.value,
        }
        for found in fetch_expiring_points(
            conn, now=now, within=EXPIRY_HORIZON, program=program, member_ids=recipients
        )
    }
    coupons = _coupons(conn, steps, locales, program)
    return Known(members, locales, steps, coupons, expiring, fetch_codes(conn, recipients))


def member_values(
    conn: Connection, member_ids: Sequence[str], *, program: Any, now: datetime
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``member`` for each id as templates see it, and each member's locale (members never
    seen are left out)."""
    from core.events.tables import members as member_rows
    from loyalty.limits import fetch_balances

    if not member_ids:
        return {}, {}
    settings = VariableSettings.from_program(program)
    default = program.program_file.program.default_locale
    profiles = {
        row.member_id: row
        for row in conn.execute(
            select(member_rows.c.member_id, member_rows.c.first_name, member_rows.c.locale).where(
                in_values(conn, member_rows.c.member_id, list(member_ids))
            )
        )
    }
    balances = fetch_balances(conn, list(profiles), now=now, usable_only=True)
    values: dict[str, dict[str, Any]] = {}
    for member_id, history in fetch_histories(conn, list(profiles), program=program).items():
        member = member_variables(history, settings, at=now)
        member["net_spend"], member["qualifying_spend"] = spend_amounts(history, settings, at=now)
        locale = profiles[member_id].locale or default
        member["first_name"] = profiles[member_id].first_name
        member["tier_name"] = _name(_level(program, member.get("tier")).name, locale)
        member["points_balance"] = balances.get(member_id, 0)
        values[member_id] = member
    return values, {m: profiles[m].locale or default for m in profiles}


def _journey_steps(conn: Connection, journey_ids: list[str]) -> dict[tuple[str, str], list[Any]]:
    found: dict[tuple[str, str], list[Any]] = defaultdict(list)
    if not journey_ids:
        return found
    query = (
        select(journey_steps)
        .where(in_values(conn, journey_steps.c.journey_id, journey_ids))
        .order_by(journey_steps.c.executed_at, journey_steps.c.step_id)
    )
    for row in conn.execute(query):
        found[(row.journey_id, row.member_id)].append(row)
    return found


def _coupons(
    conn: Connection,
    steps: Mapping[tuple[str, str], list[Any]],
    locales: Mapping[str, str],
    program: Any,
) -> dict[tuple[str, str], dict[str, Any]]:
    from coupons.template_values import coupon_template_values

    wanted = {
        (rows[-1].coupon_code, locales.get(member, ""))
        for (_, member), ran in steps.items()
        if (rows := [row for row in ran if row.coupon_code])
    }
    return coupon_template_values(conn, program, wanted)


def _variables(journey: Any, recipient: str, known: Known, program: Any) -> dict[str, Any]:
    context = dict(journey.context or {})
    referral = context.get("referral") or {}
    member = known.members.get(recipient, {"id": recipient})
    locale = known.locales.get(recipient) or program.program_file.program.default_locale
    ran = known.steps.get((journey.journey_id, recipient), [])
    own = context.get("points") if recipient == journey.member_id else None
    code = known.referral_codes.get(recipient)
    variables: dict[str, Any] = {
        "member": member,
        "tier": _tier(program, member.get("tier"), locale),
        "points": _points(own or known.expiring.get(recipient), ran),
        "referral": {"code": code, "link": referral_link(code) if code else None},
        **{key: context[key] for key in ("cart", "order") if key in context},
    }
    codes = [row.coupon_code for row in ran if row.coupon_code]
    if codes and (codes[-1], locale) in known.coupons:
        variables["coupon"] = known.coupons[(codes[-1], locale)]
    for role in ("referrer", "referee"):
        person = str(referral.get(f"{role}_id") or "")
        if person in known.members:
            variables[role] = known.members[person]
    return variables


def _level(program: Any, tier_id: str | None) -> Any:
    levels = program.program_file.tiers.levels
    return next((level for level in levels if level.id == tier_id), levels[0])


def _name(names: Mapping[str, str], locale: str) -> str:
    for key in (locale, locale.split("-")[0]):
        if key in names:
            return names[key]
    return next(iter(names.values()))


def _tier(program: Any, tier_id: str | None, locale: str) -> dict[str, Any]:
    level = _level(program, tier_id)
    return {
        "id": level.id,
        "name": _name(level.name, locale),
        "points_multiplier": level.points_multiplier,
    }


def _points(expiring: Mapping[str, Any] | None, ran: list[Any]) -> dict[str, Any]:
    none = {"expiring": 0, "expires_at": None, "expiring_value": Decimal("0.00")}
    return {"awarded": sum(row.points or 0 for row in ran), **(expiring or none)}

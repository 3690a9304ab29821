"""The variables a journey's message is rendered with (CONTRACT.md, "Template variables").

``member`` is CEL's member (the one variable builder, core.cel) plus first_name, tier_name and
points_balance; ``coupon`` is the newest coupon this journey issued to the recipient; ``points``
says what this journey awarded them and what of theirs expires next; ``cart`` and ``order`` come
from the trigger; ``referrer`` and ``referee`` from the referral that triggered the journey.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from campaigns.settings import referral_link
from campaigns.tables import journey_steps
from core.cel.history import fetch_histories
from core.cel.variables import VariableSettings, member_variables

EXPIRY_HORIZON = timedelta(days=366)  # "points.expiring": what of theirs expires within a year


def member_values(
    conn: Connection, member_ids: Sequence[str], *, program: Any, now: datetime
) -> dict[str, dict[str, Any]]:
    """``member`` for each id as templates see it (members never seen are left out)."""
    from loyalty.points import fetch_points

    settings = VariableSettings.from_program(program)
    values: dict[str, dict[str, Any]] = {}
    for member_id, history in fetch_histories(conn, member_ids, program=program).items():
        if history.profile is None:
            continue
        member = member_variables(history, settings, at=now)
        for key in ("net_spend", "qualifying_spend"):
            member[key] = Decimal(str(member[key])).quantize(Decimal("0.01"))
        level = _level(program, member.get("tier"))
        locale = history.profile.locale or program.program_file.program.default_locale
        member["first_name"] = _first_name(conn, member_id)
        member["tier_name"] = _name(level.name, locale) if level else member.get("tier")
        member["points_balance"] = fetch_points(conn, member_id, now=now).balance
        values[member_id] = member
    return values


def _first_name(conn: Connection, member_id: str) -> str | None:
    from core.events.tables import members

    query = select(members.c.first_name).where(members.c.member_id == member_id)
    return conn.execute(query).scalar()


def _level(program: Any, tier_id: str | None) -> Any:
    levels = program.program_file.tiers.levels
    return next((level for level in levels if level.id == tier_id), levels[0])


def _name(names: Mapping[str, str], locale: str) -> str:
    language = locale.split("-")[0]
    for key in (locale, language):
        if key in names:
            return names[key]
    return next(iter(names.values()))


def message_variables(
    conn: Connection,
    journey: Any,
    *,
    recipient_id: str,
    program: Any,
    now: datetime,
) -> dict[str, Any]:
    """Every template variable for a message of ``journey`` to ``recipient_id``."""
    context = dict(journey.context or {})
    referral = context.get("referral") or {}
    people = [recipient_id, *(referral.get(k) for k in ("referrer_id", "referee_id"))]
    known = member_values(conn, [p for p in people if p], program=program, now=now)
    member = known.get(recipient_id, {"id": recipient_id})
    locale = _locale(conn, recipient_id) or program.program_file.program.default_locale
    ran = _journey_steps(conn, journey.journey_id, recipient_id)
    own = context.get("points") if recipient_id == journey.member_id else None
    variables: dict[str, Any] = {
        "member": member,
        "tier": _tier(program, member.get("tier"), locale),
        "points": _points(conn, own, ran, recipient_id, program=program, now=now),
        "referral": _referral(conn, recipient_id),
        **{key: context[key] for key in ("cart", "order") if key in context},
    }
    coupon = _newest_coupon(conn, ran, program, locale)
    if coupon is not None:
        variables["coupon"] = coupon
    for role in ("referrer", "referee"):
        person = referral.get(f"{role}_id")
        if person in known:
            variables[role] = known[person]
    return variables


def _locale(conn: Connection, member_id: str) -> str | None:
    from core.events.tables import members

    return conn.execute(select(members.c.locale).where(members.c.member_id == member_id)).scalar()


def _journey_steps(conn: Connection, journey_id: str, member_id: str) -> list[Any]:
    return list(
        conn.execute(
            select(journey_steps)
            .where(journey_steps.c.journey_id == journey_id, journey_steps.c.member_id == member_id)
            .order_by(journey_steps.c.executed_at)
        )
    )


def _newest_coupon(
    conn: Connection, ran: list[Any], program: Any, locale: str
) -> dict[str, Any] | None:
    from coupons.template_values import coupon_template_value

    codes = [row.coupon_code for row in ran if row.coupon_code]
    if not codes:
        return None
    return coupon_template_value(conn, program, code=codes[-1], locale=locale)


def _tier(program: Any, tier_id: str | None, locale: str) -> dict[str, Any]:
    level = _level(program, tier_id)
    return {
        "id": level.id,
        "name": _name(level.name, locale),
        "points_multiplier": level.points_multiplier,
    }


def _points(
    conn: Connection,
    expiring: Mapping[str, Any] | None,
    ran: list[Any],
    member_id: str,
    *,
    program: Any,
    now: datetime,
) -> dict[str, Any]:
    from loyalty.expiry import fetch_expiring_points

    awarded = sum(row.points or 0 for row in ran)
    if not expiring:
        found = fetch_expiring_points(
            conn, now=now, within=EXPIRY_HORIZON, program=program, member_ids=[member_id]
        )
        expiring = (
            {
                "expiring": found[0].points,
                "expires_at": found[0].first_expires_at,
                "expiring_value": found[0].value,
            }
            if found
            else {"expiring": 0, "expires_at": None, "expiring_value": Decimal("0.00")}
        )
    return {"awarded": awarded, **expiring}


def _referral(conn: Connection, member_id: str) -> dict[str, Any]:
    from loyalty.referral_codes import fetch_codes

    code = fetch_codes(conn, [member_id]).get(member_id)
    return {"code": code, "link": referral_link(code) if code else None}

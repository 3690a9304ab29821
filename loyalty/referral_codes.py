"""Members' referral codes: the shop's (member.registered ``referral_code``), else generated.

Generated codes are 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L), drawn
from a cryptographic RNG (``secrets.SystemRandom``) unless a test passes its own ``Random``.
31^8 ≈ 8.5 × 10^11 codes; the unique key on ``code`` catches the rare collision and a fresh
code is drawn.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from core.db import insert_ignoring_any_conflict
from core.events.tables import members
from loyalty.tables import referral_codes

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
_ATTEMPTS = 5
system_rng: random.Random = secrets.SystemRandom()


def generate_code(rng: random.Random, *, length: int = CODE_LENGTH) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(length))


def _insert_ignoring_any_conflict(conn: Connection) -> Any:
    return insert_ignoring_any_conflict(conn, referral_codes).returning(referral_codes.c.member_id)


def assign_codes(
    conn: Connection, wanted: Mapping[str, str | None], *, now: datetime, rng: random.Random
) -> None:
    """Give each member the code the shop chose (None: a generated one), once.

    A member who already has a code keeps it. A shop code already held by another member is
    replaced by a generated one (codes must name one member).
    """
    todo = {member_id: code for member_id, code in wanted.items() if member_id}
    for attempt in range(_ATTEMPTS):
        if not todo:
            return
        rows = [
            {
                "member_id": member_id,
                "code": code.strip() if code and attempt == 0 else generate_code(rng),
                "source": "shop" if code and attempt == 0 else "generated",
                "created_at": now,
            }
            for member_id, code in sorted(todo.items())
        ]
        inserted = set(conn.execute(_insert_ignoring_any_conflict(conn), rows).scalars())
        holders = set(
            conn.execute(
                select(referral_codes.c.member_id).where(referral_codes.c.member_id.in_(list(todo)))
            ).scalars()
        )
        todo = {m: None for m in todo if m not in inserted and m not in holders}
    if todo:
        raise RuntimeError(f"could not find a free referral code for {sorted(todo)}")


def ensure_code(
    conn: Connection, member_id: str, *, now: datetime, rng: random.Random = system_rng
) -> str:
    """The member's referral code, generating one if they have none yet."""
    assign_codes(conn, {member_id: None}, now=now, rng=rng)
    return fetch_codes(conn, [member_id])[member_id]


def fetch_codes(conn: Connection, member_ids: Sequence[str]) -> dict[str, str]:
    query = select(referral_codes.c.member_id, referral_codes.c.code).where(
        referral_codes.c.member_id.in_(list(member_ids))
    )
    return dict(conn.execute(query).all())  # type: ignore[arg-type]


def resolve_codes(conn: Connection, codes: Sequence[str]) -> dict[str, str]:
    """code → member id, for the codes known (ours, else the shop's projection)."""
    wanted = sorted({code for code in codes if code})
    if not wanted:
        return {}
    found: dict[str, str] = dict(
        conn.execute(
            select(members.c.referral_code, members.c.member_id).where(
                members.c.referral_code.in_(wanted)
            )
        ).all()
    )
    found.update(
        conn.execute(
            select(referral_codes.c.code, referral_codes.c.member_id).where(
                referral_codes.c.code.in_(wanted)
            )
        ).all()
    )
    return found

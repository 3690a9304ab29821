"""Only the ``member`` fields an expression reads are built, with the values of the full set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from core.cel.history import MemberHistory, PaidOrder
from core.cel.types import MEMBER
from core.cel.variables import VariableSettings, member_fields_read, member_variables


@pytest.mark.parametrize(
    ("sources", "fields"),
    [
        (["member.birthday_month == now.month"], {"birthday_month"}),
        (["member.consents.email && member.tier == 'gold'"], {"consents", "tier"}),
        (["order.items.exists(i, i.qty > member.paid_orders)"], {"paid_orders"}),
        (["now.month == 4", "event.data.has_photo"], set()),
        (["size(member) > 2"], None),
        (["has(member.referred_by)"], {"referred_by"}),
    ],
)
def test_the_member_fields_an_expression_reads(sources: list[str], fields: set[str] | None) -> None:
    found = member_fields_read(sources)

    assert found == (None if fields is None else frozenset(fields))


def test_building_some_fields_gives_the_values_of_building_all() -> None:
    at = datetime(2026, 11, 5, tzinfo=UTC)
    history = MemberHistory(
        "m-1", orders=(PaidOrder("o-1", at - timedelta(days=3), Decimal("120.00")),)
    )
    settings = VariableSettings(ZoneInfo("Asia/Shanghai"), timedelta(days=365))
    overrides = {"tier": "leaf", "tier_rank": 0, "referrals": 0}

    full = member_variables(history, settings, at=at, overrides=overrides)
    some = member_variables(
        history, settings, at=at, overrides=overrides, fields=frozenset({"paid_orders", "locale"})
    )

    assert set(full) == set(MEMBER.fields)
    assert some == {"paid_orders": full["paid_orders"], "locale": full["locale"]}

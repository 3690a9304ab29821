"""Other packages read tiers through loyalty.tiers_store; members never tiered hold the lowest."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine

from loyalty.tiers_store import fetch_tiers, write_tier

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_a_written_tier_is_read_back_and_unknown_members_hold_the_default(engine: Engine) -> None:
    with engine.begin() as conn:
        write_tier(conn, "m-1", "silver", qualifying_spend=Decimal("20000.00"), now=NOW)
        write_tier(conn, "m-1", "gold", qualifying_spend=Decimal("50000.00"), now=NOW)
        tiers = fetch_tiers(conn, ["m-1", "m-2"], default="regular")

    assert tiers == {"m-1": "gold", "m-2": "regular"}

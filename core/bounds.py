"""The engine's numeric bounds: far above what any shop uses, far below where arithmetic breaks.

Points are stored in 64-bit columns (at most 9,223,372,036,854,775,807). SQLite's ``SUM`` of
integers raises on overflow and PostgreSQL's ``sum(bigint)`` is exact, so the bounds are chosen
for what the engine sums, not only for what it stores:

* one operation (an earn, award, adjustment, redemption; ``points_redeemed`` of an order) moves
  at most :data:`MAX_POINTS_PER_OPERATION`, 10^9: at 100 points per unit of the currency, an
  order of 10 million;
* a member holds at most :data:`MAX_POINTS_BALANCE`, 10^12 (a thousand maximal operations), so
  the balances of 9 million members at the ceiling still sum inside 64 bits, and a member's
  ledger would need 9 billion maximal entries to overflow one ``SUM``.

Program files (``check``) are bounded so that no rule can ask for more: fixed points and awards
per operation, multipliers (a maximal order at the largest multiplier and boosts still computes
exactly in Decimal, and its credit is capped at one operation), days (a window or expiry of 100
years stays inside Python's datetime), counts (caps and limits: the per-member coupon limit
is a row per use, so it stays small) and money (the largest amount an event may carry).
"""

from __future__ import annotations

from decimal import Decimal

MAX_POINTS_PER_OPERATION = 1_000_000_000
MAX_POINTS_BALANCE = 1_000_000_000_000

# The largest amount an event carries (16 digits, 2 after the point: core.events.types.Amount)
# and so the largest threshold, discount or budget a program may name.
MAX_AMOUNT = Decimal("99999999999999.99")
# Tier multipliers and boosts.
MAX_MULTIPLIER = 100
# Points worth one unit of the currency (redeem.points_per_unit).
MAX_POINTS_PER_UNIT = 10_000
# Windows, pending periods, expiry and referral days; durations (``valid_for: 2w``) alike.
MAX_DAYS = 36_500
# Caps per period (earn caps, referrals per month, messages per day or week), experiment weights.
MAX_COUNT = 1_000_000
# A coupon's uses per member: each is a row the redemption takes, so the limit stays small.
MAX_USES_PER_MEMBER = 1_000
# A coupon's total uses (a 32-bit counter).
MAX_TOTAL_USES = 1_000_000_000
# Any other whole number in a program file.
MAX_WHOLE_NUMBER = MAX_POINTS_PER_OPERATION

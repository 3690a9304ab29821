"""Errors of the loyalty package, one tree::

    LoyaltyError                  base of this package
    ├── ProgramRequired           the operation needs a loaded program and none is loaded
    ├── UnknownMember             no event has named the member
    ├── PointsError               a points operation was refused
    │   ├── InvalidPoints         the number of points makes no sense for the operation
    │   ├── InsufficientPoints    fewer available points than the operation needs
    │   ├── PointsLimitExceeded   more points than one operation moves or a member may hold
    │   ├── RedemptionRefused     the redemption breaks a redeem rule of program.yaml
    │   ├── OrderAlreadyRedeemed  the order already carries a redemption
    │   └── PointsNotHeld         a checkout cannot hold the points (``reason`` says why)
    └── LedgerConflict            a lot changed under a locked update (a broken invariant)

"Not eligible" outcomes of rules (a capped earn, a rejected referral) are results, not errors.
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Raised when a loyalty operation cannot be done; the base of this package's errors."""


class ProgramRequired(LoyaltyError):
    """Raised when an operation needs the program (tiers, points rules) and none is loaded."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation} needs the program; pass --program DIR or set LOYALTY_PROGRAM_DIR"
        )


class UnknownMember(LoyaltyError):
    """Raised when no event has named the member id."""

    def __init__(self, member_id: str) -> None:
        super().__init__(
            f"no member by the id of {member_id!r} was found; check the id or ingest "
            "its member.registered event"
        )
        self.member_id = member_id


class PointsError(LoyaltyError):
    """Raised when a points operation is refused; the base of the points errors."""


class InvalidPoints(PointsError):
    """Raised when the number of points is zero, negative or otherwise unusable."""


class InsufficientPoints(PointsError):
    """Raised when the member has fewer available points than the operation needs."""

    def __init__(self, member_id: str, *, wanted: int, available: int) -> None:
        super().__init__(
            f"member {member_id!r} has {available} available points, {wanted} were asked for; "
            "pending points become available after the return window"
        )
        self.member_id = member_id
        self.wanted = wanted
        self.available = available


class PointsLimitExceeded(PointsError):
    """Raised when points exceed what one operation moves or a member holds (core.bounds)."""

    def __init__(self, message: str, *, points: int, limit: int) -> None:
        super().__init__(message)
        self.points = points
        self.limit = limit


class RedemptionRefused(PointsError):
    """Raised when a redemption breaks min_points or max_order_share of program.yaml."""


class OrderAlreadyRedeemed(PointsError):
    """Raised when an order already carries a redemption (one per order)."""

    def __init__(self, order_id: str, *, points: int) -> None:
        super().__init__(
            f"order {order_id!r} already redeemed {points} points; one redemption per order"
        )
        self.order_id = order_id
        self.points = points


class PointsNotHeld(PointsError):
    """Raised when a checkout cannot hold points for an order; ``reason`` is a reason code
    (``points.below_minimum``, ``points.over_order_share``, ``points.insufficient``)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LedgerConflict(LoyaltyError):
    """Raised when a lot no longer holds the points a locked update expected."""

    def __init__(self, lot_id: int, points: int) -> None:
        super().__init__(
            f"lot {lot_id} no longer holds {points} points; the member's account lock was not "
            "held, retry the operation"
        )
        self.lot_id = lot_id

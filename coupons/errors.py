"""The coupons package's exceptions: bad input and refused checkout operations.

"This coupon does not apply to this cart" is not an exception: eligibility returns decisions
(:mod:`coupons.eligibility`). Exceptions are for input that cannot be used and for checkout
operations that must not happen (the loser of a race gets one of these, cleanly)::

    CouponError                     base of this package
    ├── UnknownCoupon               no coupon by that id in coupons.yaml
    ├── UnknownMember               no event has named the member
    ├── CouponNotIssuable           the coupon's validity window is over
    ├── InvalidCode                 the text cannot be a code (wrong length or characters)
    ├── InvalidCart                 the cart file is not a cart
    ├── TooManyCodes                more codes asked of one generate call than it makes
    ├── CodeFileError               the file for generated codes cannot be written
    ├── UnknownReservation          no checkout reservation by that id
    └── CheckoutRefused             a checkout operation was refused; ``reasons`` say why
        ├── CodeUnavailable         the code is not the member's, or is used/reserved/expired
        ├── NotEligible             the cart does not meet the coupon's conditions or stacking
        └── LimitReached            a per-member, total or budget limit has no room left
"""

from __future__ import annotations

from collections.abc import Sequence


class CouponError(Exception):
    """Raised when a coupon operation cannot be done; the base of this package's exceptions."""


class UnknownCoupon(CouponError):
    """Raised when no coupon by the given id is defined in coupons.yaml."""

    def __init__(self, coupon_id: str, known: Sequence[str] = ()) -> None:
        listed = f"; the coupons are {', '.join(sorted(known))}" if known else ""
        super().__init__(f"no coupon by the id of {coupon_id!r} was found in coupons.yaml{listed}")
        self.coupon_id = coupon_id


class UnknownMember(CouponError):
    """Raised when a coupon is issued to, or checked for, a member no event has named."""

    def __init__(self, member_id: str) -> None:
        super().__init__(
            f"no member by the id of {member_id!r} was found; check the id or ingest "
            "its member.registered event"
        )
        self.member_id = member_id


class CouponNotIssuable(CouponError):
    """Raised when a coupon is issued after its valid_between window has ended."""


class InvalidCode(CouponError):
    """Raised when a text cannot be a coupon code, even after normalisation."""


class InvalidCart(CouponError):
    """Raised when a cart (a file or an order's items) is not a valid cart."""


class TooManyCodes(CouponError):
    """Raised when one call is asked for more codes than MAX_CODES_PER_CALL (or fewer than 1)."""

    def __init__(self, count: int, most: int) -> None:
        super().__init__(
            f"cannot generate {count} codes in one call: give 1 to {most:,}; "
            "for more, run coupons generate several times"
        )
        self.count = count


class CodeFileError(CouponError):
    """Raised when the file for generated codes cannot be written (nothing is stored then)."""


class UnknownReservation(CouponError):
    """Raised when a checkout reservation id names no reservation."""

    def __init__(self, reservation_id: str) -> None:
        super().__init__(
            f"no checkout reservation by the id of {reservation_id!r} was found; use the "
            "reservation_id that POST /v1/checkout/reserve returned"
        )
        self.reservation_id = reservation_id


class CheckoutRefused(CouponError):
    """Raised when a reservation or redemption is refused; ``reasons`` are reason codes."""

    def __init__(self, message: str, *, code: str | None = None, reasons: Sequence[str] = ()):
        super().__init__(message)
        self.code = code
        self.reasons = tuple(reasons)


class CodeUnavailable(CheckoutRefused):
    """Raised when a code is not the member's, or is already used, reserved or expired."""


class NotEligible(CheckoutRefused):
    """Raised when a cart does not meet a coupon's conditions or the stacking rules."""


class LimitReached(CheckoutRefused):
    """Raised when a per-member, total or budget limit has no room left for this use."""

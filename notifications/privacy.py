"""Keeping addresses out of what is logged, stored as an error or printed.

Provider replies often quote the address they refused ("550 <alice@example.com>: no such
user"); :func:`scrub` masks every email address and phone number in such text with
``core.privacy``'s masks. Addresses on the suppression list are kept only as a hash.
"""

from __future__ import annotations

import hashlib
import re

from core.privacy import mask_address, mask_email, mask_phone

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d -]{6,}\d")

__all__ = ["address_hash", "mask_address", "scrub"]


def scrub(text: str) -> str:
    """``text`` with every email address and phone number masked."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)) or "", text)
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"[ -]", "", m.group(0))) or "", text)


def address_hash(channel: str, address: str) -> str:
    """A stable key for an address (case and spacing of emails ignored), never reversible."""
    normalized = address.strip().lower() if channel == "email" else re.sub(r"[\s-]", "", address)
    return hashlib.sha256(f"{channel}:{normalized}".encode()).hexdigest()

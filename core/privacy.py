"""Masking personal data wherever it is printed or logged: 138****0001, a***@example.com."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    """Keep the first three and last four digits of the national number."""
    if not phone:
        return phone
    digits = phone.removeprefix("+86") if phone.startswith("+86") else phone
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_email(email: str | None) -> str | None:
    """Keep the first character of the local part and the whole domain."""
    if not email or "@" not in email:
        return "***" if email else email
    local, domain = email.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_address(channel: str, address: str | None) -> str | None:
    """Mask an address by channel (push tokens keep only their last six characters)."""
    if channel == "email":
        return mask_email(address)
    if channel == "sms":
        return mask_phone(address)
    return f"…{address[-6:]}" if address else address

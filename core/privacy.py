"""Masking personal data wherever it is printed or logged: 138****0001, a***@example.com."""

from __future__ import annotations

import json
import re
from typing import Any


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


# --- free text: raw event lines and error reasons --------------------------------------------

_ADDRESS_KEYS = {"email": "email", "phone": "sms", "push_token": "push"}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 7 to 15 digits, optionally +, spaces or dashes between; not an ISO date, not inside a word.
_PHONE = re.compile(
    r"(?<![\w.:+-])(?!\d{4}-\d\d?-\d\d?(?!\d))\+?\d(?:[ -]?\d){6,14}(?![\w:-]|\.\d)"
)
_QUOTED_ADDRESS = re.compile(r'"(email|phone|push_token)"(\s*:\s*)"((?:[^"\\]|\\.)*)"')


def mask_text(text: str) -> str:
    """``text`` with every email address, phone number and quoted push token masked."""
    text = _QUOTED_ADDRESS.sub(_mask_quoted, text)
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)) or "", text)
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"[ -]", "", m.group(0))) or "", text)


def _mask_quoted(match: re.Match[str]) -> str:
    key, colon, value = match.groups()
    return f'"{key}"{colon}"{mask_address(_ADDRESS_KEYS[key], value)}"'


def mask_raw_event(raw: str) -> str:
    """A raw event line as printed: addresses masked, whether or not the line is valid JSON."""
    try:
        return json.dumps(mask_document(json.loads(raw)), ensure_ascii=False)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to walk
        return mask_text(raw)


def mask_document(value: Any, key: str | None = None) -> Any:
    """A JSON value with addresses masked: by key (email, phone, push_token), else by pattern."""
    if isinstance(value, dict):
        return {k: mask_document(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_document(item) for item in value]
    channel = _ADDRESS_KEYS.get(key or "")
    if channel and value is not None and not isinstance(value, bool):
        return mask_address(channel, str(value))  # a phone sent as a number is still a phone
    return mask_text(value) if isinstance(value, str) else value

"""How many SMS segments a text costs: GSM-7 (160 per message, 153 per part) or UCS-2 (70, 67).

A text is GSM-7 only if every character is in the GSM 03.38 default alphabet or its extension
table (extension characters take two septets). Anything else (Chinese, most emoji) makes the
whole message UCS-2, counted in UTF-16 code units (an emoji outside the BMP takes two).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
LIMITS: dict[str, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}
MAX_SEGMENTS_WITHOUT_WARNING = 3


@dataclass(frozen=True)
class SegmentCount:
    """``units``: septets (GSM-7) or UTF-16 code units (UCS-2)."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    segments: int


def count_segments(text: str) -> SegmentCount:
    """The encoding an SMS gateway would pick for ``text`` and how many segments it bills."""
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        units = sum(2 if char in GSM7_EXTENSION else 1 for char in text)
        return SegmentCount("GSM-7", units, _segments(units, "GSM-7"))
    units = len(text.encode("utf-16-le")) // 2
    return SegmentCount("UCS-2", units, _segments(units, "UCS-2"))


def _segments(units: int, encoding: str) -> int:
    single, part = LIMITS[encoding]
    if units <= single:
        return 1
    return -(-units // part)


def sign(body: str, signature: str) -> str:
    """The program's SMS signature (``【生活家】``) at the start, as gateways in China require."""
    if not signature or body.startswith(signature):
        return body
    return f"{signature}{body}"

"""Coupon codes: unguessable, easy to read aloud and type, normalised on the way in.

A code is 12 characters from a 31-character alphabet without the look-alikes 0/O and 1/I/L,
shown and stored in groups of four: ``K7QM-4XRT-9HPW``. That is 59 bits of cryptographic
randomness: with a million live codes, a guess hits one with odds of about 1 in 10^12.

Typed input is forgiven what people get wrong: case, spaces and dashes, full-width characters
from a Chinese input method (NFKC) and Cyrillic or Greek letters that look Latin. Since no code
holds 0, O, 1, I or L, input with one of those is refused with that hint, never guessed at.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Container
from typing import Protocol

from coupons.errors import InvalidCode, TooManyCodes

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 12
GROUP = 4
AMBIGUOUS = "0O1IL"
# Codes one generate call makes, in one transaction (and one file); at a million live codes
# a guess still hits one with odds of about 1 in 10^12 (above).
MAX_CODES_PER_CALL = 1_000_000

# Bytes 0..247 map onto the alphabet 8 times over, so each character is equally likely; bytes
# 248..255 are dropped (rejection sampling done by bytes.translate, in C).
_USABLE_BYTES = len(ALPHABET) * (256 // len(ALPHABET))
_BYTE_TO_CHAR = bytes(
    ord(ALPHABET[b % len(ALPHABET)]) if b < _USABLE_BYTES else 0 for b in range(256)
)
_DROPPED = bytes(range(_USABLE_BYTES, 256))
# Letters that look Latin, after upper-casing: Cyrillic, then Greek.
_HOMOGLYPHS = str.maketrans(
    "АВЕКМНОРСТХУЅΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "ABEKMHOPCTXYSABEZHIKMNOPTYX",
)
_SEPARATORS = frozenset(" -_.·・—–‐\u3000\t")


class RandomBytes(Protocol):
    """What code generation needs of an RNG (``secrets.SystemRandom`` and ``random.Random``)."""

    def randbytes(self, n: int, /) -> bytes: ...


def system_random() -> RandomBytes:
    """The default RNG: the operating system's cryptographic randomness."""
    return secrets.SystemRandom()


def format_code(raw: str) -> str:
    """``K7QM4XRT9HPW`` → ``K7QM-4XRT-9HPW``."""
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def check_code_count(count: int) -> None:
    """Refuse a generate call for fewer than 1 or more than MAX_CODES_PER_CALL codes."""
    if not 1 <= count <= MAX_CODES_PER_CALL:
        raise TooManyCodes(count, MAX_CODES_PER_CALL)


def generate_codes(
    count: int, *, rng: RandomBytes | None = None, taken: Container[str] = ()
) -> list[str]:
    """``count`` distinct codes, none of them in ``taken``; uniform over the alphabet."""
    rng = rng or system_random()
    found: dict[str, None] = {}
    while len(found) < count:
        for code in _draw(count - len(found), rng):
            if code not in taken:
                found[code] = None
    return list(found)[:count]


def _draw(count: int, rng: RandomBytes) -> list[str]:
    # ~3% of bytes are dropped; ask for a little more so one draw nearly always suffices.
    raw = rng.randbytes(count * LENGTH * 33 // 32 + 64)
    text = raw.translate(_BYTE_TO_CHAR, _DROPPED).decode("ascii")
    return [
        f"{text[i : i + 4]}-{text[i + 4 : i + 8]}-{text[i + 8 : i + 12]}"
        for i in range(0, len(text) - LENGTH + 1, LENGTH)
    ][:count]


def normalise_code(text: str) -> str:
    """The stored form of a code as someone typed it; InvalidCode when it cannot be one."""
    folded = unicodedata.normalize("NFKC", text).upper().translate(_HOMOGLYPHS)
    raw = "".join(char for char in folded if char not in _SEPARATORS)
    ambiguous = sorted({char for char in raw if char in AMBIGUOUS})
    if ambiguous:
        raise InvalidCode(
            f"{text!r} is not a coupon code: codes never contain {', '.join(AMBIGUOUS)} "
            f"(found {', '.join(ambiguous)}); check the code for a misread character"
        )
    unknown = sorted({char for char in raw if char not in ALPHABET})
    if unknown or len(raw) != LENGTH:
        raise InvalidCode(
            f"{text!r} is not a coupon code: a code is {LENGTH} letters and digits such as "
            f"K7QM-4XRT-9HPW" + (f" (unexpected {''.join(unknown)!r})" if unknown else "")
        )
    return format_code(raw)

"""Codes: unguessable, unambiguous, unique in a batch, forgiving of how people type them."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from coupons.codes import ALPHABET, AMBIGUOUS, generate_codes, normalise_code
from coupons.errors import InvalidCode

CODE = re.compile(rf"^[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")


def test_the_alphabet_has_no_look_alikes() -> None:
    assert not set(AMBIGUOUS) & set(ALPHABET)
    assert len(ALPHABET) == len(set(ALPHABET)) == 31


def test_generated_codes_are_distinct_and_well_formed() -> None:
    codes = generate_codes(20_000)

    assert len(set(codes)) == 20_000
    assert all(CODE.match(code) for code in codes)


def test_an_injected_rng_makes_generation_reproducible() -> None:
    assert generate_codes(5, rng=random.Random(7)) == generate_codes(5, rng=random.Random(7))


def test_every_character_of_the_alphabet_is_about_equally_likely() -> None:
    codes = generate_codes(10_000, rng=random.Random(1))
    counts = Counter("".join(codes).replace("-", ""))

    expected = 10_000 * 12 / len(ALPHABET)
    assert set(counts) == set(ALPHABET)
    assert all(abs(n - expected) < 0.1 * expected for n in counts.values())


def test_codes_already_taken_are_never_generated_again() -> None:
    taken = set(generate_codes(3, rng=random.Random(3)))

    fresh = generate_codes(3, rng=random.Random(3), taken=taken)

    assert not taken & set(fresh) and len(fresh) == 3


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("K7QM-4XRT-9HPW", "K7QM-4XRT-9HPW"),
        ("k7qm4xrt9hpw", "K7QM-4XRT-9HPW"),
        ("  k7qm 4xrt 9hpw ", "K7QM-4XRT-9HPW"),
        ("Ｋ７ＱＭ－４ＸＲＴ－９ＨＰＷ", "K7QM-4XRT-9HPW"),  # full-width, from a Chinese IME
        ("КАВС-ЕНМР-ТХ23", "KABC-EHMP-TX23"),  # Cyrillic look-alikes
        ("K7QM_4XRT.9HPW", "K7QM-4XRT-9HPW"),
    ],
)
def test_typed_codes_are_normalised_to_the_stored_form(typed: str, stored: str) -> None:
    assert normalise_code(typed) == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("K0QM-4XRT-9HPW", "codes never contain 0, O, 1, I, L (found 0)"),
        ("KOQM-4XRT-9HPW", "(found O)"),
        ("k1qm-4xrt-9hpl", "(found 1, L)"),
        ("K7QM-4XRT", "a code is 12 letters and digits"),
        ("K7QM-4XRT-9HP#", "unexpected '#'"),
    ],
)
def test_text_that_cannot_be_a_code_is_refused_with_the_reason(typed: str, message: str) -> None:
    with pytest.raises(InvalidCode) as raised:
        normalise_code(typed)

    assert message in str(raised.value)

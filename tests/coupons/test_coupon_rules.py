"""Rules compile once per loaded program and keep only the conditions a coupon uses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.program.loader import Program, load_program
from coupons.definitions import CouponsFile
from coupons.eligibility import (
    check_excluded,
    check_next_step,
    check_threshold,
    check_tiers,
    check_window,
)
from coupons.rules import get_rules


def test_rules_are_built_once_per_program_object(program: Program) -> None:
    assert get_rules(program) is get_rules(program)


def test_a_reloaded_program_gets_its_own_rules(program: Program, examples: Path) -> None:
    reloaded = load_program(examples / "program")

    assert get_rules(reloaded) is not get_rules(program)
    assert get_rules(replace(program)) is not get_rules(program)


def test_a_coupon_checks_only_the_conditions_it_declares(program: Program) -> None:
    ladder = get_rules(program).coupons["spring-harvest-ladder"]

    assert ladder.conditions == (
        check_window,
        check_tiers,
        check_excluded,
        check_threshold,
        check_next_step,
    )
    assert get_rules(program).coupons["free-shipping"].conditions == ()


def test_a_ladder_first_step_is_the_threshold(program: Program) -> None:
    assert str(get_rules(program).coupons["spring-harvest-ladder"].threshold) == "200"


def test_a_when_text_without_a_when_is_refused() -> None:
    with pytest.raises(ValueError, match="when_text explains a when"):
        CouponsFile.model_validate(
            {
                "coupons": [
                    {
                        "id": "x",
                        "name": {"en": "x"},
                        "discount": {"amount_off": 1},
                        "eligibility": {"when_text": {"en": "never"}},
                    }
                ]
            }
        )

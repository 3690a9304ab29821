"""Fixtures of the coupon tests: the example program and its compiled rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.program.loader import Program, load_program
from coupons.rules import ProgramRules, get_rules


@pytest.fixture(scope="session")
def program(examples: Path) -> Program:
    return load_program(examples / "program")


@pytest.fixture(scope="session")
def rules(program: Program) -> ProgramRules:
    return get_rules(program)

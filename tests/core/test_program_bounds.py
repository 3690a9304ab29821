"""`check` bounds every number of a program: far above what a shop uses, never out of range.

Each case takes the project's example program, writes one number too large, and expects that
one error at its file, line and field. The bounds themselves are core.bounds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.program.check import check_program

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "program"
HUGE = "99999999999999999999"

# (file, text in the example, replacement, the one issue `check` reports)
TOO_LARGE = {
    "fixed points": (
        "program.yaml",
        "      points: 200\n",
        f"      points: {HUGE}\n",
        f"program.yaml:57:15: points.earn[4].points: must be at most 1000000000, got {HUGE}",
    ),
    "tier multiplier": (
        "program.yaml",
        "      points_multiplier: 1.25\n",
        "      points_multiplier: 1e300\n",
        "program.yaml:22:26: tiers.levels[1].points_multiplier: must be at most 100, got 1E+300",
    ),
    "boost multiplier": (
        "program.yaml",
        "      multiplier: 3\n",
        "      multiplier: 101\n",
        "program.yaml:45:19: points.earn[1].multiplier: must be at most 100, got 101",
    ),
    "tier threshold": (
        "program.yaml",
        "      min_spend: 3000\n",
        "      min_spend: 1e40\n",
        "program.yaml:21:18: tiers.levels[1].min_spend: expected an amount of at most "
        "99999999999999.99 (the largest an event may carry), got 1E+40",
    ),
    "window": (
        "program.yaml",
        "  window_days: 365 ",
        "  window_days: 36501 ",
        "program.yaml:11:16: tiers.window_days: must be at most 36500, got 36501",
    ),
    "earn cap": (
        "program.yaml",
        "cap: {per: week, max: 5}",
        "cap: {per: week, max: 1000001}",
        "program.yaml:50:29: points.earn[2].cap.max: must be at most 1000000, got 1000001",
    ),
    "points per unit": (
        "program.yaml",
        "    points_per_unit: 50 ",
        "    points_per_unit: 10001 ",
        "program.yaml:62:22: points.redeem.points_per_unit: must be at most 10000, got 10001",
    ),
    "coupon amount": (
        "coupons.yaml",
        "discount: {amount_off: 15}",
        "discount: {amount_off: 100000000000000}",
        "coupons.yaml:7:28: coupons[0].discount.amount_off: expected an amount of at most "
        "99999999999999.99 (the largest an event may carry), got 100000000000000",
    ),
    "coupon budget": (
        "coupons.yaml",
        "budget: 800000}",
        f"budget: {HUGE}}}",
        "coupons.yaml:25:51: coupons[1].limits.budget: expected an amount of at most "
        f"99999999999999.99 (the largest an event may carry), got {HUGE}",
    ),
    "coupon uses per member": (
        "coupons.yaml",
        "limits: {per_member: 3,",
        "limits: {per_member: 1001,",
        "coupons.yaml:25:26: coupons[1].limits.per_member: must be at most 1000, got 1001",
    ),
    "coupon total": (
        "coupons.yaml",
        "total: 20000,",
        f"total: {HUGE},",
        f"coupons.yaml:25:36: coupons[1].limits.total: must be at most 1000000000, got {HUGE}",
    ),
    "coupon validity": (
        "coupons.yaml",
        "valid_for: 21d ",
        "valid_for: 99999999999999999w ",
        "coupons.yaml:11:16: coupons[0].valid_for: expected a duration of at most 36500d "
        "(100 years), got '99999999999999999w'",
    ),
    "campaign award": (
        "campaigns/referral-reward.yaml",
        "points: 800,",
        f"points: {HUGE},",
        "campaigns/referral-reward.yaml:7:46: steps[0].award_points.points: "
        f"must be at most 1000000000, got {HUGE}",
    ),
}


@pytest.mark.parametrize(("file", "old", "new", "expected"), TOO_LARGE.values(), ids=TOO_LARGE)
def test_a_number_beyond_its_bound_is_an_error_at_its_line(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    program = tmp_path / "program"
    shutil.copytree(PROGRAM, program)
    path = program / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {file} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")

    issues = check_program(program)

    assert [str(issue) for issue in issues] == [expected]


def test_the_largest_values_are_accepted(tmp_path: Path) -> None:
    program = tmp_path / "program"
    shutil.copytree(PROGRAM, program)
    path = program / "program.yaml"
    text = path.read_text(encoding="utf-8")
    for old, new in [
        ("      points: 200\n", "      points: 1000000000\n"),
        ("      multiplier: 3\n", "      multiplier: 100\n"),
        ("  window_days: 365 ", "  window_days: 36500 "),
        ("      min_spend: 20000\n", "      min_spend: 99999999999999.99\n"),
    ]:
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")

    assert check_program(program) == []

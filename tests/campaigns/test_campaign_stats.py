"""The statistics of campaign reports agree with statsmodels (the oracle, to 1e-9) and with
published values, and define the cases statsmodels leaves as nan (pure, no database)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from campaigns.stats import (
    mean_difference_interval,
    newcombe_difference,
    two_proportion_z_test,
    wilson_interval,
    z_quantile,
)

TOLERANCE = 1e-9
CONFIDENCES = [0.8, 0.9, 0.95, 0.99, 0.999]

# (successes, trials): zero, all, small and large n, a single trial.
PROPORTIONS = [
    (0, 1),
    (1, 1),
    (0, 10),
    (10, 10),
    (3, 10),
    (1, 29),
    (81, 263),
    (500, 1000),
    (1, 1_000_000),
    (999_999, 1_000_000),
    (123_456, 10_000_000),
]

# (x1, n1, x2, n2): zero and all conversions in one or both arms, equal proportions, a small
# holdout against a large variant, large n.
TWO_ARMS = [
    (56, 70, 48, 80),
    (9, 10, 3, 10),
    (0, 10, 3, 10),
    (3, 10, 0, 10),
    (10, 10, 0, 20),
    (0, 20, 10, 10),
    (5, 10, 5, 10),
    (50, 100, 500, 1000),
    (1, 1, 0, 1),
    (120, 4000, 8, 400),
    (31_250, 900_000, 3_300, 100_000),
    (4, 1_000_000, 0, 50),
]


def statsmodels_values(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        first, second = call(*args, **kwargs)
    return float(first), float(second)


@pytest.mark.parametrize("confidence", [*CONFIDENCES, 0.5, 1 - 1e-6, 1 - 1e-12, 1e-9])
def test_z_quantile_is_the_two_sided_normal_quantile_to_1e_12(confidence: float) -> None:
    assert z_quantile(confidence) == pytest.approx(norm.isf((1 - confidence) / 2), abs=1e-12)


def test_z_quantile_is_accurate_across_the_whole_range() -> None:
    confidences = [k / 1000 for k in range(1, 1000)]
    worst = max(abs(z_quantile(c) - norm.isf((1 - c) / 2)) for c in confidences)
    assert worst < 1e-12


def test_z_quantile_of_95_percent_is_1_959963984540054() -> None:
    assert z_quantile(0.95) == pytest.approx(1.959963984540054, abs=1e-15)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(("successes", "trials"), PROPORTIONS)
def test_wilson_interval_matches_statsmodels(
    successes: int, trials: int, confidence: float
) -> None:
    expected = statsmodels_values(
        proportion_confint, successes, trials, alpha=1 - confidence, method="wilson"
    )
    got = wilson_interval(successes, trials, confidence=confidence)
    assert got == pytest.approx(expected, abs=TOLERANCE)


def test_wilson_interval_of_no_conversion_in_ten_is_0_to_z2_over_n_plus_z2() -> None:
    z2 = 1.959963984540054**2
    assert wilson_interval(0, 10) == (0.0, pytest.approx(z2 / (10 + z2), abs=1e-15))
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775327998628892), abs=1e-12)


def test_wilson_interval_of_ten_conversions_in_ten_is_n_over_n_plus_z2_to_1() -> None:
    z2 = 1.959963984540054**2
    assert wilson_interval(10, 10) == (pytest.approx(10 / (10 + z2), abs=1e-15), 1.0)
    assert wilson_interval(10, 10) == pytest.approx((0.7224672001371108, 1.0), abs=1e-12)


@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        # Newcombe 1998 (single proportion), table of examples, method 3 (score, no correction)
        (81, 263, (0.2553, 0.3662)),
        (15, 148, (0.0624, 0.1605)),
        (0, 20, (0.0000, 0.1611)),
        (1, 29, (0.0061, 0.1718)),
    ],
)
def test_wilson_interval_reproduces_newcombes_published_examples(
    successes: int, trials: int, expected: tuple[float, float]
) -> None:
    assert wilson_interval(successes, trials) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_wilson_interval_bounds_are_exactly_0_and_1_at_none_and_all(confidence: float) -> None:
    # without care the float formula gives 0.9999999999999999 as the upper bound of n of n
    for trials in range(1, 400):
        assert wilson_interval(0, trials, confidence=confidence)[0] == 0.0
        assert wilson_interval(trials, trials, confidence=confidence)[1] == 1.0


def test_wilson_interval_of_no_trials_is_every_proportion() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 0, confidence=0.5) == (0.0, 1.0)


def test_wilson_interval_narrows_towards_its_limit_at_no_trials() -> None:
    # (0, 1) at n = 0 is where the formula goes as n shrinks with x = 0: upper z²/(n + z²) → 1.
    assert wilson_interval(0, 1)[1] < 1.0
    assert wilson_interval(0, 1)[1] == pytest.approx(1 - 1 / (1 + 1.959963984540054**2))


def test_wilson_interval_of_half_is_symmetric_about_half() -> None:
    lower, upper = wilson_interval(50, 100)
    assert lower + upper == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), TWO_ARMS)
def test_newcombe_difference_matches_statsmodels(
    x1: int, n1: int, x2: int, n2: int, confidence: float
) -> None:
    expected = statsmodels_values(
        confint_proportions_2indep,
        x1,
        n1,
        x2,
        n2,
        method="newcomb",
        compare="diff",
        alpha=1 - confidence,
    )
    got = newcombe_difference(x1, n1, x2, n2, confidence=confidence)
    assert got == pytest.approx(expected, abs=TOLERANCE)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "expected"),
    [
        # Newcombe 1998 (difference), table II examples (a), (b), (d)-(h), method 10
        (56, 70, 48, 80, (0.0524, 0.3339)),
        (9, 10, 3, 10, (0.1705, 0.8090)),
        (5, 56, 0, 29, (-0.0381, 0.1926)),
        (0, 10, 0, 20, (-0.1611, 0.2775)),
        (0, 10, 0, 10, (-0.2775, 0.2775)),
        (10, 10, 0, 20, (0.6791, 1.0000)),
        (10, 10, 0, 10, (0.6075, 1.0000)),
    ],
)
def test_newcombe_difference_reproduces_newcombes_published_examples(
    x1: int, n1: int, x2: int, n2: int, expected: tuple[float, float]
) -> None:
    assert newcombe_difference(x1, n1, x2, n2) == pytest.approx(expected, abs=5e-5)


def test_newcombe_difference_of_equal_proportions_is_symmetric_about_zero() -> None:
    lower, upper = newcombe_difference(30, 100, 30, 100)
    assert lower == pytest.approx(-upper, abs=1e-15)
    assert lower < 0 < upper


def test_newcombe_difference_swapping_the_arms_mirrors_the_interval() -> None:
    lower, upper = newcombe_difference(56, 70, 48, 80)
    assert newcombe_difference(48, 80, 56, 70) == pytest.approx((-upper, -lower), abs=1e-15)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), TWO_ARMS)
def test_two_proportion_z_test_matches_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    expected = statsmodels_values(proportions_ztest, [x1, x2], [n1, n2])
    assert two_proportion_z_test(x1, n1, x2, n2) == pytest.approx(expected, abs=TOLERANCE)


def test_two_proportion_z_test_by_hand() -> None:
    # pooled 104/150; se = sqrt(p(1-p)(1/70 + 1/80)); z = (0.8 - 0.6) / se
    pooled = 104 / 150
    z = 0.2 / math.sqrt(pooled * (1 - pooled) * (1 / 70 + 1 / 80))
    got_z, got_p = two_proportion_z_test(56, 70, 48, 80)
    assert got_z == pytest.approx(z, abs=1e-12)
    assert got_z == pytest.approx(2.6501719512585336, abs=1e-12)
    assert got_p == pytest.approx(2 * norm.sf(z), abs=1e-15)


def test_two_proportion_z_test_of_equal_proportions_is_z_0_p_1() -> None:
    assert two_proportion_z_test(5, 10, 50, 100) == pytest.approx((0.0, 1.0), abs=1e-15)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(0, 10, 0, 10), (0, 1, 0, 5000), (10, 10, 10, 10), (1, 1, 300, 300)],
)
def test_two_proportion_z_test_with_no_or_all_conversions_in_both_arms_is_z_0_p_1(
    x1: int, n1: int, x2: int, n2: int
) -> None:
    assert two_proportion_z_test(x1, n1, x2, n2) == (0.0, 1.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: newcombe_difference(3, 10, 0, 0),
        lambda: newcombe_difference(0, 0, 3, 10),
        lambda: newcombe_difference(0, 0, 0, 0),
        lambda: two_proportion_z_test(3, 10, 0, 0),
        lambda: two_proportion_z_test(0, 0, 3, 10),
        lambda: two_proportion_z_test(0, 0, 0, 0),
    ],
)
def test_comparisons_with_an_empty_arm_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="=0: an arm with no members has no proportion"):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wilson_interval(11, 10), "successes=11 exceeds trials=10"),
        (lambda: wilson_interval(-1, 10), "successes=-1 and trials=10 must not be negative"),
        (lambda: wilson_interval(0, -1), "must not be negative"),
        (lambda: newcombe_difference(1, 2, 5, 4), "x2=5 exceeds n2=4"),
        (lambda: two_proportion_z_test(3, 2, 1, 4), "x1=3 exceeds n1=2"),
        (lambda: wilson_interval(1, 2, confidence=95), "strictly between 0 and 1, got 95"),
        (lambda: wilson_interval(1, 2, confidence=1.0), "strictly between 0 and 1"),
        (lambda: newcombe_difference(1, 2, 1, 2, confidence=0.0), "strictly between 0 and 1"),
        (lambda: z_quantile(math.nan), "strictly between 0 and 1, got nan"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def sums(values: list[Any]) -> tuple[int, Any, Any]:
    return len(values), sum(values), sum(v * v for v in values)


def mostly_zeros(n: int, paid: list[Any]) -> list[Any]:
    return paid + [0] * (n - len(paid))


# (group 1, group 2): small groups, all zeros in one or both, equal values (no variance),
# revenue per member of a million members of whom few bought, negative values (the report
# clamps refunds at the order's total, the statistic does not need that).
MEAN_GROUPS: list[tuple[list[Any], list[Any]]] = [
    ([1, 2, 3], [0, 1]),
    ([0, 0], [0, 0, 0]),
    ([0, 0, 0, 0], [5, 0, 12]),
    ([7, 7, 7], [7, 7]),
    ([5, 5], [1, 1, 1]),
    ([-3.5, 2.25, 0, 10], [1.5, -1.5]),
    (mostly_zeros(1_000_000, [120.5, 80.0, 35.25] * 300), mostly_zeros(50_000, [99.0, 20.0] * 40)),
    (mostly_zeros(200, [1000.0]), mostly_zeros(10, [])),
]


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(("first", "second"), MEAN_GROUPS)
def test_mean_difference_interval_matches_statsmodels(
    first: list[Any], second: list[Any], confidence: float
) -> None:
    compared = CompareMeans(
        DescrStatsW(np.array(first, dtype=float)), DescrStatsW(np.array(second, dtype=float))
    )
    expected = statsmodels_values(compared.zconfint_diff, alpha=1 - confidence, usevar="unequal")
    got = mean_difference_interval(*sums(first), *sums(second), confidence=confidence)
    assert got == pytest.approx(expected, abs=TOLERANCE, rel=1e-12)


def test_mean_difference_interval_keeps_the_digits_of_large_alike_values() -> None:
    # squares of 1e9 are 1e18: total²/n cancels all but their last digits, which floats lose
    # (statsmodels' own float means are off by 4e-8 here), so the oracle gets the values less
    # 1e9, which changes neither the difference nor the variances
    first, second = [10**9 + 1, 10**9 + 2, 10**9 + 4], [10**9, 10**9 + 3]
    shifted = CompareMeans(
        DescrStatsW(np.array([v - 10**9 for v in first], dtype=float)),
        DescrStatsW(np.array([v - 10**9 for v in second], dtype=float)),
    )
    expected = statsmodels_values(shifted.zconfint_diff, usevar="unequal")
    assert mean_difference_interval(*sums(first), *sums(second)) == pytest.approx(
        expected, abs=TOLERANCE
    )


def test_mean_difference_interval_by_hand() -> None:
    # means 2 and 0.5; s1² = 1, s2² = 0.5; half-width z·sqrt(1/3 + 0.5/2)
    half = 1.959963984540054 * math.sqrt(1 / 3 + 0.25)
    assert mean_difference_interval(3, 6, 14, 2, 1, 1) == pytest.approx(
        (1.5 - half, 1.5 + half), abs=1e-12
    )


def test_mean_difference_interval_of_money_is_computed_exactly() -> None:
    first = [Decimal("120.50"), Decimal("0.00"), Decimal("35.25"), Decimal("0.00")]
    second = [Decimal("99.99"), Decimal("0.00"), Decimal("0.01")]
    as_floats = [[float(v) for v in first], [float(v) for v in second]]

    got = mean_difference_interval(*sums(first), *sums(second))

    assert got == pytest.approx(
        mean_difference_interval(*sums(as_floats[0]), *sums(as_floats[1])), abs=1e-12
    )
    assert got == pytest.approx(
        statsmodels_values(
            CompareMeans(DescrStatsW(np.array(as_floats[0])), DescrStatsW(np.array(as_floats[1])))
            .zconfint_diff, usevar="unequal"
        ),
        abs=TOLERANCE,
    )  # fmt: skip


def test_mean_difference_interval_without_variance_is_the_difference_itself() -> None:
    assert mean_difference_interval(*sums([0] * 10), *sums([0] * 990)) == (0.0, 0.0)
    assert mean_difference_interval(*sums([5, 5]), *sums([1, 1, 1])) == (4.0, 4.0)


def test_mean_difference_interval_swapping_the_groups_mirrors_the_interval() -> None:
    lower, upper = mean_difference_interval(*sums([1, 2, 3]), *sums([0, 1]))
    assert mean_difference_interval(*sums([0, 1]), *sums([1, 2, 3])) == pytest.approx(
        (-upper, -lower), abs=1e-15
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mean_difference_interval(1, 5, 25, 3, 0, 0), "n1=1: a group needs at least 2"),
        (lambda: mean_difference_interval(3, 0, 0, 0, 0, 0), "n2=0: a group needs at least 2"),
        (lambda: mean_difference_interval(-2, 0, 0, 3, 0, 0), "n1=-2"),
        (lambda: mean_difference_interval(2, 6, 18, 2, 6, 17), "squares2=17 is below total2"),
        (lambda: mean_difference_interval(2, 0, 0, 2, 0, 0, confidence=1.5), "strictly between"),
    ],
)
def test_mean_difference_interval_refuses_bad_input(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call()

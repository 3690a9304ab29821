"""The statistics of campaign reports: intervals and tests for conversion proportions, and the
interval of a difference in means (revenue per member).

Pure functions over counts (``int``), and for means over sums and sums of squares, returning
``float``; only ``math`` and ``fractions``, so a report needs neither numpy nor scipy. Each one
matches statsmodels (the tests' oracle) to 1e-9 where statsmodels gives a number, and defines
the cases where it gives none:

- ``wilson_interval`` of 0 trials is ``(0.0, 1.0)`` (statsmodels: nan). That is the Wilson
  formula's own value at n = 0, written as ``(x + z²/2 ± z·sqrt(x(n-x)/n + z²/4)) / (n + z²)``
  with ``x(n-x)/n`` = 0: no members, so every proportion is still possible.
- ``newcombe_difference`` and ``two_proportion_z_test`` with an empty arm raise ``ValueError``
  (statsmodels: ZeroDivisionError, nan): an empty arm has no proportion to compare, so a report
  with an empty holdout shows "no holdout" instead of a made-up interval or p-value.
- ``two_proportion_z_test`` where both arms converted none or all (pooled proportion 0 or 1) is
  ``(0.0, 1.0)`` (statsmodels: nan): the two proportions are then equal, no evidence of a
  difference.
- ``mean_difference_interval`` with a group of fewer than 2 members raises ``ValueError``
  (statsmodels: nan): one value has no variance to estimate the spread with.

Bad input (negative counts, more successes than trials, a confidence outside (0, 1)) raises
``ValueError`` naming the argument and the fix.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

__all__ = [
    "mean_difference_interval",
    "newcombe_difference",
    "two_proportion_z_test",
    "wilson_interval",
    "z_quantile",
]

Number = int | float | Decimal

# Acklam's rational approximation of the inverse normal CDF (relative error < 1.15e-9 before
# the refinement step): numerator and denominator coefficients, highest power first.
_CENTRAL_NUM = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_CENTRAL_DEN = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
    1.0,
)
_TAIL_NUM = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549671010229583e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_TAIL_DEN = (
    7.784695709041462e-03,
    3.224671290700398e-01,
    2.445134137142996e00,
    3.754408661907416e00,
    1.0,
)
_TAIL_BREAK = 0.02425
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


def _polynomial(coefficients: tuple[float, ...], x: float) -> float:
    value = 0.0
    for coefficient in coefficients:
        value = value * x + coefficient
    return value


def _lower_tail_quantile(p: float) -> float:
    """The x with Φ(x) = p, for 0 < p ≤ 0.5 (x ≤ 0), where Φ(x) = erfc(-x/√2)/2 is exact."""
    if p < _TAIL_BREAK:
        q = math.sqrt(-2.0 * math.log(p))
        x = _polynomial(_TAIL_NUM, q) / _polynomial(_TAIL_DEN, q)
    else:
        q = p - 0.5
        r = q * q
        x = q * _polynomial(_CENTRAL_NUM, r) / _polynomial(_CENTRAL_DEN, r)
    # Acklam's refinement: one Halley step (Newton's, corrected for the curvature of Φ).
    error = 0.5 * math.erfc(-x / _SQRT2) - p
    u = error * _SQRT2PI * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


def z_quantile(confidence: float) -> float:
    """The two-sided standard normal quantile: z with P(|Z| ≤ z) = confidence.

    z = -Φ⁻¹((1 - confidence) / 2), 1.959963984540054 for 0.95, by P. J. Acklam, "An algorithm
    for computing the inverse normal cumulative distribution function" (2003), refined by one
    Halley step on Φ(x) = erfc(-x/√2)/2; within 1e-12 of scipy's ``norm.isf``. The tail is
    computed as the lower one, where erfc keeps its relative precision.
    """
    _check_confidence(confidence)
    return -_lower_tail_quantile((1.0 - confidence) / 2.0)


def wilson_interval(
    successes: int, trials: int, *, confidence: float = 0.95
) -> tuple[float, float]:
    """The Wilson score interval (lower, upper) of the proportion successes / trials.

    (x + z²/2 ± z·sqrt(x(n-x)/n + z²/4)) / (n + z²), with x successes of n trials and
    z = ``z_quantile(confidence)``: E. B. Wilson, "Probable inference, the law of succession,
    and statistical inference", JASA 22 (1927) 209-212; method 3 of R. G. Newcombe, "Two-sided
    confidence intervals for the single proportion", Statistics in Medicine 17 (1998) 857-872.
    The bound is exactly 0 when x = 0 and exactly 1 when x = n. Matches statsmodels
    ``proportion_confint(x, n, alpha=1 - confidence, method="wilson")``.

    0 trials give (0.0, 1.0), the formula's value at n = 0 (statsmodels gives nan).
    """
    _check_arm("successes", successes, "trials", trials)
    _check_confidence(confidence)
    if trials == 0:
        return 0.0, 1.0
    z = z_quantile(confidence)
    z2 = z * z
    center = (successes + z2 / 2.0) / (trials + z2)
    half = z * math.sqrt(successes * (trials - successes) / trials + z2 / 4.0) / (trials + z2)
    lower = 0.0 if successes == 0 else max(0.0, center - half)
    upper = 1.0 if successes == trials else min(1.0, center + half)
    return lower, upper


def newcombe_difference(
    x1: int, n1: int, x2: int, n2: int, *, confidence: float = 0.95
) -> tuple[float, float]:
    """The interval (lower, upper) of p1 - p2 = x1/n1 - x2/n2 by Newcombe's hybrid score method.

    With (l1, u1) and (l2, u2) the Wilson intervals of each arm and d = p1 - p2:
    lower = d - sqrt((p1 - l1)² + (u2 - p2)²), upper = d + sqrt((u1 - p1)² + (p2 - l2)²);
    method 10 of R. G. Newcombe, "Interval estimation for the difference between independent
    proportions: comparison of eleven methods", Statistics in Medicine 17 (1998) 873-890.
    Matches statsmodels ``confint_proportions_2indep(x1, n1, x2, n2, method="newcomb",
    compare="diff", alpha=1 - confidence)``.

    Raises ValueError when an arm has no trials: its proportion, and so the difference, is
    undefined (statsmodels raises ZeroDivisionError).
    """
    _check_arm("x1", x1, "n1", n1)
    _check_arm("x2", x2, "n2", n2)
    _check_nonempty(n1, n2)
    l1, u1 = wilson_interval(x1, n1, confidence=confidence)
    l2, u2 = wilson_interval(x2, n2, confidence=confidence)
    p1, p2 = x1 / n1, x2 / n2
    difference = p1 - p2
    lower = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return lower, upper


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p-value) of the pooled two-proportion z-test of p1 = p2.

    z = (p1 - p2) / sqrt(p(1 - p)(1/n1 + 1/n2)) with the pooled p = (x1 + x2) / (n1 + n2), and
    p-value = P(|Z| ≥ |z|) = erfc(|z|/√2); the test of J. L. Fleiss, B. Levin and M. C. Paik,
    "Statistical Methods for Rates and Proportions", 3rd ed. (2003), chapter 2. Matches
    statsmodels ``proportions_ztest([x1, x2], [n1, n2])``.

    Pooled p of 0 or 1 (both arms converted none, or all) gives (0.0, 1.0): the proportions are
    equal and the variance is 0 (statsmodels gives nan). Raises ValueError when an arm has no
    trials (statsmodels gives nan).
    """
    _check_arm("x1", x1, "n1", n1)
    _check_arm("x2", x2, "n2", n2)
    _check_nonempty(n1, n2)
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 0.0, 1.0
    standard_error = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = (x1 / n1 - x2 / n2) / standard_error
    return z, math.erfc(abs(z) / _SQRT2)


def mean_difference_interval(
    n1: int,
    total1: Number,
    squares1: Number,
    n2: int,
    total2: Number,
    squares2: Number,
    *,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """The normal-approximation interval (lower, upper) of mean1 - mean2, variances unequal.

    Each group is given by its size n, the sum of its values and the sum of their squares, so
    a million members who bought nothing need no list of zeros. With the sample variance
    s² = (squares - total²/n) / (n - 1) of each group and z = ``z_quantile(confidence)``:
    mean1 - mean2 ± z·sqrt(s1²/n1 + s2²/n2), the large-sample interval of B. L. Welch, "The
    generalization of 'Student's' problem when several different population variances are
    involved", Biometrika 34 (1947) 28-35, with the normal quantile. Matches statsmodels
    ``CompareMeans(DescrStatsW(a), DescrStatsW(b)).zconfint_diff(alpha=1 - confidence,
    usevar="unequal")``. The sums are taken exactly (as fractions), so the variance does not
    lose its digits to cancellation when the values are large and alike.

    Raises ValueError when a group has fewer than 2 values (statsmodels gives nan) or when its
    sum of squares is below total²/n (no real values have those sums).
    """
    _check_confidence(confidence)
    mean1, spread1 = _mean_and_spread("1", n1, total1, squares1)
    mean2, spread2 = _mean_and_spread("2", n2, total2, squares2)
    difference = float(mean1 - mean2)
    half = z_quantile(confidence) * math.sqrt(float(spread1 + spread2))
    return difference - half, difference + half


def _mean_and_spread(
    group: str, n: int, total: Number, squares: Number
) -> tuple[Fraction, Fraction]:
    """The group's mean and the variance of that mean, s²/n, exactly."""
    if n < 2:
        raise ValueError(
            f"n{group}={n}: a group needs at least 2 values to estimate its variance;"
            " report the interval as unavailable instead"
        )
    exact_total, exact_squares = Fraction(total), Fraction(squares)
    centered = exact_squares - exact_total * exact_total / n
    if centered < 0:
        raise ValueError(
            f"squares{group}={squares} is below total{group}²/n{group} ({total}²/{n});"
            " pass the sum of the squared values, not the square of the sum"
        )
    return exact_total / n, centered / (n * (n - 1))


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(
            f"confidence must be strictly between 0 and 1, got {confidence!r};"
            " pass e.g. 0.95 for a 95% interval"
        )


def _check_arm(successes_name: str, successes: int, trials_name: str, trials: int) -> None:
    if trials < 0 or successes < 0:
        raise ValueError(
            f"{successes_name}={successes} and {trials_name}={trials} must not be negative;"
            " pass counts of members"
        )
    if successes > trials:
        raise ValueError(
            f"{successes_name}={successes} exceeds {trials_name}={trials}; pass the members"
            " who converted out of the members of the arm"
        )


def _check_nonempty(n1: int, n2: int) -> None:
    for name, trials in (("n1", n1), ("n2", n2)):
        if trials == 0:
            raise ValueError(
                f"{name}=0: an arm with no members has no proportion to compare;"
                " report the comparison as unavailable instead"
            )

"""CEL expressions: compiled once at load, rejected early when broken, clear when they fail."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from core.expressions import CelExpression, ExpressionError, compile_expression


class _Rule(BaseModel):
    when: CelExpression


MEMBER = {"tier": "gold", "paid_orders": 3, "birthday_month": 5}


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ("member.paid_orders >= 1", {"member": MEMBER}, True),
        ("member.birthday_month == now.month", {"member": MEMBER, "now": {"month": 6}}, False),
        ('member.tier in ["gold", "diamond"]', {"member": MEMBER}, True),
        (
            "order.items.exists(i, i.category == 'tea')",
            {"order": {"items": [{"category": "tea"}]}},
            True,
        ),
        ("event.data.has_photo", {"event": {"data": {"has_photo": True}}}, True),
    ],
)
def test_a_condition_evaluates_against_the_variables_given(
    source: str, variables: dict[str, Any], expected: bool
) -> None:
    assert compile_expression(source).is_true(variables) is expected


def test_evaluate_returns_whatever_the_expression_computes() -> None:
    assert compile_expression("member.paid_orders * 2").evaluate({"member": MEMBER}) == 6


def test_a_missing_key_is_an_error_naming_the_expression() -> None:
    expression = compile_expression("member.referrals == 0")

    with pytest.raises(ExpressionError) as raised:
        expression.is_true({"member": MEMBER})

    assert str(raised.value) == "cannot evaluate 'member.referrals == 0': no value for 'referrals'"


def test_a_missing_variable_is_an_error_naming_the_expression() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression("now.day == 18").is_true({})

    assert str(raised.value).startswith("cannot evaluate 'now.day == 18': ")


def test_a_condition_that_is_not_boolean_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="gave 3, expected true or false"):
        compile_expression("member.paid_orders").is_true({"member": MEMBER})


@pytest.mark.parametrize(
    ("source", "column"),
    [("member.x >= ", 13), ("a &&& b", 5), ('event.data.direction == = "up"', 25)],
)
def test_a_syntax_error_reports_the_column_within_the_expression(source: str, column: int) -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(source)

    assert raised.value.column == column
    assert raised.value.message.startswith(f"syntax error at column {column} of {source!r}")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("membr.tier == 'gold'", "unknown variable 'membr', did you mean 'member'?"),
        ("now.day == 18 && ordr.total > 1", "unknown variable 'ordr', did you mean 'order'?"),
        (
            "price > 1",
            "unknown variable 'price'; the variables are cart, event, member, now, order",
        ),
    ],
)
def test_a_variable_outside_the_contract_is_rejected(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(source)

    assert raised.value.message == message


def test_an_unknown_variable_is_located_within_the_expression() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression("now.day == 18 &&\n  ordr.total > 1")

    assert (raised.value.line, raised.value.column) == (2, 3)


def test_allowed_roots_can_be_narrowed_for_a_context() -> None:
    with pytest.raises(ExpressionError, match="unknown variable 'order'"):
        compile_expression("order.total > 1", allowed_roots=frozenset({"member", "now"}))


def test_an_empty_expression_is_rejected() -> None:
    with pytest.raises(ExpressionError, match="empty expression"):
        compile_expression("  ")


def test_a_model_field_compiles_at_validation_and_serialises_to_its_source() -> None:
    rule = _Rule.model_validate({"when": "now.day == 18"})

    assert rule.when.is_true({"now": {"day": 18}})
    assert rule.model_dump(mode="json") == {"when": "now.day == 18"}


def test_a_model_field_reports_the_compile_error_with_its_position() -> None:
    with pytest.raises(ValidationError) as raised:
        _Rule.model_validate({"when": "nw.day == 18"})

    error = raised.value.errors()[0]
    assert error["msg"] == "unknown variable 'nw', did you mean 'now'?"
    assert (error["ctx"]["line"], error["ctx"]["column"]) == (1, 1)

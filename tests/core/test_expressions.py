"""CEL expressions: compiled once at load, rejected early when broken, clear when they fail."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from core.cel.parse import Unsupported, parse
from core.cel.typecheck import check_types
from core.cel.types import (
    AUDIENCE,
    BOOL,
    CHECKOUT,
    DOUBLE,
    DYN,
    INT,
    STRING,
    CelType,
    Scope,
    event_scope,
)
from core.expressions import CelExpression, ExpressionError, compile_expression
from core.program.check import check_program
from core.program.loader import ProgramInvalid, load_program


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


# --- check: fields, types and sample members (core.cel, core.program.cel_check) -------------

OWN_PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "program"
REVIEW = event_scope("an earn rule on review.posted", "review.posted")
ORDER = event_scope("an earn rule on order.paid", "order.paid")


@pytest.mark.parametrize(
    ("source", "scope", "problem"),
    [
        ("member.birthday_mnth == now.month", CHECKOUT,
         (7, "member has no field 'birthday_mnth'", "did you mean 'birthday_month'?")),
        ("has(member.tiers)", AUDIENCE,
         (11, "member has no field 'tiers'", "did you mean 'tier'?")),
        ("member.consents.mail", AUDIENCE,
         (16, "member.consents has no field 'mail'", "did you mean 'email'?")),
        ("order.items.exists(i, i.categry == 'tea')", CHECKOUT,
         (24, "item has no field 'categry'", "did you mean 'category'?")),
        ("order.items[0].skux == 'a'", ORDER,
         (15, "item has no field 'skux'", "did you mean 'sku'?")),
        ("event.data.has_fotos", REVIEW,
         (11, "event.data (review.posted) has no field 'has_fotos'", "did you mean 'has_photo'?")),
        ("order.total > 1.0", REVIEW, (0, "'order' is not available in an earn rule on "
         "review.posted", "the variables here are event, member, now")),
        ("event.type == 'x'", CHECKOUT, (0, "'event' is not available in a coupon's when:",
         "the variables here are cart, member, now, order")),
        ("member.tier > 3", AUDIENCE, (12, "cannot compare string with int using >", None)),
        ("order.total * 2 > 100.0", CHECKOUT, (12, "double * int is not defined",
         "CEL does not convert numbers: write double(x) or int(x)")),
        ("member.tier && now.day == 1", AUDIENCE,
         (7, "each side of && needs true or false, not string", None)),
        ("!member.paid_orders", AUDIENCE, (8, "! needs true or false, not int", None)),
        ("member.locale ? 1 : 2", AUDIENCE, (7, "? : needs true or false, not string", None)),
        ("member.paid_orders.exists(x, x > 1)", AUDIENCE,
         (19, "exists() needs a list or a map, not int", None)),
    ],
)  # fmt: skip
def test_the_field_walk_names_the_field_its_place_and_the_fix(
    source: str, scope: Scope, problem: tuple[int, str, str | None]
) -> None:
    report = check_types(parse(source), scope)

    assert [(p.at, p.message, p.hint) for p in report.problems] == [problem]


@pytest.mark.parametrize(
    ("source", "scope", "result"),
    [
        ("member.paid_orders >= 1 && member.days_since_last_order >= 90", AUDIENCE, BOOL),
        ("member.birthday_month == now.month", ORDER, BOOL),
        ('"tea" in order.categories || cart.item_count > 3', CHECKOUT, BOOL),
        ("order.items.map(i, i.price).exists(p, p > 100.0)", ORDER, BOOL),
        ("order.items.filter(i, i.qty > 1).size() > 0", ORDER, BOOL),
        ("order.items.map(i, i.qty > 1, i.price).exists(p, p > 100.0)", ORDER, BOOL),
        ("member.locale.startsWith('zh') ? member.tier : 'none'", AUDIENCE, STRING),
        ("member.tier_rank + 1", AUDIENCE, INT),
        ("member.net_spend / double(member.paid_orders)", AUDIENCE, DOUBLE),
        ("event.data.items.all(item, item.qty >= 1)", ORDER, BOOL),
        ("member.consents.exists(channel, member.consents[channel])", AUDIENCE, BOOL),
        ("event.data.anything", event_scope("a campaign", "unknown.type"), DYN),
        ('r"a\\b" == "x" && [1, 2][0] == 1 && {"a": 1}["a"] == 1', AUDIENCE, BOOL),
        ("// a comment\nmember.referrals == 0", AUDIENCE, BOOL),
        ('event.occurred_at - timestamp("2026-01-01T00:00:00Z") > duration("1h")', REVIEW, BOOL),
        ("-member.tier_rank < 1 && !(member.referrals > 2)", AUDIENCE, BOOL),
    ],
)
def test_the_field_walk_accepts_what_the_variables_have(
    source: str, scope: Scope, result: CelType
) -> None:
    report = check_types(parse(source), scope)

    assert report.problems == []
    assert report.result == result


def test_a_long_chain_of_conditions_is_walked_whole() -> None:
    source = " && ".join(["member.paid_orders > 0"] * 2000 + ["member.tiers == 'x'"])

    report = check_types(parse(source), AUDIENCE)

    assert [p.message for p in report.problems] == ["member has no field 'tiers'"]


def test_the_parser_leaves_syntax_it_does_not_know_to_evaluation() -> None:
    with pytest.raises(Unsupported):
        parse("Msg{field: 1}.field == 1")


def _program_with(tmp_path: Path, edits: list[tuple[str, str, str]]) -> Path:
    program = tmp_path / "program"
    shutil.copytree(OWN_PROGRAM, program)
    for file, old, new in edits:
        path = program / file
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not in {file} exactly once"
        path.write_text(text.replace(old, new), encoding="utf-8")
    return program


WIN_BACK = "campaigns/win-back.yaml"
AUDIENCE_TEXT = "member.paid_orders >= 1 && member.days_since_last_order >= 120"
CEL_MISTAKES = {
    "misspelt field": (
        "program.yaml",
        "when: now.month == 4",
        "when: member.birthday_mnth == now.month",
        "program.yaml:44:20: points.earn[1].when: member has no field 'birthday_mnth'"
        " — did you mean 'birthday_month'?",
    ),
    "not a condition": (
        "coupons.yaml",
        "when: now.day == 8 ",
        "when: member.tier ",
        "coupons.yaml:57:13: coupons[5].eligibility.when: 'member.tier' gives a string, but a"
        ' condition must be true or false — compare it, such as member.tier == "gold"'
        " or member.paid_orders >= 1",
    ),
    "a variable its place does not have": (
        "program.yaml",
        "when: event.data.has_photo",
        "when: order.total > 100.0",
        "program.yaml:48:13: points.earn[2].when: 'order' is not available in an earn rule on"
        " review.posted — the variables here are event, member, now",
    ),
    "a field of another event's data": (
        "campaigns/tier-upgrade.yaml",
        'event.data.direction == "up"',
        'event.data.directon == "up"',
        "campaigns/tier-upgrade.yaml:6:20: trigger.when: event.data (tier.changed) has no"
        " field 'directon' — did you mean 'direction'?",
    ),
    "division by zero for a new member": (
        WIN_BACK,
        AUDIENCE_TEXT,
        "100 / member.paid_orders > 1",
        "campaigns/win-back.yaml:7:15: trigger.schedule.audience: fails for a new member with"
        " no orders: division by zero in CEL expression",
    ),
    "a null field compared unguarded": (
        WIN_BACK,
        AUDIENCE_TEXT,
        "member.days_since_last_order >= 120",
        "campaigns/win-back.yaml:7:15: trigger.schedule.audience: fails for a new member with"
        " no orders: No such overload: the operation is not defined for the given operand types"
        " — member.days_since_last_order is null for a new member with no orders;"
        " guard it: member.days_since_last_order != null && …",
    ),
    "a method on a null field": (
        "coupons.yaml",
        "when: now.day == 8 ",
        "when: member.paid_orders > 100 || member.locale.size() > 1 ",
        "coupons.yaml:57:13: coupons[5].eligibility.when: fails for a new member with no"
        " orders: Undefined variable or function: 'size'"
        " — member.locale is null for a new member with no orders;"
        " guard it: member.locale != null && …",
    ),
}


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"), CEL_MISTAKES.values(), ids=CEL_MISTAKES
)
def test_check_reports_a_cel_mistake_at_its_file_line_and_column(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    program = _program_with(tmp_path, [(file, old, new)])

    issues = check_program(program)

    assert [str(issue) for issue in issues] == [expected]
    with pytest.raises(ProgramInvalid):  # the engine refuses it too, not just `check`
        load_program(program)


@pytest.mark.parametrize(
    "audience",
    [
        "member.days_since_last_order != null && member.days_since_last_order >= 120",
        "member.paid_orders >= 1 && member.days_since_last_order >= 120",
        "member.days_since_last_order == null || member.days_since_last_order >= 120",
        "has(member.locale) && member.birthday_month == now.month",
        "member.paid_orders > 0 && member.net_spend / double(member.paid_orders) > 100.0",
    ],
)
def test_a_guarded_null_passes_check(tmp_path: Path, audience: str) -> None:
    program = _program_with(tmp_path, [(WIN_BACK, AUDIENCE_TEXT, audience)])

    assert check_program(program) == []


def test_nesting_too_deep_for_the_field_walk_is_still_evaluated(tmp_path: Path) -> None:
    deep = "(" * 90 + "member.paid_orders >= 1" + ")" * 90
    fine = _program_with(tmp_path / "fine", [(WIN_BACK, AUDIENCE_TEXT, deep)])
    broken = _program_with(
        tmp_path / "broken", [(WIN_BACK, AUDIENCE_TEXT, deep.replace(">= 1", "/ 0 >= 1"))]
    )

    assert check_program(fine) == []
    assert "division by zero" in str(check_program(broken)[0])

"""Loading a program directory: YAML with positions, values reaching the models intact, rules."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from campaigns.definitions import Campaign
from core.money import Money
from core.program.loader import Program, ProgramInvalid, ProgramNotFound, load_program
from core.program.program_file import BoostRule, FixedRule, ProgramFile, PurchaseRule
from core.program.yamlsource import ProgramIssue, SourceDocument, locate, parse_document
from coupons.definitions import CouponsFile

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "program"


class _Priced(BaseModel):
    price: Money


@pytest.fixture(scope="module")
def program() -> Program:
    return load_program(PROGRAM)


def _document(text: str) -> SourceDocument:
    parsed = parse_document(text, file="x.yaml")
    assert isinstance(parsed, SourceDocument), parsed
    return parsed


def test_the_example_loads_every_file(program: Program) -> None:
    assert len(program.coupons) == 9
    assert sorted(program.campaigns) == [
        "birthday",
        "cart-abandonment",
        "points-expiring",
        "referral-invite",
        "referral-reward",
        "tier-upgrade",
        "welcome-onboarding",
        "win-back",
    ]
    assert len(program.templates) == 13
    assert program.directory == PROGRAM


def test_yaml_floats_become_the_decimals_that_were_written(program: Program) -> None:
    bud = program.program_file.tiers.levels[1]

    assert bud.points_multiplier == Decimal("1.25")
    assert str(bud.points_multiplier) == "1.25"
    assert program.program_file.points.redeem.max_order_share == Decimal("0.3")
    assert program.campaigns["cart-abandonment"].experiment.holdout == Decimal("0.15")  # type: ignore[union-attr]


def test_times_of_day_and_durations_are_typed(program: Program) -> None:
    assert program.program_file.tiers.recalculate_at == time(3, 0)
    assert program.coupons["cart-steep-12"].valid_for == timedelta(hours=36)
    assert program.campaigns["welcome-onboarding"].steps[2].wait == timedelta(days=5)


def test_valid_between_holds_aware_datetimes(program: Program) -> None:
    window = program.coupons["spring-harvest-ladder"].valid_between
    assert window is not None
    assert window.from_ == datetime(2027, 3, 31, 16, 0, tzinfo=UTC)


def test_program_locales_default_to_the_default_locale_and_the_tier_names(tmp_path: Path) -> None:
    shutil.copytree(PROGRAM, tmp_path / "program")
    path = tmp_path / "program" / "program.yaml"
    text = path.read_text(encoding="utf-8")
    declared = next(line for line in text.splitlines(keepends=True) if "  locales:" in line)
    path.write_text(text.replace(declared, ""), encoding="utf-8")

    assert load_program(tmp_path / "program").program_file.program.locales == ("zh-CN", "en")


def test_earn_rules_take_the_shape_their_keys_select(program: Program) -> None:
    kinds = [type(rule) for rule in program.program_file.points.earn]

    assert kinds == [PurchaseRule, BoostRule, FixedRule, FixedRule, FixedRule]


def test_expressions_are_compiled_at_load(program: Program) -> None:
    trigger = program.campaigns["tier-upgrade"].trigger

    assert trigger.when is not None
    assert trigger.when.is_true({"event": {"data": {"direction": "up"}}, "member": {"tier": "bud"}})


@pytest.mark.parametrize(
    ("campaign_id", "step", "coupon", "member"),
    [
        ("birthday", 0, "birthday-pot", None),
        ("referral-reward", 1, "friend-tea-25", "referee"),
    ],
)
def test_issue_coupon_accepts_an_id_or_a_mapping(
    program: Program, campaign_id: str, step: int, coupon: str, member: str | None
) -> None:
    issue = program.campaigns[campaign_id].steps[step].issue_coupon

    assert issue is not None
    assert (issue.coupon, issue.member) == (coupon, member)


def test_a_single_channel_reads_as_a_list_of_one(program: Program) -> None:
    send = program.campaigns["welcome-onboarding"].steps[3].send

    assert send is not None
    assert send.channel == ("push",)


def test_an_experiment_with_only_a_holdout_keeps_its_top_level_steps(program: Program) -> None:
    win_back = program.campaigns["win-back"]

    assert [step.kind for step in win_back.steps] == ["issue_coupon", "send", "wait", "send"]
    assert win_back.experiment is not None and win_back.experiment.variants == {}


def test_a_missing_directory_raises_program_not_found(tmp_path: Path) -> None:
    with pytest.raises(ProgramNotFound, match="no program directory at"):
        load_program(tmp_path / "nowhere")


def test_an_invalid_program_raises_with_every_issue(tmp_path: Path) -> None:
    shutil.copytree(PROGRAM, tmp_path / "program")
    (tmp_path / "program" / "coupons.yaml").unlink()

    with pytest.raises(ProgramInvalid) as raised:
        load_program(tmp_path / "program")

    assert [str(issue) for issue in raised.value.issues] == [
        "coupons.yaml: file not found — a program directory has program.yaml, coupons.yaml, "
        "campaigns/, templates/"
    ]


def test_positions_are_kept_for_keys_values_and_items() -> None:
    document = _document("a:\n  b: [1, 2]\n  c: 'text'\n")

    assert (
        locate(document.tree, ("a", "b", 1)).line,
        locate(document.tree, ("a", "b", 1)).column,
    ) == (2, 10)
    assert locate(document.tree, ("a", "c")).column == 6
    assert locate(document.tree, ("a", "c"), at_key=True).column == 3


def test_a_path_missing_from_the_file_falls_back_to_its_nearest_parent() -> None:
    spot = locate(_document("a:\n  b: 1\n").tree, ("a", "zzz"))

    assert (spot.line, spot.column, spot.path, spot.exact) == (1, 1, ("a", "zzz"), False)


def test_plain_values_keep_strings_and_turn_floats_into_decimals() -> None:
    data = _document('at: "02:00"\nt: 02:00\nshare: 0.10\nn: 3\nflag: true\nlist: [1.5]\n').data

    assert data == {
        "at": "02:00",
        "t": "02:00",
        "share": Decimal("0.1"),
        "n": 3,
        "flag": True,
        "list": [Decimal("1.5")],
    }
    assert type(data["flag"]) is bool and type(data["n"]) is int


def test_a_duplicate_key_is_a_positioned_issue() -> None:
    issue = parse_document("a: 1\nb: 2\na: 3\n", file="x.yaml")

    assert isinstance(issue, ProgramIssue)
    assert (issue.line, issue.column) == (3, 1)
    assert "duplicate key 'a'" in issue.message


@pytest.mark.parametrize(
    ("given", "expected"),
    [(1.2, Decimal("1.2")), (0.1, Decimal("0.1")), (99, Decimal(99)), ("19.90", Decimal("19.90"))],
)
def test_money_becomes_the_exact_decimal_that_was_written(given: object, expected: Decimal) -> None:
    price = _Priced.model_validate({"price": given}).price

    assert price == expected
    assert str(price) == str(expected)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (1.234, "expected an amount with at most 2 decimal places, got 1.234"),
        (-5, "expected an amount of 0 or more, got -5"),
        ("ten", "expected a number such as 99 or 19.90, got 'ten'"),
        (True, "expected a number, got True"),
    ],
)
def test_money_that_is_not_an_amount_is_rejected(given: object, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _Priced.model_validate({"price": given})

    assert raised.value.errors()[0]["msg"] == message


def _messages(model: type[BaseModel], data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return [error["ctx"]["reason"] for error in raised.value.errors()]


COUPON = {"id": "c", "name": {"en": "C"}}


@pytest.mark.parametrize(
    ("discount", "reason"),
    [
        (
            {"amount_off": 5, "percent_off": 10},
            "a discount needs exactly one of amount_off, percent_off, ladder, free_shipping; "
            "got amount_off, percent_off",
        ),
        ({"amount_off": 5, "max_off": 10}, "max_off only caps a percent_off discount"),
        (
            {"ladder": [{"min_total": 500, "off": 80}, {"min_total": 200, "off": 30}]},
            "ladder steps must be sorted by min_total, lowest first, without repeats",
        ),
    ],
)
def test_a_discount_takes_exactly_one_well_formed_shape(
    discount: dict[str, Any], reason: str
) -> None:
    assert _messages(CouponsFile, {"coupons": [{**COUPON, "discount": discount}]}) == [reason]


def test_coupon_ids_are_unique() -> None:
    coupon = {**COUPON, "discount": {"free_shipping": True}}

    assert _messages(CouponsFile, {"coupons": [coupon, coupon]}) == ["duplicate coupon id 'c'"]


CAMPAIGN = {"id": "c", "name": "C", "kind": "marketing", "trigger": {"event": "order.paid"}}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"trigger": {"event": "order.paid", "birthday": {"at": "09:00"}}},
            "a trigger needs exactly one of event, cart_abandoned, schedule, birthday, "
            "points_expiring, referral_qualified; got event, birthday",
        ),
        (
            {"steps": [{"wait": "1d", "issue_coupon": "x"}]},
            "a step needs exactly one of send, wait, issue_coupon, award_points; "
            "got wait, issue_coupon",
        ),
        ({}, "a campaign needs steps, or experiment.variants with steps"),
        (
            {
                "steps": [{"wait": "1d"}],
                "experiment": {"variants": {"a": {"weight": 1, "steps": [{"wait": "1d"}]}}},
            },
            "give steps either at the top or in experiment.variants, not both",
        ),
    ],
)
def test_campaign_shapes_are_enforced(changes: dict[str, Any], reason: str) -> None:
    assert _messages(Campaign, {**CAMPAIGN, **changes}) == [reason]


def test_tier_levels_climb_from_zero() -> None:
    data = parse_document((PROGRAM / "program.yaml").read_text(), file="program.yaml")
    assert isinstance(data, SourceDocument)
    levels = data.data["tiers"]["levels"]
    levels[0]["min_spend"] = 10

    assert _messages(ProgramFile, data.data) == [
        "the first level must have min_spend 0, so every member has a tier"
    ]


def test_the_event_types_are_declared_once_for_envelopes_earn_rules_and_campaigns() -> None:
    from typing import get_args

    from core.events.types import DATA_MODELS, EVENT_TYPES, INTERNAL_EVENT_TYPES, SHOP_EVENT_TYPES
    from core.program.program_file import PurchaseRule

    assert set(DATA_MODELS) == SHOP_EVENT_TYPES
    assert set(EVENT_TYPES) == SHOP_EVENT_TYPES | INTERNAL_EVENT_TYPES
    assert set(get_args(PurchaseRule.model_fields["on"].annotation)) == SHOP_EVENT_TYPES
    exit_on = get_args(Campaign.model_fields["exit_on"].annotation)[0]  # tuple[EventType, ...]
    assert set(get_args(exit_on)) == set(EVENT_TYPES)

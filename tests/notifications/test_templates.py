"""Templates render in the member's language and time zone, strictly, and `check` proves it."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.program.check import check_program
from core.program.loader import Program, load_program
from notifications.errors import TemplateRenderError
from notifications.samples import sample_variables
from notifications.segments import count_segments, sign
from notifications.template_files import TemplateFile
from notifications.templates import (
    Audience,
    RenderedMessage,
    TemplateCatalog,
    catalog_for,
    pick_locale,
    render_message,
)

EXPIRES = datetime(2026, 11, 19, 13, 40, tzinfo=UTC)


def render(
    program: Program,
    template_id: str,
    channel: str,
    *,
    locale: str | None = "en",
    timezone: str | None = "Asia/Shanghai",
    variables: dict[str, Any] | None = None,
) -> RenderedMessage:
    return render_message(
        catalog_for(program),
        template_id=template_id,
        channel=channel,
        variables=variables if variables is not None else sample_variables(program, "en"),
        audience=Audience(locale, timezone),
        currency="CNY",
        business_timezone="Asia/Shanghai",
        sms_signature=program.program_file.messaging.sender.sms_signature,
    )


def one_off(text: str, *, channel: str = "push", html: str | None = None) -> TemplateCatalog:
    content: dict[str, Any]
    if channel == "push":
        content = {"title": {"en": "Hi"}, "body": {"en": text}}
    elif channel == "sms":
        content = {"body": {"en": text}}
    else:
        content = {"subject": {"en": "Hi"}, "text": {"en": text}}
        if html is not None:
            content["html"] = {"en": html}
    template = TemplateFile.model_validate({"id": "t", channel: content})
    return TemplateCatalog({"t": template}, default_locale="en")


def render_one(
    catalog: TemplateCatalog, channel: str = "push", **variables: Any
) -> RenderedMessage:
    return render_message(
        catalog,
        template_id="t",
        channel=channel,
        variables=variables,
        audience=Audience("en", "UTC"),
        currency="CNY",
        business_timezone="UTC",
    )


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("en", "en"),
        ("zh-CN", "zh-CN"),
        ("en-GB", "en"),  # the member's language
        ("zh-TW", "zh-CN"),
        ("fr", "zh-CN"),  # no French: the program's default locale
        (None, "zh-CN"),
    ],
)
def test_a_text_is_picked_in_the_members_locale_else_language_else_default(
    requested: str | None, expected: str
) -> None:
    assert pick_locale(requested, ["zh-CN", "en"], "zh-CN") == expected


def test_money_and_dates_are_formatted_in_the_members_locale_and_time_zone(
    program: Program,
) -> None:
    variables = sample_variables(program, "en") | {
        "coupon": {
            "name": "12% off",
            "discount_text": "up to ¥60 off",
            "code": "C-1",
            "expires_at": EXPIRES,
        },
        "cart": {"total": Decimal("1139.80"), "item_count": 7, "items": [], "categories": []},
    }

    in_shanghai = render(program, "cart-coupon", "push", variables=variables)
    in_new_york = render(program, "cart-coupon", "push", timezone="America/New_York",
                         variables=variables)  # fmt: skip
    in_chinese = render(program, "cart-reminder", "push", locale="zh-CN", variables=variables)

    assert in_shanghai.body == "12% off (up to ¥60 off), valid until Nov 19, 2026, 9:40 PM."
    assert in_new_york.body == "12% off (up to ¥60 off), valid until Nov 19, 2026, 8:40 AM."
    assert "¥1,139.80" in in_chinese.body
    assert in_chinese.title == "你挑的茶还在购物车里"


def test_a_missing_variable_is_an_error_never_a_blank(program: Program) -> None:
    variables = sample_variables(program, "en")
    del variables["coupon"]

    with pytest.raises(TemplateRenderError, match="'coupon' is undefined"):
        render(program, "welcome", "email", variables=variables)


def test_a_missing_field_of_a_list_item_names_the_item(program: Program) -> None:
    catalog = one_off("{% for item in cart.items %}{{ item.nme }}{% endfor %}")

    with pytest.raises(TemplateRenderError, match="item has no attribute 'nme'"):
        render_one(catalog, cart={"items": [{"name": "Pan"}]})


def test_html_email_is_autoescaped_and_always_has_a_text_part() -> None:
    catalog = one_off(
        "Hi {{ member.first_name }}", channel="email", html="<p>Hi {{ member.first_name }}</p>"
    )

    message = render_one(catalog, "email", member={"first_name": "<script>x</script>"})

    assert message.html == "<p>Hi &lt;script&gt;x&lt;/script&gt;</p>"
    assert message.body == "Hi <script>x</script>"  # text is text


def test_an_email_written_as_text_gets_an_escaped_html_part_with_live_links() -> None:
    catalog = one_off("A & B\nUnsubscribe: {{ unsubscribe_url }}", channel="email")

    message = render_one(catalog, "email", unsubscribe_url="https://x.example/u/1")

    assert message.html is not None
    assert "A &amp; B<br>" in message.html
    assert '<a href="https://x.example/u/1">https://x.example/u/1</a>' in message.html


def test_an_sms_carries_the_programs_signature_and_its_segment_count(program: Program) -> None:
    message = render(program, "welcome-last-chance", "sms", locale="zh-CN")

    assert message.body.startswith("【茶舍】")
    assert message.segments == count_segments(message.body)


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("{" * 81, "GSM-7", 162, 2),
        ("中" * 70, "UCS-2", 70, 1),
        ("中" * 71, "UCS-2", 71, 2),
        ("中" * 134, "UCS-2", 134, 2),
        ("中" * 135, "UCS-2", 135, 3),
        ("a" * 69 + "😀", "UCS-2", 71, 2),  # an emoji is two UTF-16 units
        ("", "GSM-7", 0, 1),
    ],
)
def test_sms_segments_are_counted_gsm7_160_153_or_ucs2_70_67(
    text: str, encoding: str, units: int, segments: int
) -> None:
    count = count_segments(text)

    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_a_signature_is_added_once() -> None:
    assert sign("【生活家】Hi", "【生活家】") == "【生活家】Hi"
    assert sign("Hi", "") == "Hi"


def test_check_renders_every_template_of_the_example_program_cleanly(examples: Path) -> None:
    issues = check_program(examples / "program")

    assert issues == []


def copy_program(examples: Path, tmp_path: Path) -> Path:
    target = tmp_path / "program"
    shutil.copytree(examples / "program", target)
    return target


def test_check_catches_a_template_error_only_rendering_finds_at_its_line(
    examples: Path, tmp_path: Path
) -> None:
    directory = copy_program(examples, tmp_path)
    path = directory / "templates" / "cart-coupon.yaml"
    text = path.read_text().replace("{{ item.name }} x {{ item.qty }}", "{{ item.nme }}")
    path.write_text(text)

    issues = check_program(directory)

    assert [str(issue) for issue in issues] == [
        "templates/cart-coupon.yaml:25:9: email.text.en: item has no attribute 'nme'"
    ]


def test_check_catches_a_filter_given_the_wrong_kind_of_value(
    examples: Path, tmp_path: Path
) -> None:
    directory = copy_program(examples, tmp_path)
    path = directory / "templates" / "welcome.yaml"
    path.write_text(
        path.read_text().replace("{{ coupon.expires_at | date }} 前", "{{ coupon.code | date }} 前")
    )

    issues = check_program(directory)

    assert len(issues) == 1
    assert issues[0].severity == "error"
    assert "templates/welcome.yaml:10" in str(issues[0])
    assert "expected a date-time" in issues[0].message or "Invalid isoformat" in issues[0].message


def test_check_warns_about_an_sms_above_three_segments(examples: Path, tmp_path: Path) -> None:
    directory = copy_program(examples, tmp_path)
    path = directory / "templates" / "birthday.yaml"
    long_text = "Happy birthday, {{ member.first_name }}! " + "Lots of news. " * 40
    path.write_text(
        path.read_text().replace(
            '"Happy birthday, {{ member.first_name }}! {{ coupon.name }}, code {{ coupon.code }},'
            ' valid until {{ coupon.expires_at | date }}. Reply STOP to opt out"',
            f'"{long_text}"',
        )
    )

    issues = check_program(directory)

    assert [(issue.severity, issue.path) for issue in issues] == [("warning", "sms.body.en")]
    assert "segments" in issues[0].message
    assert load_program(directory)  # a warning does not stop the program from loading

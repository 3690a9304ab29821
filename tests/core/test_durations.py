"""Durations and times of day as marketers write them in program files."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from core.durations import Duration, TimeOfDay, format_duration, parse_duration, parse_time_of_day


class _Timed(BaseModel):
    wait: Duration
    at: TimeOfDay | None = None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("48h", timedelta(hours=48)),
        ("3d", timedelta(days=3)),
        ("365d", timedelta(days=365)),
        ("2w", timedelta(weeks=2)),
        ("0s", timedelta(0)),
    ],
)
def test_a_duration_reads_as_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["3 days", "3D", "1.5h", "h", "-1d", "", "10"])
def test_anything_else_is_rejected_saying_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_duration(text)

    assert str(raised.value) == (
        f"expected a duration such as 90s, 15m, 1h, 3d or 2w, got {text!r}"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=90), "90s"),
        (timedelta(hours=48), "2d"),
        (timedelta(days=14), "2w"),
        (timedelta(hours=23), "23h"),
        (timedelta(0), "0s"),
    ],
)
def test_a_duration_is_written_back_in_its_largest_exact_unit(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_a_model_field_validates_from_text_and_serialises_back_to_text() -> None:
    timed = _Timed.model_validate({"wait": "3d", "at": "09:30"})

    assert timed.wait == timedelta(days=3)
    assert timed.at == time(9, 30)
    assert timed.model_dump(mode="json") == {"wait": "3d", "at": "09:30"}


def test_a_bad_duration_in_a_model_gives_the_plain_message() -> None:
    with pytest.raises(ValidationError) as raised:
        _Timed.model_validate({"wait": 3})

    assert raised.value.errors()[0]["msg"] == (
        "expected a duration such as 90s, 15m, 1h, 3d or 2w, got 3 (int)"
    )


def test_the_json_schema_of_a_duration_is_a_patterned_string() -> None:
    schema = _Timed.model_json_schema()["properties"]["wait"]

    assert schema["type"] == "string"
    assert schema["pattern"] == "^[0-9]+[smhdw]$"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("00:00", time(0, 0)), ("09:05", time(9, 5)), ("23:59", time(23, 59))],
)
def test_a_time_of_day_reads_as_24_hour_hh_mm(text: str, expected: time) -> None:
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["24:00", "9:00", "09:60", "noon", "09:00:00"])
def test_a_time_of_day_outside_hh_mm_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="expected a time of day as HH:MM"):
        parse_time_of_day(text)

"""A bad line never stops a file: each becomes one dead letter with its reason, the rest go in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from core.events.handlers import HandlerRegistry
from core.events.intake import Intake, ingest, ingest_lines
from core.events.store import fetch_rejected
from core.events.tables import events, members

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def intake(engine: Engine, **changes: object) -> Intake:
    values: dict[str, object] = {"engine": engine, "now": NOW, "registry": HandlerRegistry(),
                                 "future_tolerance": timedelta(hours=24)}  # fmt: skip
    return Intake(**{**values, **changes})  # type: ignore[arg-type]


def line(n: int, **changes: object) -> str:
    event = {"id": f"e-{n}", "type": "content.shared", "occurred_at": "2026-11-01T10:00:00Z",
             "member_id": f"m-{n % 50}", "data": {"channel": "wechat"}}  # fmt: skip
    return json.dumps({**event, **changes})


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


BAD_LINES = {
    "invalid UTF-8": b'{"id": "x", "type": "\xff\xfe"}',
    "10,000-deep JSON": b"[" * 10_000 + b"]" * 10_000,
    "deep JSON in data": line(0, data={"channel": "x", "a": json.loads("[" * 40 + "]" * 40)}),
    "a NUL character": line(0, data={"channel": "we\u0000chat"}),
    "a 5 MB first_name": json.dumps(
        {
            "id": "big",
            "type": "member.registered",
            "occurred_at": "2026-11-01T10:00:00Z",
            "member_id": "m-1",
            "data": {"first_name": "x" * 5_000_000},
        }
    ),
    "a 300-character first name": json.dumps(
        {
            "id": "long",
            "type": "member.registered",
            "occurred_at": "2026-11-01T10:00:00Z",
            "member_id": "m-1",
            "data": {"first_name": "x" * 300},
        }
    ),
    "a lone surrogate escape": line(0, data={"channel": "\udcff"}),
    "a raw NUL byte": b'{"id": "x\x00", "type": "content.shared"}',
    "an event in 2999": line(0, id="future", occurred_at="2999-01-01T00:00:00Z"),
}


@pytest.mark.parametrize("bad", list(BAD_LINES), ids=list(BAD_LINES))
def test_a_bad_line_in_the_middle_of_3000_leaves_the_other_2999_stored(
    engine: Engine, bad: str
) -> None:
    text = BAD_LINES[bad]
    raw = text if isinstance(text, bytes) else text.encode()
    lines = [line(n).encode() for n in range(1, 1_501)] + [raw]
    lines += [line(n).encode() for n in range(1_501, 3_000)]

    report = ingest_lines(lines, intake(engine, batch_size=500))

    assert report.as_dict() == {"accepted": 2_999, "duplicate": 0, "rejected": 1}
    assert report.rejections[0].line == 1_501
    assert stored(engine) == 2_999
    with engine.connect() as conn:
        (rejected,) = fetch_rejected(conn)
    assert rejected["line"] == 1_501 and rejected["reason"]
    assert len(rejected["raw"]) <= 256 * 1024  # an oversized line is kept clipped, with its size


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"id": "x", "type": "\xff"}', "not valid UTF-8: byte 0xff at offset 21"),
        (b"[" * 10_000 + b"]" * 10_000, "JSON nested deeper than 32 levels"),
        ("x" * 300_000, "line is 300,000 bytes, over the 262,144 limit"),
        (line(1, occurred_at="2026-11-23T12:00:01Z"), "is after 2026-11-23T12:00:00+00:00"),
    ],
)
def test_each_bad_line_says_what_is_wrong(engine: Engine, bad: str | bytes, reason: str) -> None:
    report = ingest_lines([bad], intake(engine))

    assert report.rejected == 1
    assert reason in report.rejections[0].reason


def test_an_event_just_inside_the_tolerance_is_accepted(engine: Engine) -> None:
    report = ingest_lines([line(1, occurred_at="2026-11-23T12:00:00Z")], intake(engine))

    assert report.accepted == 1


def test_a_utf8_byte_order_mark_is_accepted(engine: Engine) -> None:
    report = ingest_lines([b"\xef\xbb\xbf" + line(1).encode(), line(2).encode()], intake(engine))

    assert report.as_dict() == {"accepted": 2, "duplicate": 0, "rejected": 0}


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("first_name", 200),
        ("email", 320),
        ("phone", 64),
        ("push_token", 512),
        ("locale", 35),
        ("referral_code", 64),
    ],
)
def test_profile_fields_are_bounded_by_what_can_be_stored(
    engine: Engine, field: str, limit: int
) -> None:
    def registered(value: str) -> dict[str, object]:
        return {"id": f"r-{len(value)}", "type": "member.registered", "member_id": "m-1",
                "occurred_at": "2026-11-01T10:00:00Z", "data": {field: value}}  # fmt: skip

    ok = ingest([registered("a" * limit)], intake(engine))
    too_long = ingest([registered("a" * (limit + 1))], intake(engine))

    assert ok.accepted == 1, ok.rejections
    assert too_long.rejected == 1
    assert f"data.{field}" in too_long.rejections[0].reason
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(members)).scalar_one() == 1

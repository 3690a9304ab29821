"""Provider delivery webhooks over HTTP against a real uvicorn on loopback: a signed callback
(or a list) is recorded on its message, a redelivery changes nothing, a tampered body, a wrong
secret, a missing or stale signature are 401 problems, an unknown provider a 404, and no API
key is ever needed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from messaging_shop import NOW, WEBHOOK_SECRETS, MessagingShop, serve_messaging
from sqlalchemy import Engine, func, select

from notifications.records import fetch_log
from notifications.tables import delivery_events
from notifications.webhooks import check_signature, sign

PROBLEM = "application/problem+json"
SMTP = "/v1/webhooks/email/smtp"


@pytest.fixture
def shop(db_url: str, engine: Engine, examples: Path, tmp_path: Path) -> Iterator[MessagingShop]:
    with serve_messaging(db_url, examples, tmp_path) as served:
        served.send_email("m-alex")
        yield served


def callback(n: int, kind: str, message_id: str, **extra: Any) -> dict[str, Any]:
    at = NOW + timedelta(minutes=n)
    return {"id": f"evt-{n}", "kind": kind, "occurred_at": at.isoformat(),
            "message_id": message_id, **extra}  # fmt: skip


def signed_headers(body: bytes, *, secret: str, at: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Loyalty-Timestamp": str(at),
        "X-Loyalty-Signature": sign(secret.encode(), timestamp=at, body=body),
    }


def post_signed(
    shop: MessagingShop,
    payload: Any,
    *,
    path: str = SMTP,
    secret: str = WEBHOOK_SECRETS["email/smtp"],
    signed_at: timedelta = timedelta(0),
) -> httpx.Response:
    body = json.dumps(payload).encode()
    at = int((NOW + signed_at).timestamp())
    return httpx.post(f"{shop.base}{path}", content=body,
                      headers=signed_headers(body, secret=secret, at=at))  # fmt: skip


def delivery_of(shop: MessagingShop, message_id: str) -> str | None:
    with shop.runtime.engine.connect() as conn:
        [entry] = [e for e in fetch_log(conn) if e.message_id == message_id]
    return entry.delivery


def stored_callbacks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(delivery_events)).scalar_one())


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    code: str = response.json()["code"]
    return code


def test_a_signed_list_of_callbacks_is_recorded_on_the_message(shop: MessagingShop) -> None:
    message_id = shop.sent["m-alex"]

    answer = post_signed(shop, [callback(1, "delivered", message_id),
                                callback(2, "opened", message_id)])  # fmt: skip

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"results": [
        {"id": "evt-1", "outcome": "applied", "message_id": message_id},
        {"id": "evt-2", "outcome": "applied", "message_id": message_id},
    ]}  # fmt: skip
    assert delivery_of(shop, message_id) == "opened"
    assert stored_callbacks(shop.runtime.engine) == 2


def test_a_callback_found_by_the_providers_message_id_is_recorded(shop: MessagingShop) -> None:
    message_id = shop.sent["m-alex"]
    with shop.runtime.engine.connect() as conn:
        [entry] = [e for e in fetch_log(conn) if e.message_id == message_id]
    assert entry.provider_message_id == f"<{message_id}@loyalty-engine>"  # what SMTP returned
    one = {"id": "evt-9", "kind": "clicked", "occurred_at": NOW.isoformat(),
           "provider_message_id": entry.provider_message_id}  # fmt: skip

    answer = post_signed(shop, one)

    assert answer.json()["results"] == [
        {"id": "evt-9", "outcome": "applied", "message_id": message_id}
    ]
    assert delivery_of(shop, message_id) == "clicked"


def test_a_redelivered_callback_changes_nothing(shop: MessagingShop) -> None:
    message_id = shop.sent["m-alex"]
    post_signed(shop, [callback(1, "delivered", message_id), callback(3, "clicked", message_id)])
    stored = stored_callbacks(shop.runtime.engine)

    # The provider sends the opened event late and the clicked one again, signed anew.
    again = post_signed(shop, [callback(2, "opened", message_id),
                               callback(3, "clicked", message_id)],
                        signed_at=timedelta(minutes=1))  # fmt: skip

    assert [r["outcome"] for r in again.json()["results"]] == ["applied", "duplicate"]
    assert stored_callbacks(shop.runtime.engine) == stored + 1
    assert delivery_of(shop, message_id) == "clicked"  # a late "opened" does not move it back


def test_a_complaint_through_the_webhook_unsubscribes_the_member(shop: MessagingShop) -> None:
    answer = post_signed(shop, callback(1, "complained", shop.sent["m-alex"]))

    assert answer.json()["results"][0]["outcome"] == "applied"
    assert shop.recipient("m-alex").unsubscribed == frozenset({"email"})


def test_two_providers_may_use_the_same_callback_id(shop: MessagingShop) -> None:
    message_id = shop.sent["m-alex"]
    second = "/v1/webhooks/email/smtp-secondary"

    first = post_signed(shop, callback(1, "delivered", message_id))
    other = post_signed(shop, callback(1, "opened", message_id), path=second,
                        secret=WEBHOOK_SECRETS["email/smtp-secondary"])  # fmt: skip

    assert first.json()["results"][0]["outcome"] == "applied"
    assert other.json()["results"][0]["outcome"] == "applied"
    assert stored_callbacks(shop.runtime.engine) == 2


def test_a_tampered_body_is_refused_and_changes_nothing(shop: MessagingShop) -> None:
    message_id = shop.sent["m-alex"]
    body = json.dumps(callback(1, "delivered", message_id)).encode()
    headers = signed_headers(body, secret=WEBHOOK_SECRETS["email/smtp"], at=int(NOW.timestamp()))

    answer = httpx.post(f"{shop.base}{SMTP}", content=body.replace(b"delivered", b"bounced"),
                        headers=headers)  # fmt: skip

    assert problem(answer, 401) == "bad_signature"
    assert stored_callbacks(shop.runtime.engine) == 0
    assert delivery_of(shop, message_id) is None


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no signature at all
        {"X-Loyalty-Timestamp": str(int(NOW.timestamp()))},
        {"X-Loyalty-Timestamp": "yesterday", "X-Loyalty-Signature": "sha256=00"},
    ],
)
def test_a_missing_or_unreadable_signature_is_refused(
    shop: MessagingShop, headers: dict[str, str]
) -> None:
    body = json.dumps(callback(1, "delivered", shop.sent["m-alex"])).encode()

    answer = httpx.post(f"{shop.base}{SMTP}", content=body, headers=headers)

    assert problem(answer, 401) == "bad_signature"
    assert stored_callbacks(shop.runtime.engine) == 0


def test_another_providers_secret_does_not_sign_for_this_one(shop: MessagingShop) -> None:
    answer = post_signed(shop, callback(1, "delivered", shop.sent["m-alex"]),
                         secret=WEBHOOK_SECRETS["email/smtp-secondary"])  # fmt: skip

    assert problem(answer, 401) == "bad_signature"


@pytest.mark.parametrize(
    ("signed_at", "accepted"),
    [
        (timedelta(minutes=-4, seconds=-59), True),
        (timedelta(minutes=4, seconds=59), True),  # a provider's clock a little ahead
        (timedelta(minutes=-5, seconds=-1), False),  # a captured request played again
        (timedelta(minutes=5, seconds=1), False),
        (timedelta(hours=-1), False),
    ],
)
def test_a_request_signed_more_than_five_minutes_away_is_refused(
    shop: MessagingShop, signed_at: timedelta, accepted: bool
) -> None:
    answer = post_signed(shop, callback(1, "delivered", shop.sent["m-alex"]), signed_at=signed_at)

    if accepted:
        assert answer.status_code == 200, answer.text
    else:
        assert problem(answer, 401) == "stale_timestamp"
    assert stored_callbacks(shop.runtime.engine) == (1 if accepted else 0)


@pytest.mark.parametrize(
    "path", ["/v1/webhooks/email/sendgrid", "/v1/webhooks/sms/smtp", "/v1/webhooks/fax/smtp"]
)
def test_a_provider_without_a_secret_is_not_found(shop: MessagingShop, path: str) -> None:
    answer = post_signed(shop, callback(1, "delivered", shop.sent["m-alex"]), path=path)

    assert problem(answer, 404) == "unknown_provider"


def test_a_signed_but_invalid_body_names_the_field(shop: MessagingShop) -> None:
    bad = callback(1, "vanished", shop.sent["m-alex"])

    answer = post_signed(shop, [callback(2, "delivered", shop.sent["m-alex"]), bad])

    assert problem(answer, 422) == "invalid_request"
    assert [error["field"] for error in answer.json()["errors"]] == ["1.kind"]
    assert stored_callbacks(shop.runtime.engine) == 0  # nothing of a refused batch


def test_a_callback_about_an_unknown_message_is_answered_and_kept_out(
    shop: MessagingShop,
) -> None:
    answer = post_signed(shop, [callback(1, "delivered", "msg_nothing"),
                                callback(2, "delivered", shop.sent["m-alex"])])  # fmt: skip

    assert [r["outcome"] for r in answer.json()["results"]] == ["unknown_message", "applied"]
    assert stored_callbacks(shop.runtime.engine) == 1


@pytest.mark.parametrize("by", ["message_id", "provider_message_id"])
def test_another_channels_webhook_cannot_touch_an_email(shop: MessagingShop, by: str) -> None:
    message_id = shop.sent["m-alex"]
    named = {"message_id": message_id, "provider_message_id": f"<{message_id}@loyalty-engine>"}
    one = {"id": "evt-1", "kind": "complained", "occurred_at": NOW.isoformat(), by: named[by]}

    answer = post_signed(shop, one, path="/v1/webhooks/sms/gateway",
                         secret=WEBHOOK_SECRETS["sms/gateway"])  # fmt: skip

    # answered as a message the sms channel never sent, and nothing recorded or changed
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [
        {"id": "evt-1", "outcome": "unknown_message", "message_id": None}
    ]
    assert stored_callbacks(shop.runtime.engine) == 0
    assert delivery_of(shop, message_id) is None
    assert shop.recipient("m-alex").unsubscribed == frozenset()
    # the email's own channel still can
    assert post_signed(shop, one).json()["results"][0]["outcome"] == "applied"


SECRET = b"whsec-0123456789abcdef"
BODY = b'{"id": "evt-1"}'


@pytest.mark.parametrize(
    ("signature", "timestamp", "now_offset", "code"),
    [
        (sign(SECRET, timestamp=1_800_000_000, body=BODY), "1800000000", 0, ""),
        (f"sha256=00, {sign(SECRET, timestamp=1_800_000_000, body=BODY)}", "1800000000", 0, ""),
        (sign(SECRET, timestamp=1_800_000_000, body=BODY), "1800000001", 0, "bad_signature"),
        (sign(b"another-secret-0123", timestamp=1_800_000_000, body=BODY), "1800000000", 0,
         "bad_signature"),
        (sign(SECRET, timestamp=1_800_000_000, body=BODY), "1800000000", 301, "stale_timestamp"),
        (sign(SECRET, timestamp=1_800_000_000, body=BODY), "1800000000", 300, ""),
        (None, "1800000000", 0, "bad_signature"),
        ("sha256=00", "9" * 40, 0, "bad_signature"),
    ],
)  # fmt: skip
def test_check_signature(signature: str | None, timestamp: str, now_offset: int, code: str) -> None:
    now = datetime.fromtimestamp(1_800_000_000 + now_offset, UTC)

    checked = check_signature(SECRET, body=BODY, signature=signature, timestamp=timestamp, now=now)

    assert (checked.ok, checked.code) == (not code, code)

"""Unsubscribe links over HTTP against a real uvicorn on loopback: the link an email carries
(body and List-Unsubscribe headers) points at the served page, the page asks in the member's
language, confirming or a mail client's RFC 8058 one-click POST stops the channel once, and a
changed or orphaned link gets a clear page (or problem+json for a JSON client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import html5lib
import httpx
import pytest
from messaging_shop import MessagingShop, serve_messaging
from sqlalchemy import Engine, select

from notifications.records import fetch_log
from notifications.settings import NotificationSettings
from notifications.tables import unsubscribes
from notifications.tokens import load_secret, make_token

PROBLEM = "application/problem+json"
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def shop(db_url: str, engine: Engine, examples: Path, tmp_path: Path) -> Iterator[MessagingShop]:
    with serve_messaging(db_url, examples, tmp_path) as served:
        served.send_email("m-mei")
        served.send_email("m-alex")
        yield served


def link_of(shop: MessagingShop, member_id: str) -> str:
    """The List-Unsubscribe link of the email the member got."""
    [received] = [m for m in shop.mailbox.received if m["To"] == f"{member_id}@example.com"]
    links = [part.strip().strip("<>") for part in received["List-Unsubscribe"].split(",")]
    return next(link for link in links if link.startswith("http"))


def unsubscribed_rows(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        stmt = select(unsubscribes.c.member_id, unsubscribes.c.channel, unsubscribes.c.source)
        return sorted(tuple(row) for row in conn.execute(stmt))  # type: ignore[misc]


def strict_html(page: str) -> None:
    html5lib.HTMLParser(strict=True).parse(page)


def test_the_email_headers_and_body_link_to_the_served_page(shop: MessagingShop) -> None:
    [received] = [m for m in shop.mailbox.received if m["To"] == "m-alex@example.com"]

    link = link_of(shop, "m-alex")

    assert link.startswith(f"{shop.base}/v1/unsubscribe/u1.")
    assert received["List-Unsubscribe"] == f"<{link}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = received.get_body(("plain",))
    assert text is not None and link in text.get_content()


@pytest.mark.parametrize(
    ("member_id", "lang", "question", "button"),
    [
        ("m-mei", "zh-CN", "确定退订Tea House Rewards的邮件吗？", "确认退订"),
        ("m-alex", "en", "Stop emails from Tea House Rewards?", "Unsubscribe"),
    ],
)
def test_the_page_asks_in_the_members_language_and_changes_nothing(
    shop: MessagingShop, member_id: str, lang: str, question: str, button: str
) -> None:
    # An English browser: the member's own language still wins.
    page = httpx.get(link_of(shop, member_id), headers={"Accept-Language": "en-US,en;q=0.9"})

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    strict_html(page.text)
    assert f'<html lang="{lang}">' in page.text
    assert question in page.text
    assert '<form method="post">' in page.text and button in page.text
    assert shop.recipient(member_id).unsubscribed == frozenset()


def test_confirming_on_the_page_stops_email_once(shop: MessagingShop) -> None:
    link = link_of(shop, "m-mei")

    first = httpx.post(link, data={"List-Unsubscribe": "One-Click"})
    again = httpx.post(link, data={"List-Unsubscribe": "One-Click"})
    later = httpx.get(link)

    assert first.status_code == again.status_code == later.status_code == 200
    strict_html(first.text)
    assert "您已退订" in first.text and "您将不再收到Tea House Rewards发送的邮件。" in first.text
    assert "您此前已退订" in again.text
    assert "您此前已退订" in later.text and "<form" not in later.text
    assert unsubscribed_rows(shop.runtime.engine) == [("m-mei", "email", "link")]
    assert shop.recipient("m-mei").unsubscribed == frozenset({"email"})
    assert shop.recipient("m-alex").unsubscribed == frozenset()


def test_a_mail_clients_one_click_post_stops_the_channel_and_the_next_email_is_suppressed(
    shop: MessagingShop,
) -> None:
    link = link_of(shop, "m-alex")

    # RFC 8058: a POST of exactly this body, no cookies, no credentials, no API key.
    answer = httpx.post(link, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)

    assert answer.status_code == 200, answer.text
    assert "You are unsubscribed" in answer.text
    assert "You will get no more emails from Tea House Rewards." in answer.text
    assert shop.recipient("m-alex").unsubscribed == frozenset({"email"})
    next_one = shop.send_email("m-alex", dedupe_key="cart-m-alex-2")
    with shop.runtime.engine.connect() as conn:
        [entry] = [e for e in fetch_log(conn, member_id="m-alex") if e.message_id == next_one]
    assert (entry.status, entry.reason) == ("suppressed", "unsubscribed")
    assert len(shop.mailbox.received) == 2  # the first two emails only


def test_one_click_with_an_idempotency_key_needs_no_api_key_and_replays(
    shop: MessagingShop,
) -> None:
    link = link_of(shop, "m-alex")
    headers = ONE_CLICK | {"Idempotency-Key": "one-click-1"}

    first = httpx.post(link, content=b"List-Unsubscribe=One-Click", headers=headers)
    replayed = httpx.post(link, content=b"List-Unsubscribe=One-Click", headers=headers)

    assert (first.status_code, replayed.status_code) == (200, 200)
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.text == first.text
    assert unsubscribed_rows(shop.runtime.engine) == [("m-alex", "email", "link")]


def test_a_json_client_gets_the_state_as_json(shop: MessagingShop) -> None:
    link = link_of(shop, "m-alex")
    json_first = {"Accept": "application/json, text/html;q=0.5"}

    asked = httpx.get(link, headers=json_first)
    applied = httpx.post(link, headers=json_first)
    again = httpx.post(link, headers=json_first)

    assert asked.headers["content-type"] == "application/json"
    assert asked.json() == {"channel": "email", "unsubscribed": False, "changed": False}
    assert applied.json() == {"channel": "email", "unsubscribed": True, "changed": True}
    assert again.json() == {"channel": "email", "unsubscribed": True, "changed": False}


def tampered(link: str) -> str:
    """The link with one character of its signature changed."""
    return link[:-1] + ("A" if link[-1] != "A" else "B")


@pytest.mark.parametrize(
    ("language", "lang", "title"),
    [
        ("zh-CN,zh;q=0.9", "zh-CN", "此链接无效"),
        ("fr-FR, en;q=0.5", "en", "This link does not work"),
    ],
)
def test_a_changed_link_gets_a_400_page_in_the_browsers_language_and_stops_nothing(
    shop: MessagingShop, language: str, lang: str, title: str
) -> None:
    link = tampered(link_of(shop, "m-mei"))

    page = httpx.get(link, headers={"Accept-Language": language})
    posted = httpx.post(link, data={"List-Unsubscribe": "One-Click"})
    cut_short = httpx.get(f"{shop.base}/v1/unsubscribe/u1.abc")

    assert (page.status_code, posted.status_code, cut_short.status_code) == (400, 400, 400)
    strict_html(page.text)
    assert f'<html lang="{lang}">' in page.text and title in page.text
    assert "<form" not in page.text
    assert unsubscribed_rows(shop.runtime.engine) == []


def test_a_changed_link_is_a_problem_for_a_json_client(shop: MessagingShop) -> None:
    link = tampered(link_of(shop, "m-mei"))

    answer = httpx.post(link, headers={"Accept": "application/json"})

    assert answer.status_code == 400
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == "invalid_unsubscribe_token"
    assert unsubscribed_rows(shop.runtime.engine) == []


def test_a_link_whose_member_the_engine_no_longer_knows_is_a_404(shop: MessagingShop) -> None:
    with shop.runtime.engine.begin() as conn:
        token = make_token(load_secret(conn, None), member_id="m-gone", channel="email")
    link = f"{shop.base}/v1/unsubscribe/{token}"

    page = httpx.get(link, headers={"Accept-Language": "en"})
    posted = httpx.post(link, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    problem = httpx.get(link, headers={"Accept": "application/json"})

    assert (page.status_code, posted.status_code, problem.status_code) == (404, 404, 404)
    assert "Nothing to unsubscribe" in page.text
    assert problem.headers["content-type"] == PROBLEM
    assert problem.json()["code"] == "member_not_found"
    assert unsubscribed_rows(shop.runtime.engine) == []


@pytest.mark.parametrize(
    ("settings", "link"),
    [
        ({}, "http://127.0.0.1:8000/unsubscribe/{token}"),  # unset: as before
        ({"public_base_url": "https://loyalty.shop.example/"},
         "https://loyalty.shop.example/v1/unsubscribe/{token}"),
        ({"public_base_url": "https://shop.example/engine"},
         "https://shop.example/engine/v1/unsubscribe/{token}"),
        ({"public_base_url": "https://loyalty.shop.example",
          "unsubscribe_url": "https://shop.example/u/{token}"},
         "https://shop.example/u/{token}"),  # an explicit link wins
    ],
)  # fmt: skip
def test_the_public_base_url_decides_the_unsubscribe_link(
    settings: dict[str, str], link: str
) -> None:
    options = NotificationSettings(_env_file=None, **settings)  # type: ignore[call-arg, arg-type]

    assert options.unsubscribe_url == link


def test_a_public_base_url_with_a_query_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="LOYALTY_PUBLIC_BASE_URL must be an http"):
        NotificationSettings(_env_file=None, public_base_url="shop.example/?x=1")  # type: ignore[call-arg]

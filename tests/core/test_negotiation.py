"""core.http.negotiation.ranked: the one Accept / Accept-Language reader that checkout reasons
and the unsubscribe page share."""

from __future__ import annotations

import pytest

from core.http.negotiation import ranked


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, []),
        ("", []),
        ("zh-CN", ["zh-CN"]),
        ("en;q=0.5, zh-CN", ["zh-CN", "en"]),
        ("de, fr", ["de", "fr"]),  # ties keep their order
        ("en;q=0, fr", ["fr"]),  # q=0 means "not this"
        ("*, en;q=0.1", ["en"]),
        ("text/html;q=0.9, application/json, */*;q=0.1", ["application/json", "text/html"]),
        ("en;q=abc, fr;q=0.2", ["fr"]),  # an unreadable weight counts as 0
        (" en-GB ; q=0.8 ,, ja ", ["ja", "en-GB"]),
    ],
)
def test_ranked(header: str | None, expected: list[str]) -> None:
    assert ranked(header) == expected

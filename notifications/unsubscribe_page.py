"""The unsubscribe pages shoppers see (``/v1/unsubscribe/{token}``): self-contained HTML in
zh-CN or English, no script, no outside resource.

Pages: ``confirm`` (the GET: a question and a button that POSTs back to the same address),
``done`` and ``already`` (after the POST), ``invalid`` (a token that was changed or cut short)
and ``unknown`` (a valid token whose member the engine no longer knows).
"""

from __future__ import annotations

from html import escape
from typing import Literal

PageKind = Literal["confirm", "done", "already", "invalid", "unknown"]
PAGE_LOCALES = ("zh-CN", "en")
FALLBACK_LOCALE = "en"

CHANNEL_NAMES = {
    "en": {"email": "emails", "sms": "text messages", "push": "push notifications"},
    "zh-CN": {"email": "邮件", "sms": "短信", "push": "推送通知"},
}
SENDER_FALLBACK = {"en": "us", "zh-CN": "我们"}

TEXTS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "confirm": {
            "title": "Unsubscribe",
            "body": "Stop {channel} from {sender}? You will get no more {channel} from {sender}.",
            "button": "Unsubscribe",
        },
        "done": {
            "title": "You are unsubscribed",
            "body": "You will get no more {channel} from {sender}.",
        },
        "already": {
            "title": "You are unsubscribed",
            "body": "You had already unsubscribed: you get no more {channel} from {sender}.",
        },
        "invalid": {
            "title": "This link does not work",
            "body": "This unsubscribe link is incomplete or was changed. Open the link in the "
            "message again, or copy all of it into your browser.",
        },
        "unknown": {
            "title": "Nothing to unsubscribe",
            "body": "We no longer keep any record of you, so nothing more will be sent to you.",
        },
    },
    "zh-CN": {
        "confirm": {
            "title": "退订",
            "body": "确定退订{sender}的{channel}吗？退订后您将不再收到{sender}发送的{channel}。",
            "button": "确认退订",
        },
        "done": {
            "title": "您已退订",
            "body": "您将不再收到{sender}发送的{channel}。",
        },
        "already": {
            "title": "您已退订",
            "body": "您此前已退订，不会再收到{sender}发送的{channel}。",
        },
        "invalid": {
            "title": "此链接无效",
            "body": "退订链接不完整或已被修改。"
            "请重新打开消息中的链接，或将完整链接复制到浏览器中。",
        },
        "unknown": {
            "title": "无需退订",
            "body": "我们已不再保存您的任何信息，不会再向您发送消息。",
        },
    },
}

_STYLE = (
    "body{font-family:system-ui,-apple-system,'PingFang SC','Microsoft YaHei',sans-serif;"
    "margin:0;background:#f6f6f4;color:#1f1f1f}"
    "main{max-width:32rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.08)}"
    "h1{font-size:1.4rem;margin:0 0 1rem}p{line-height:1.6}"
    "button{font:inherit;padding:.6rem 1.4rem;border:0;border-radius:8px;background:#2f5d50;"
    "color:#fff;cursor:pointer}"
)
# What the pages may load: their own inline style, and a form posting to this server only.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


def page_locale(*preferences: str | None) -> str:
    """The first preference the pages are written in: ``en-GB`` reads ``en``, ``zh`` and
    ``zh-Hans-CN`` read ``zh-CN``; none of them: English."""
    by_language = {code.split("-")[0].lower(): code for code in PAGE_LOCALES}
    for preference in preferences:
        if not preference:
            continue
        exact = {code.lower(): code for code in PAGE_LOCALES}.get(preference.lower())
        found = exact or by_language.get(preference.replace("_", "-").split("-")[0].lower())
        if found:
            return found
    return FALLBACK_LOCALE


def render_page(
    kind: PageKind, *, locale: str, channel: str | None = None, sender: str | None = None
) -> str:
    """The page of ``kind`` in ``locale`` (one of :data:`PAGE_LOCALES`), as an HTML document."""
    texts = TEXTS[locale][kind]
    names = CHANNEL_NAMES[locale]
    values = {
        "channel": names.get(channel or "", names["email"]),
        "sender": sender or SENDER_FALLBACK[locale],
    }
    title = escape(texts["title"])
    body = escape(texts["body"].format(**values))
    form = ""
    if "button" in texts:  # no action: the form posts back to the address of the page
        form = (
            '<form method="post"><input type="hidden" name="List-Unsubscribe" '
            f'value="One-Click"><button type="submit">{escape(texts["button"])}</button></form>'
        )
    return (
        f'<!DOCTYPE html>\n<html lang="{locale}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{title}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{title}</h1><p>{body}</p>{form}</main></body></html>\n"
    )

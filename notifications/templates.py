"""Rendering templates/*.yaml for one member: sandboxed Jinja2, strict, localized.

Two ``ImmutableSandboxedEnvironment``s with ``StrictUndefined`` and no globals: one for plain
text (push, SMS, email subject and text), one autoescaping for HTML email. Templates compile
once per program and text. A text is picked in the member's locale, else its language, else
the program's default locale. ``money``, ``date`` and ``datetime`` format through Babel in the
member's locale and time zone (:mod:`notifications.formatting`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import missing, object_type_repr

from notifications.errors import TemplateNotFound, TemplateRenderError
from notifications.formatting import FILTERS, formatting
from notifications.segments import SegmentCount, count_segments, sign
from notifications.template_files import SAFE_BUILTIN_FILTERS, TemplateFile

MAX_SEQUENCE = 10_000  # longest string or list a template may build with `*`
MAX_EXPONENT = 64


class Record:
    """A template variable with fields (``member.first_name``); its repr names it in errors.

    Fields are converted when a template reads them, not before: a message reads a handful of
    the dozens of values a caller passes.
    """

    __slots__ = ("_fields", "_name", "_seen")

    def __init__(self, name: str, fields: Mapping[str, Any]) -> None:
        self._name = name
        self._fields = fields
        self._seen: dict[str, Any] = {}

    def __getattr__(self, attribute: str) -> Any:
        try:
            return self._seen[attribute]
        except KeyError:
            pass
        try:
            value = as_template_value(self._fields[attribute], attribute)
        except KeyError:
            raise AttributeError(attribute) from None
        self._seen[attribute] = value
        return value

    def __repr__(self) -> str:
        return self._name


_PLAIN = frozenset({str, int, float, bool, Decimal, date, datetime, type(None), Record})


def as_template_value(value: Any, name: str = "value") -> Any:
    """Mappings become :class:`Record` (so ``cart.items`` is the field, not ``dict.items``)."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Mapping):
        return Record(name, value)
    if isinstance(value, list | tuple):
        singular = name[:-1] if name.endswith("s") else name
        return tuple(as_template_value(item, singular) for item in value)
    return value


class _Undefined(StrictUndefined):
    """Says which variable lacks what: ``cart has no attribute 'totl'``."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        if self._undefined_obj is missing:
            return f"variable {self._undefined_name!r} is undefined"
        owner = self._undefined_obj
        shown = repr(owner) if isinstance(owner, Record) else object_type_repr(owner)
        return f"{shown} has no attribute {self._undefined_name!r}"


class _MessageEnvironment(ImmutableSandboxedEnvironment):
    """No globals, formatting filters only, and no `*`/`**` that could exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A Record exposes nothing but its fields (its own names all start with "_", which the
        # sandbox refuses anyway): look the field up directly instead of the sandbox's checks.
        if type(obj) is Record:
            if attribute.startswith("_"):
                return self.unsafe_undefined(obj, attribute)
            try:
                return obj.__getattr__(attribute)
            except AttributeError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent {right} is too large")
        if operator == "*" and _too_long(left, right):
            raise SecurityError(f"a sequence longer than {MAX_SEQUENCE} is not allowed")
        return super().call_binop(context, operator, left, right)


def _too_long(left: Any, right: Any) -> bool:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(times, int):
            return len(sequence) * times > MAX_SEQUENCE
    return False


def _environment(*, autoescape: bool) -> _MessageEnvironment:
    env = _MessageEnvironment(undefined=_Undefined, autoescape=autoescape, auto_reload=False)
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in SAFE_BUILTIN_FILTERS} | FILTERS
    return env


TEXT_ENV = _environment(autoescape=False)
HTML_ENV = _environment(autoescape=True)


@dataclass(frozen=True)
class RenderedMessage:
    """One channel's message for one member; ``body`` is the push body, the signed SMS or the
    email's text part."""

    template_id: str
    channel: str
    locale: str
    body: str
    subject: str | None = None
    title: str | None = None
    html: str | None = None
    segments: SegmentCount | None = None


@dataclass(frozen=True)
class Audience:
    """Who a message is rendered for: locale and zone (the program's defaults when unknown)."""

    locale: str | None
    timezone: str | None


def pick_locale(requested: str | None, available: Collection[str], default: str) -> str:
    """The member's locale, else one of its language, else the program's default."""
    if requested is not None and requested in available:
        return requested
    if requested:
        language = re.split(r"[-_]", requested)[0]
        for code in available:
            if code == language or code.split("-")[0] == language:
                return code
    return default if default in available else next(iter(available))


class TemplateCatalog:
    """Compiled texts of one program's templates, compiled on first use and kept."""

    def __init__(self, templates: Mapping[str, TemplateFile], *, default_locale: str) -> None:
        self._templates = templates
        self.default_locale = default_locale
        self._compiled: dict[tuple[str, str, str, str], Template] = {}
        self._texts: dict[tuple[str, str], dict[str, dict[str, str]]] = {}

    def template(self, template_id: str) -> TemplateFile:
        found = self._templates.get(template_id)
        if found is None:
            raise TemplateNotFound(template_id)
        return found

    def texts(self, template_id: str, channel: str) -> dict[str, dict[str, str]]:
        """Field name → locale → text, for one channel of a template."""
        key = (template_id, channel)
        found = self._texts.get(key)
        if found is None:
            content = getattr(self.template(template_id), channel, None)
            if content is None:
                raise TemplateNotFound(template_id, channel)
            fields = content.model_dump(exclude_none=True)
            found = self._texts[key] = {name: texts for name, texts in fields.items() if texts}
        return found

    def compiled(self, template_id: str, channel: str, field: str, locale: str) -> Template:
        key = (template_id, channel, field, locale)
        template = self._compiled.get(key)
        if template is None:
            text = self.texts(template_id, channel)[field][locale]
            env = HTML_ENV if field == "html" else TEXT_ENV
            template = self._compiled[key] = env.from_string(text)
        return template


def render_field(
    catalog: TemplateCatalog, key: tuple[str, str, str, str], context: Mapping[str, Any]
) -> str:
    """Render one compiled text; any failure is a TemplateRenderError naming where it was."""
    template_id, channel, field, locale = key
    try:
        return catalog.compiled(*key).render(context)
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        where = f"templates/{template_id}.yaml {channel}.{field}.{locale}"
        reason = str(exc) if not isinstance(exc, SecurityError) else f"unsafe: {exc}"
        raise TemplateRenderError(where, reason, line=_template_line(exc.__traceback__)) from exc


def _template_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_message(
    catalog: TemplateCatalog,
    *,
    template_id: str,
    channel: str,
    variables: Mapping[str, Any],
    audience: Audience,
    currency: str,
    business_timezone: str,
    sms_signature: str = "",
) -> RenderedMessage:
    """Render one channel of a template for one member, in their locale and time zone."""
    texts = catalog.texts(template_id, channel)
    context = {name: as_template_value(value, name) for name, value in variables.items()}
    fields: dict[str, str] = {}
    locales: dict[str, str] = {}
    timezone = audience.timezone or business_timezone
    for field, by_locale in texts.items():
        chosen = locales[field] = pick_locale(audience.locale, by_locale, catalog.default_locale)
        with formatting(locale=chosen, timezone=timezone, currency=currency):
            fields[field] = render_field(catalog, (template_id, channel, field, chosen), context)
    locale = locales.get("body") or locales["text"]
    return _assemble(template_id, channel, locale, fields, sms_signature)


def _assemble(
    template_id: str, channel: str, locale: str, fields: dict[str, str], signature: str
) -> RenderedMessage:
    if channel == "sms":
        body = sign(fields["body"], signature)
        return RenderedMessage(template_id, channel, locale, body, segments=count_segments(body))
    if channel == "push":
        return RenderedMessage(template_id, channel, locale, fields["body"], title=fields["title"])
    text = fields["text"]
    html_part = fields.get("html") or text_to_html(text)
    return RenderedMessage(
        template_id, channel, locale, text, subject=fields["subject"], html=html_part
    )


_URL = re.compile(r"https?://[^\s<>\"']+")


def text_to_html(text: str) -> str:
    """An HTML part for an email written as text only: escaped, links clickable."""
    paragraphs = []
    for block in text.strip().split("\n\n"):
        escaped = html.escape(block)
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    body = "\n".join(paragraphs)
    return f'<!doctype html>\n<html><body style="font-family:sans-serif">\n{body}\n</body></html>\n'


_catalogs: dict[int, tuple[Any, TemplateCatalog]] = {}


def catalog_for(program: Any) -> TemplateCatalog:
    """The compiled templates of a loaded program (compiled once per program object)."""
    entry = _catalogs.get(id(program))
    if entry is None or entry[0] is not program:
        if len(_catalogs) >= 8:
            _catalogs.clear()
        default = program.program_file.program.default_locale
        entry = (program, TemplateCatalog(program.templates, default_locale=default))
        _catalogs[id(program)] = entry
    return entry[1]

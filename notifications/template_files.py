"""The models of ``templates/*.yaml``: one message per channel, one text per locale.

Each text is parsed as a sandboxed Jinja2 template when the program loads, and its variables,
their attributes and its filters are checked against the contract, so a typo is a ``check``
error instead of a blank in a customer's message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Annotated, Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from core.program.program_file import Identifier, LocaleCode
from core.program.yamlsource import Loc, field_error

_MEMBER = frozenset(
    {
        "id",
        "tier",
        "tier_rank",
        "paid_orders",
        "net_spend",
        "qualifying_spend",
        "days_since_registered",
        "days_since_last_order",
        "birthday_month",
        "referrals",
        "referred_by",
        "locale",
        "consents",
        "first_name",
        "tier_name",
        "points_balance",
    }
)
_BASKET = frozenset({"total", "item_count", "categories", "items"})
# Each variable a template may use and the attributes it has (CONTRACT.md, "Template variables").
TEMPLATE_VARIABLES: dict[str, frozenset[str]] = {
    "member": _MEMBER,
    "referrer": _MEMBER,
    "referee": _MEMBER,
    "cart": _BASKET,
    "order": _BASKET,
    "coupon": frozenset({"id", "name", "code", "expires_at", "discount_text"}),
    "points": frozenset({"awarded", "expiring", "expires_at", "expiring_value"}),
    "tier": frozenset({"id", "name", "points_multiplier"}),
    "referral": frozenset({"code", "link"}),
    "unsubscribe_url": frozenset(),
}
TEMPLATE_FILTERS = frozenset({"money", "date", "datetime"})
# Jinja's built-in filters a message may use: formatting only. Left out on purpose: those that
# reach into objects by a name given as text (attr, map, selectattr, groupby…) or format strings.
SAFE_BUILTIN_FILTERS = frozenset(
    {
        "abs", "capitalize", "center", "count", "default", "d", "e", "escape", "first", "int",
        "join", "last", "length", "lower", "replace", "round", "striptags", "sum", "title",
        "trim", "truncate", "upper", "wordcount", "wordwrap",
    }
)  # fmt: skip
CHANNELS = ("push", "sms", "email")
# Inclusion of other templates, which a message file has no use for (and no loader to serve).
_FORBIDDEN_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.Extends,
)

# Only parses and inspects texts; rendering, with the real filters, belongs to notifications.
# No globals (range, lipsum, cycler, joiner, namespace, dict): a message uses its variables only.
_ENVIRONMENT = SandboxedEnvironment()
_ENVIRONMENT.globals.clear()
_ENVIRONMENT.filters = {
    name: _ENVIRONMENT.filters[name] for name in SAFE_BUILTIN_FILTERS
} | dict.fromkeys(TEMPLATE_FILTERS, str)


def _template_error(reason: str, *, line: int | None, hint: str | None = None) -> Exception:
    return PydanticCustomError(
        "template", "{reason}", {"reason": reason, "line": line, "column": None, "hint": hint}
    )


def _did_you_mean(name: str, choices: frozenset[str] | set[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _unknown_filters(tree: nodes.Template) -> Iterator[tuple[str, int, str | None]]:
    known = set(_ENVIRONMENT.filters)
    for node in tree.find_all(nodes.Filter):
        if node.name not in known:
            yield f"unknown filter {node.name!r}", node.lineno, _did_you_mean(node.name, known)


def _unknown_names(tree: nodes.Template) -> Iterator[tuple[str, int, str | None]]:
    declared = meta.find_undeclared_variables(tree)
    for name in sorted(declared - TEMPLATE_VARIABLES.keys()):
        line = next(node.lineno for node in tree.find_all(nodes.Name) if node.name == name)
        yield f"unknown variable {name!r}", line, _did_you_mean(name, set(TEMPLATE_VARIABLES))
    for node in tree.find_all(nodes.Getattr):
        owner = node.node
        if isinstance(owner, nodes.Name) and owner.name in declared & TEMPLATE_VARIABLES.keys():
            attributes = TEMPLATE_VARIABLES[owner.name]
            if node.attr not in attributes:
                yield (
                    f"{owner.name} has no {node.attr!r}",
                    node.lineno,
                    _did_you_mean(node.attr, attributes),
                )


def _unsafe_constructs(tree: nodes.Template) -> Iterator[tuple[str, int, str | None]]:
    """What server-side template injection needs: private attributes, calls, other templates."""
    hint = "a message may only show its variables, their fields and filters"
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Name)):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            yield f"private attribute {node.attr!r} is not allowed", node.lineno, hint
        elif isinstance(node, nodes.Getitem) and _private_key(node.arg):
            yield "private attribute lookups are not allowed", node.lineno, hint
        elif isinstance(node, nodes.Call):
            yield "calling functions or methods is not allowed", node.lineno, hint
        elif isinstance(node, nodes.Name) and node.name == "self":
            yield "unknown variable 'self'", node.lineno, hint
    for forbidden in tree.find_all(_FORBIDDEN_NODES):
        yield "a message cannot include, import or extend templates", forbidden.lineno, hint


def _private_key(arg: nodes.Node) -> bool:
    return isinstance(arg, nodes.Const) and isinstance(arg.value, str) and arg.value[:1] == "_"


def _check_template(text: str) -> str:
    try:
        tree = _ENVIRONMENT.parse(text)
    except TemplateSyntaxError as exc:
        raise _template_error(
            f"template syntax error on line {exc.lineno} of the text: {exc.message}",
            line=exc.lineno,
        ) from None
    for reason, line, hint in _unsafe_constructs(tree):
        raise _template_error(reason, line=line, hint=hint)
    for reason, line, hint in _unknown_filters(tree):
        raise _template_error(reason, line=line, hint=hint)
    try:
        for reason, line, hint in _unknown_names(tree):
            raise _template_error(reason, line=line, hint=hint)
    except TemplateSyntaxError as exc:  # an unknown test (`is foo`) is found only here
        raise _template_error(exc.message or "invalid template", line=exc.lineno) from None
    return text


TemplateText = Annotated[str, AfterValidator(_check_template)]
LocalizedTemplate = Annotated[
    dict[LocaleCode, TemplateText],
    Field(min_length=1, description="one Jinja2 text per locale"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PushContent(_Strict):
    title: LocalizedTemplate
    body: LocalizedTemplate


class SmsContent(_Strict):
    body: LocalizedTemplate


class EmailContent(_Strict):
    subject: LocalizedTemplate
    text: LocalizedTemplate
    html: LocalizedTemplate | None = None


class TemplateFile(_Strict):
    """templates/<id>.yaml."""

    id: Identifier
    push: PushContent | None = None
    sms: SmsContent | None = None
    email: EmailContent | None = None

    @model_validator(mode="after")
    def _some_channel(self) -> TemplateFile:
        if not self.channels:
            raise field_error("a template needs at least one channel: push, sms or email")
        return self

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(channel for channel in CHANNELS if getattr(self, channel) is not None)

    def texts(self) -> Iterator[tuple[Loc, dict[str, str]]]:
        """Every localized field with its location, such as ``('push', 'title')``."""
        for channel in self.channels:
            content: Any = getattr(self, channel)
            for field_name in type(content).model_fields:
                texts = getattr(content, field_name)
                if texts is not None:
                    yield (channel, field_name), texts

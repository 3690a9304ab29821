"""A schedule's ``audience:`` as SQL: one statement per member range instead of a Python loop.

The CEL text is parsed with :mod:`core.cel.parse` and each part becomes SQL over ``members``
and per-member aggregates of ``orders``/``refunds`` and of loyalty's settled ``referrals``,
meaning exactly what :func:`core.cel.variables.member_variables` computes (its table says what
each field is). CEL's errors are SQL's NULL: an ordering comparison with a null field
(``member.days_since_last_order <= 30`` for a member who never ordered) is an error in CEL and
NULL in SQL, and ``&&``, ``||``, ``!`` absorb both the same way (``false && error`` is false).
So each member comes out TRUE (in the audience), FALSE (not) or NULL (decided in Python).

Translated: ``&&``, ``||``, ``!``, ``?:``, ``true``/``false``, ``now.*`` (literals of the
moment), and comparisons (``== != < <= > >=``, ``in [literals]``) of a literal with
``member.id``, ``paid_orders``, ``net_spend``, ``qualifying_spend``, ``days_since_registered``,
``days_since_last_order``, ``birthday_month``, ``referrals``, ``locale``, ``referred_by`` (the
strings with ``==``, ``!=``, ``in`` only) and ``consents.*``. Not translated: ``member.tier``
and ``tier_rank`` (loyalty exposes no SQL for the tier held at a moment), functions, macros,
arithmetic. With ``partial=True`` such a part becomes NULL: TRUE and FALSE stay certain, and the
members left NULL are evaluated in Python by :func:`audience_member_ids`.

Money is compared as CEL does, as a double: PostgreSQL casts the exact sum to float8 (the
nearest double, as ``float(Decimal)``), SQLite divides its integer cents by 100.0 (the same).
Refunds are read through their member's range, as the tier recalculation does: intake only
accepts a refund from the member whose order it refunds.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import cel
from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    extract,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from core.cel import parse as ast
from core.cel.history import fetch_histories
from core.cel.variables import VariableSettings, member_fields_read, member_variables, now_variables
from core.db import UtcDateTime
from core.events.tables import members, orders, refunds

Sql = ColumnElement[Any]
UNKNOWN: Sql = cast(null(), Boolean)  # a part left to Python (and what a CEL error is)
_ORDER = frozenset({"<", "<=", ">", ">="})
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
              "==": operator.eq, "!=": operator.ne}  # fmt: skip
_NUMBER, _STRING, _BOOL, _DAYS = "number", "string", "bool", "days"
# loyalty.variables.read_referrals counts a settled referral with no decided_at as settled then.
_REFERRAL_UNDATED = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Field:
    """A member field in SQL: ``value`` (NULL where CEL's is null), or for days, the moment
    they count from and when the field is not null."""

    kind: str
    value: Sql | None = None
    nullable: bool = False
    moment: Sql | None = None
    present: Sql | None = None


@dataclass(frozen=True)
class _Const:
    value: Any  # a CEL value: int, float, str, bool, None, or a list of those


@dataclass
class _Sources:
    """The aggregates the expression reads, built on first use for one moment and range."""

    at: datetime
    window: timedelta
    cents: bool  # SQLite keeps money as integer cents (core.db.Money)
    low: str | None
    high: str | None
    joined: dict[str, Any] = field(default_factory=dict)

    def within(self, column: Any) -> list[Sql]:
        bounds = [column >= self.low] if self.low is not None else []
        return bounds + ([column < self.high] if self.high is not None else [])

    def money(self, column: Any) -> Any:
        return type_coerce(column, BigInteger) if self.cents else column

    def spend(self) -> Any:
        if "spend" not in self.joined:
            self.joined["spend"] = self._spend()
        return self.joined["spend"].c

    def _spend(self) -> Any:
        refunded = (
            select(refunds.c.order_id, func.sum(self.money(refunds.c.amount)).label("amount"))
            .where(refunds.c.refunded_at <= self.at, *self.within(refunds.c.member_id))
            .group_by(refunds.c.order_id)
            .subquery("refunded")
        )
        owed = self.money(orders.c.total) - func.coalesce(refunded.c.amount, 0)
        net = case((owed > 0, owed), else_=0)  # an order never counts below zero
        recent = orders.c.paid_at > self.at - self.window
        return (
            select(
                orders.c.member_id,
                func.count().label("paid_orders"),
                func.max(orders.c.paid_at).label("last_order_at"),
                func.sum(net).label("net_spend"),
                func.sum(case((recent, net), else_=0)).label("qualifying_spend"),
            )
            .select_from(orders.outerjoin(refunded, refunded.c.order_id == orders.c.order_id))
            .where(orders.c.paid_at <= self.at, *self.within(orders.c.member_id))
            .group_by(orders.c.member_id)
            .subquery("spend")
        )

    def referrals(self) -> Any:
        from loyalty.tables import referrals  # a count loyalty.variables reads the same way

        if "referrals" not in self.joined:
            settled = referrals.c.decided_at <= self.at
            if self.at >= _REFERRAL_UNDATED:
                settled = or_(settled, referrals.c.decided_at.is_(None))
            self.joined["referrals"] = (
                select(referrals.c.referrer_id.label("member_id"), func.count().label("settled"))
                .where(
                    referrals.c.status == "settled", settled, *self.within(referrals.c.referrer_id)
                )
                .group_by(referrals.c.referrer_id)
                .subquery("settled_referrals")
            )
        return self.joined["referrals"].c

    def amount(self, total: Any) -> Sql:
        """A money sum as the double CEL compares."""
        if self.cents:
            return cast(func.coalesce(total, 0), Float) / 100.0
        return cast(func.coalesce(total, 0), Float)


def _member_field(name: str, sources: _Sources) -> _Field | None:
    """A ``member`` field as SQL, or None where it is not translated (tier, tier_rank)."""
    if name in ("paid_orders", "net_spend", "qualifying_spend", "days_since_last_order"):
        spend = sources.spend()
        if name == "paid_orders":
            return _Field(_NUMBER, func.coalesce(spend.paid_orders, 0))
        if name == "days_since_last_order":
            last = spend.last_order_at
            return _Field(_DAYS, moment=last, present=last.is_not(None))
        return _Field(_NUMBER, sources.amount(spend[name]))
    if name == "days_since_registered":
        registered = members.c.registered_at
        return _Field(_DAYS, moment=registered, present=registered <= sources.at)
    if name == "referrals":
        return _Field(_NUMBER, func.coalesce(sources.referrals().settled, 0))
    if name == "birthday_month":
        return _Field(_NUMBER, cast(extract("month", members.c.birthday), Integer), True)
    if name in ("locale", "referred_by"):  # an empty profile value is null in CEL
        return _Field(_STRING, func.nullif(members.c[name], ""), True)
    if name == "id":
        return _Field(_STRING, members.c.member_id)
    if name.startswith("consents.") and name[9:] in ("email", "sms", "push"):
        return _Field(_BOOL, func.coalesce(members.c[f"consent_{name[9:]}"], false()))
    return None


@dataclass
class _Translator:
    sources: _Sources
    now: dict[str, int]
    complete: bool = True  # no part left to Python
    decided: bool = False  # some part is SQL (else there is nothing to translate)

    def unknown(self) -> Sql:
        self.complete = False
        return UNKNOWN

    def condition(self, node: ast.Node) -> Sql:
        """A boolean part: TRUE, FALSE, or NULL (a CEL error, or left to Python)."""
        if isinstance(node, ast.Binary) and node.op in ("&&", "||"):
            join = and_ if node.op == "&&" else or_
            return join(self.condition(node.left), self.condition(node.right))
        if isinstance(node, ast.Unary) and node.op == "!":
            return not_(self.condition(node.operand))
        if isinstance(node, ast.Conditional):
            test = self.condition(node.condition)
            then, otherwise = self.condition(node.then), self.condition(node.otherwise)
            return case((test, then), (not_(test), otherwise), else_=UNKNOWN)
        if isinstance(node, ast.Binary) and (node.op in _FLIP or node.op == "in"):
            compared = self.comparison(node)
        else:
            compared = self.boolean(self.value(node))
        self.decided = self.decided or compared is not UNKNOWN
        return compared

    def boolean(self, value: _Field | _Const | None) -> Sql:
        if isinstance(value, _Const) and isinstance(value.value, bool):
            return true() if value.value else false()
        if isinstance(value, _Field) and value.kind == _BOOL and value.value is not None:
            return value.value
        return self.unknown()

    def value(self, node: ast.Node) -> _Field | _Const | None:
        if isinstance(node, ast.Literal):
            return _literal(node)
        if isinstance(node, ast.Unary) and node.op == "-":
            inner = self.value(node.operand)
            if isinstance(inner, _Const) and _is_number(inner.value):
                return _Const(-inner.value)
            return None
        if isinstance(node, ast.ListExpr):
            items = [self.value(item) for item in node.items]
            if all(isinstance(item, _Const) for item in items):
                return _Const([item.value for item in items])  # type: ignore[union-attr]
            return None
        path = _path(node)
        if path and path[0] == "now" and len(path) == 2 and path[1] in self.now:
            return _Const(self.now[path[1]])
        if path and path[0] == "member" and len(path) in (2, 3):
            return _member_field(".".join(path[1:]), self.sources)
        return None

    def comparison(self, node: ast.Binary) -> Sql:
        left, right = self.value(node.left), self.value(node.right)
        if node.op == "in":
            if isinstance(left, _Field) and isinstance(right, _Const):
                return self.membership(left, right.value)
            if isinstance(left, _Const) and isinstance(right, _Const):
                return _evaluate("a in b", left.value, right.value)
            return self.unknown()
        if isinstance(left, _Const) and isinstance(right, _Field):
            left, right, op = right, left, _FLIP[node.op]
        else:
            op = node.op
        if isinstance(left, _Const) and isinstance(right, _Const):
            return _evaluate(f"a {op} b", left.value, right.value)
        if isinstance(left, _Field) and isinstance(right, _Const):
            compared = _compare(left, op, right.value, self.sources.at)
            return self.unknown() if compared is None else compared
        return self.unknown()

    def membership(self, member_field: _Field, items: Any) -> Sql:
        if not isinstance(items, list):
            return self.unknown()
        parts = [_compare(member_field, "==", item, self.sources.at) for item in items]
        known = [part for part in parts if part is not None]
        return or_(false(), *known) if len(known) == len(parts) else self.unknown()


def _literal(node: ast.Literal) -> _Const | None:
    if node.kind in ("bool", "null"):
        return _Const(node.value)
    if node.kind not in ("int", "uint", "double", "string"):
        return None  # bytes
    try:
        return _Const(cel.compile(node.value).execute({}))  # the library's own reading of it
    except Exception:  # out of range (9223372036854775808): left to the library
        return None


def _path(node: ast.Node) -> list[str]:
    """``member.consents.email`` → ["member", "consents", "email"]; [] for anything else."""
    if isinstance(node, ast.Ident):
        return [node.name]
    if isinstance(node, ast.Select):
        head = _path(node.target)
        return [*head, node.field] if head else []
    return []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _evaluate(source: str, left: Any, right: Any) -> Sql:
    """A comparison of two literals, decided by the CEL library itself."""
    try:
        result = cel.compile(source).execute({"a": left, "b": right})
    except Exception:
        return UNKNOWN
    return true() if result is True else false() if result is False else UNKNOWN


def _compare(member_field: _Field, op: str, value: Any, at: datetime) -> Sql | None:
    """``field op literal``, None when it is not translated (mixed kinds, string order …)."""
    if value is None:
        if op not in ("==", "!="):
            return None
        present = member_field.present if member_field.kind == _DAYS else None
        if present is None:
            column = member_field.value
            assert column is not None
            present = column.is_not(None) if member_field.nullable else true()
        return not_(present) if op == "==" else present
    if _is_number(value) and not math.isfinite(value):
        return None
    if member_field.kind == _DAYS:
        return _days(member_field, op, value, at) if _is_number(value) else None
    expected = {_NUMBER: _is_number, _STRING: lambda v: isinstance(v, str),
                _BOOL: lambda v: isinstance(v, bool)}[member_field.kind]  # fmt: skip
    if not expected(value) or (op in _ORDER and member_field.kind != _NUMBER):
        return None
    column = member_field.value
    assert column is not None
    bound = literal(value, Float) if isinstance(value, float) else literal(value)
    compared: Sql = _OPERATORS[op](column, bound)
    if member_field.nullable and op in ("==", "!="):  # null == x is false, null != x true
        return func.coalesce(compared, true() if op == "!=" else false())
    return compared


def _days(member_field: _Field, op: str, value: float, at: datetime) -> Sql:
    """Whole days since ``moment`` (``timedelta.days``) against a number, as moments."""
    moment, present = member_field.moment, member_field.present
    assert moment is not None and present is not None

    def at_least(days: int) -> Sql:  # D >= days  ⟺  moment <= at - days
        if days <= 0:
            return true()
        try:
            return moment <= literal(at - timedelta(days=days), UtcDateTime())
        except OverflowError:
            return false()

    low, high = -(-value // 1), value // 1  # ceil and floor
    whole = low == high
    if op in ("==", "!="):
        equal = and_(at_least(int(value)), not_(at_least(int(value) + 1))) if whole else false()
        inside = equal if op == "==" else not_(equal)
        return case((present, inside), else_=true() if op == "!=" else false())
    ordered = {
        ">=": at_least(int(low)),
        ">": at_least(int(high) + 1),
        "<=": not_(at_least(int(high) + 1)),
        "<": not_(at_least(int(low))),
    }[op]
    return case((present, ordered), else_=UNKNOWN)


@dataclass(frozen=True)
class AudienceSql:
    """An audience as SQL: ``condition`` over ``members`` joined with the aggregates it reads
    (:meth:`query`); ``complete`` when no part was left to Python (NULL then means that CEL
    itself fails for the member, and the Python evaluation raises for them too)."""

    condition: Sql
    complete: bool
    sources: _Sources = field(repr=False)

    def query(self) -> Select[Any]:
        """``(member_id, decided)`` of the range's registered members who are not certainly
        out: ``decided`` is true for those in, NULL for those Python must decide."""
        joined: Any = members
        for source in self.sources.joined.values():
            joined = joined.outerjoin(source, source.c.member_id == members.c.member_id)
        return (
            select(members.c.member_id, self.condition.label("decided"))
            .select_from(joined)
            .where(
                members.c.registered_at.is_not(None),
                *self.sources.within(members.c.member_id),
                self.condition.is_not(false()),
            )
            .order_by(members.c.member_id)
        )


def translate_audience(
    source: str,
    *,
    program: Any,
    now: datetime,
    dialect: str,
    low: str | None = None,
    high: str | None = None,
    partial: bool = False,
) -> AudienceSql | None:
    """The audience over members ``low <= member_id < high`` as of ``now``; None when a part
    is not translatable (``partial``: when none is), or the text is not parsed."""
    try:
        tree = ast.parse(source)
    except (ast.Unsupported, RecursionError):
        return None
    settings = VariableSettings.from_program(program)
    sources = _Sources(now, settings.window, dialect == "sqlite", low, high)
    translator = _Translator(sources, now_variables(now, settings.zone))
    condition = translator.condition(tree)
    if not translator.decided or not (translator.complete or partial):
        return None
    return AudienceSql(condition, translator.complete, sources)


def audience_member_ids(
    conn: Connection,
    campaign: Any,
    *,
    program: Any,
    now: datetime,
    low: str | None = None,
    high: str | None = None,
) -> list[str] | None:
    """The ids, in order, of the registered members ``low <= member_id < high`` in a schedule
    campaign's audience now (all of them without an ``audience:``), as
    :func:`campaigns.scans.audience_members` would choose them; None when nothing of the
    audience is translatable (the caller evaluates it in Python). Members the SQL leaves
    undecided are evaluated here in Python, one batch for the range."""
    schedule = campaign.trigger.schedule
    assert schedule is not None, f"campaign {campaign.id!r} has no schedule trigger"
    expression = schedule.audience
    if expression is None:
        translated: AudienceSql | None = AudienceSql(
            true(), True, _Sources(now, timedelta(0), False, low, high)
        )
    else:
        translated = translate_audience(
            expression.source, program=program, now=now, dialect=conn.dialect.name,
            low=low, high=high, partial=True,
        )  # fmt: skip
    if translated is None:
        return None
    rows = conn.execute(translated.query()).all()
    undecided = [member_id for member_id, decided in rows if decided is None]
    chosen = [member_id for member_id, decided in rows if decided is not None]
    if undecided:
        chosen += _evaluate_in_python(conn, expression, undecided, program=program, now=now)
    return sorted(chosen)


def _evaluate_in_python(
    conn: Connection, expression: Any, member_ids: Sequence[str], *, program: Any, now: datetime
) -> list[str]:
    """The members whose audience is true, by the CEL library (raises ExpressionError where
    it fails for a member, as the Python path of the scan does)."""
    settings = VariableSettings.from_program(program)
    fields = member_fields_read([expression.source])
    variables: dict[str, Any] = {"now": now_variables(now, settings.zone)}
    histories = fetch_histories(conn, member_ids, program=program, fields=fields)
    chosen = []
    for member_id, history in histories.items():
        variables["member"] = member_variables(history, settings, at=now, fields=fields)
        if expression.is_true(variables):
            chosen.append(member_id)
    return chosen

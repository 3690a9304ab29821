"""Conditions that can never be true: an audience or a ``when:`` no member will ever match.

An interval analysis over the syntax tree of :mod:`core.cel.parse`, enough for the mistakes
people make: a constant (``false``, ``1 > 2``); a comparison a field can never satisfy (counts
are never negative: ``member.paid_orders < 0``; ``member.birthday_month`` is 1 to 12); and, in a
conjunction (``&&``), comparisons of one field with literals that contradict each other
(``member.paid_orders >= 3 && member.paid_orders < 2``, ``member.tier == "a" && member.tier ==
"b"``). A disjunction (``||``) is never true only if each side is. Anything else may be true:
the analysis only says "never" when it is sure.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, replace

from core.cel.parse import Binary, Ident, ListExpr, Literal, Node, Select, Unary, Unsupported, parse
from core.cel.types import DOUBLE, INT, MEMBER, NOW, STRING

INF = math.inf
# What a field can hold at all (core.cel.variables): counts and days are never negative.
BOUNDS: dict[str, tuple[float, float]] = {
    "member.tier_rank": (-1, INF),
    "member.paid_orders": (0, INF),
    "member.net_spend": (0, INF),
    "member.qualifying_spend": (0, INF),
    "member.days_since_registered": (0, INF),
    "member.days_since_last_order": (0, INF),
    "member.birthday_month": (1, 12),
    "member.referrals": (0, INF),
    "now.month": (1, 12),
    "now.day": (1, 31),
    "now.weekday": (0, 6),
    "now.hour": (0, 23),
}
_TYPES = {f"{obj.name}.{name}": kind for obj in (MEMBER, NOW) for name, kind in obj.fields.items()}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class NeverTrue:
    """Why a condition is never true, and the offset of the part that makes it so."""

    at: int
    reason: str


def why_never_true(source: str) -> NeverTrue | None:
    """Why the CEL condition ``source`` can never be true; None when it may be."""
    try:
        return _never(parse(source))
    except (Unsupported, RecursionError):
        return None


@dataclass(frozen=True)
class _Values:
    """What one field may still hold: an interval (numbers) or a set of strings."""

    low: float = -INF
    high: float = INF
    integer: bool = False
    only: frozenset[object] | None = None
    never: frozenset[object] = frozenset()
    said: tuple[str, ...] = ()  # the comparisons that narrowed it, as written

    def narrow(self, op: str, value: object) -> _Values:
        if op == "!=":
            return replace(self, never=self.never | {value})
        if op in ("==", "in"):
            allowed = value if isinstance(value, frozenset) else frozenset({value})
            narrowed = replace(self, only=allowed if self.only is None else self.only & allowed)
            return narrowed._narrow_range("==", value) if op == "==" else narrowed
        return self._narrow_range(op, value)

    def _narrow_range(self, op: str, value: object) -> _Values:
        if not isinstance(value, int | float):
            return self
        low, high = self.low, self.high
        if op in ("==", ">", ">="):
            low = max(low, _past(value, op == ">", up=True, integer=self.integer))
        if op in ("==", "<", "<="):
            high = min(high, _past(value, op == "<", up=False, integer=self.integer))
        return replace(self, low=low, high=high)

    @property
    def empty(self) -> bool:
        if self.only is not None and not (self.only - self.never):
            return True
        return self.low > self.high or (self.low == self.high and self.low in self.never)


def _past(value: float, strict: bool, *, up: bool, integer: bool) -> float:
    """The nearest value a field may hold beyond a bound (``> 2`` on an int: 3)."""
    if integer:
        whole = math.floor(value) if up else math.ceil(value)
        return whole + (1 if up else -1) if strict or whole != value else whole
    return math.nextafter(value, INF if up else -INF) if strict else value


def _never(node: Node) -> NeverTrue | None:
    if isinstance(node, Binary) and node.op == "||":
        left = _never(node.left)
        right = _never(node.right) if left else None
        if left and right:
            return NeverTrue(left.at, f"no side of || can be true: {left.reason}; {right.reason}")
        return None
    values: dict[str, _Values] = {}
    for part in _conjuncts(node):
        found = _never_by_itself(part)
        if found:
            return found
        compared = _comparison(part)
        if compared is None:
            continue
        path, op, value, text = compared
        before = values.get(path) or _start_values(path)
        after = replace(before.narrow(op, value), said=(*before.said, text))
        if after.empty:
            return NeverTrue(_start(part), _contradiction(path, before, op, value, text))
        values[path] = after
    return None


def _never_by_itself(part: Node) -> NeverTrue | None:
    """A part of a conjunction that is false whatever the member: a constant, or an || of such."""
    if isinstance(part, Binary) and part.op == "||":
        return _never(part)
    if _is_bool(part, False) or (
        isinstance(part, Unary) and part.op == "!" and _is_bool(part.operand, True)
    ):
        return NeverTrue(part.at, f"the constant {_text(part)} is never true")
    if isinstance(part, Binary) and part.op in _FLIPPED:
        left, right = _literal(part.left), _literal(part.right)
        if left is not None and right is not None and _holds(left, part.op, right) is False:
            return NeverTrue(_start(part), f"{_text(part)} is always false")
    return None


def _is_bool(node: Node, value: bool) -> bool:
    return isinstance(node, Literal) and node.kind == "bool" and node.value is value


def _holds(left: object, op: str, right: object) -> bool | None:
    """``left op right`` for two literals of one kind (None for a number against a string)."""
    if isinstance(left, str) != isinstance(right, str):
        return None
    compare = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return bool(compare[op](left, right))


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, Binary) and node.op == "&&":
        return [*_conjuncts(node.left), *_conjuncts(node.right)]
    return [node]


def _comparison(part: Node) -> tuple[str, str, object, str] | None:
    """``member.x <op> literal`` (either way round) on a field of a known type."""
    if not isinstance(part, Binary) or part.op not in (*_FLIPPED, "in"):
        return None
    path, value, op = _path(part.left), _literal(part.right), part.op
    if path is None and op != "in":
        path, value, op = _path(part.right), _literal(part.left), _FLIPPED[op]
    if op == "in":
        value = _string_list(part.right)
    if path not in _TYPES or value is None or not _fits(_TYPES[path], value):
        return None
    return path, op, value, _text(part)


def _fits(kind: object, value: object) -> bool:
    if kind == STRING:
        return isinstance(value, str | frozenset)
    return kind in (INT, DOUBLE) and isinstance(value, int | float)


def _start_values(path: str) -> _Values:
    low, high = BOUNDS.get(path, (-INF, INF))
    return _Values(low=low, high=high, integer=_TYPES.get(path) == INT)


def _contradiction(path: str, before: _Values, op: str, value: object, text: str) -> str:
    if before.said:
        return f"{text} can never hold together with {' && '.join(before.said)}"
    if before.integer and _Values(integer=True).narrow(op, value).empty:
        return f"{path} is a whole number, so {text} is never true"
    if path not in BOUNDS:
        return f"{text} is never true"
    low, high = BOUNDS[path]
    can = f"never below {low:g}" if high == INF else f"always {low:g} to {high:g}"
    return f"{path} is {can}, so {text} is never true"


def _path(node: Node) -> str | None:
    if isinstance(node, Ident):
        return node.name
    if isinstance(node, Select):
        target = _path(node.target)
        return f"{target}.{node.field}" if target else None
    return None


def _literal(node: Node) -> object | None:
    """The value of a number or string literal (``-3`` too); None for anything else."""
    if isinstance(node, Unary) and node.op == "-":
        value = _literal(node.operand)
        return -value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if not isinstance(node, Literal):
        return None
    try:
        if node.kind in ("int", "uint"):
            return int(str(node.value).rstrip("uU"), 0)
        if node.kind == "double":
            return float(str(node.value))
        if node.kind == "string":
            value = ast.literal_eval(str(node.value))
            return value if isinstance(value, str) else None
    except (ValueError, SyntaxError):
        return None
    return None


def _string_list(node: Node) -> frozenset[object] | None:
    if not isinstance(node, ListExpr):
        return None
    items = [_literal(item) for item in node.items]
    return frozenset(items) if all(isinstance(item, str) for item in items) else None


def _start(node: Node) -> int:
    """The offset of a node's first character (a Binary's own offset is its operator's)."""
    if isinstance(node, Binary):
        return _start(node.left)
    if isinstance(node, Select):
        return _start(node.target)
    return node.at


def _text(node: Node) -> str:
    if isinstance(node, Binary):
        return f"{_text(node.left)} {node.op} {_text(node.right)}"
    if isinstance(node, Unary):
        return f"{node.op}{_text(node.operand)}"
    if isinstance(node, Literal):
        return str(node.value).lower() if node.kind == "bool" else str(node.value)
    if isinstance(node, ListExpr):
        return f"[{', '.join(_text(item) for item in node.items)}]"
    return _path(node) or "…"

"""The static half of ``check`` for CEL: every field selected exists, operators get the types they
take, and a condition is a boolean.

:func:`check_types` walks the syntax tree of :mod:`core.cel.parse` against the variables of a
:class:`~core.cel.types.Scope` and returns the result type, the field paths read and the
problems found (each at an offset of the text). Types it cannot know (``dyn``, functions it does
not describe) are let through: evaluating against sample members (:mod:`core.cel.samples`)
checks those.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.cel.parse import (
    Binary,
    Call,
    Conditional,
    Ident,
    Index,
    ListExpr,
    Literal,
    MapExpr,
    Node,
    Select,
    Unary,
)
from core.cel.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    NUMBERS,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    ListOf,
    MapOf,
    Obj,
    Prim,
    Scope,
)
from core.expressions import CEL_VARIABLES

_LITERALS = {"bool": BOOL, "int": INT, "uint": UINT, "double": DOUBLE, "string": STRING}
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_RESULTS: dict[str, CelType] = {
    "size": INT,
    "contains": BOOL,
    "startsWith": BOOL,
    "endsWith": BOOL,
    "matches": BOOL,
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "string": STRING,
    "bool": BOOL,
    "timestamp": TIMESTAMP,
    "has": BOOL,
}
_ORDERED = frozenset({"<", "<=", ">", ">="})
_TIMES = frozenset({TIMESTAMP, DURATION})
_LOGICAL = frozenset({"&&", "||"})


@dataclass(frozen=True)
class Problem:
    """Something wrong in the text: where (offset), what, and the fix when there is one."""

    at: int
    message: str
    hint: str | None = None


@dataclass
class TypeReport:
    """What the walk found: the result type, the fields read, the problems."""

    result: CelType = DYN
    reads: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)


def check_types(tree: Node, scope: Scope) -> TypeReport:
    """Walk ``tree`` with the variables of ``scope``."""
    report = TypeReport()
    report.result = _Walker(report, dict(scope.roots), scope.what).type_of(tree)
    return report


class _Walker:
    def __init__(self, report: TypeReport, names: Mapping[str, CelType], what: str) -> None:
        self.report, self.names, self.what = report, dict(names), what
        self.roots = set(names)  # the scope's variables not shadowed by a macro's own
        self.paths: dict[int, str] = {}  # id(node) -> "member.tier" for selections of variables

    def problem(self, node: Node, message: str, hint: str | None = None) -> CelType:
        self.report.problems.append(Problem(node.at, message, hint))
        return DYN

    def type_of(self, node: Node) -> CelType:
        if isinstance(node, Literal):
            return NULL if node.kind == "null" else _LITERALS.get(node.kind, DYN)
        if isinstance(node, Ident):
            return self.ident(node)
        if isinstance(node, Select):
            return self.select(node, self.type_of(node.target))
        if isinstance(node, Index):
            return self.index(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Unary):
            operand = self.type_of(node.operand)
            if node.op == "!":
                return self.condition(node.operand, operand, "!")
            return operand
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Conditional):
            self.condition(node.condition, self.type_of(node.condition), "? :")
            then, otherwise = self.type_of(node.then), self.type_of(node.otherwise)
            return then if then == otherwise else DYN
        if isinstance(node, ListExpr):
            items = {self.type_of(item) for item in node.items}
            return ListOf(items.pop() if len(items) == 1 else DYN)
        if isinstance(node, MapExpr):
            for entry in node.entries:
                for part in entry:
                    self.type_of(part)
            return MapOf(DYN, DYN)
        return DYN

    def condition(self, node: Node, kind: CelType, op: str) -> CelType:
        """``kind`` must be a boolean where ``op`` needs one; the result is a boolean."""
        if kind not in (BOOL, DYN):
            self.problem(node, f"{op} needs true or false, not {kind}")
        return BOOL

    def ident(self, node: Ident) -> CelType:
        if node.name not in self.names:
            choices = sorted(self.names)
            listed = f"the variables here are {', '.join(choices)}"
            if node.name in CEL_VARIABLES:
                return self.problem(node, f"{node.name!r} is not available in {self.what}", listed)
            hint = _did_you_mean(node.name, choices) or listed
            return self.problem(node, f"unknown variable {node.name!r}", hint)
        if node.name in self.roots:
            self.paths[id(node)] = node.name
        return self.names[node.name]

    def select(self, node: Select, target: CelType) -> CelType:
        if isinstance(target, MapOf):
            return target.value
        if not isinstance(target, Obj):
            if target in (DYN, NULL):
                return DYN
            return self.problem(node, f"{target} has no fields; cannot select {node.field!r}")
        if node.field not in target.fields:
            known = sorted(target.fields)
            hint = _did_you_mean(node.field, known) or f"the fields are {', '.join(known)}"
            return self.problem(node, f"{target.name} has no field {node.field!r}", hint)
        parent = self.paths.get(id(node.target))
        if parent is not None:
            self.paths[id(node)] = f"{parent}.{node.field}"
            self.report.reads.add(self.paths[id(node)])
        return target.fields[node.field]

    def index(self, node: Index) -> CelType:
        target, index = self.type_of(node.target), self.type_of(node.index)
        if isinstance(target, ListOf):
            if index not in (INT, UINT, DYN):
                return self.problem(node.index, f"a list index is an int, not {index}")
            return target.item
        if isinstance(target, MapOf):
            return target.value
        if isinstance(target, Obj):
            return DYN
        return DYN if target == DYN else self.problem(node, f"{target} cannot be indexed")

    def call(self, node: Call) -> CelType:
        if node.target is not None and node.function in _MACROS and node.args:
            return self.macro(node)
        if node.function == "has" and node.target is None:
            for arg in node.args:
                self.type_of(arg)  # the field must exist even though its value may be absent
            return BOOL
        if node.target is not None:
            self.type_of(node.target)
        for arg in node.args:
            self.type_of(arg)
        return _RESULTS.get(node.function, DYN)

    def macro(self, node: Call) -> CelType:
        assert node.target is not None
        collection = self.type_of(node.target)
        variable, body = node.args[0], node.args[-1]
        arity = (2, 3) if node.function == "map" else (2,)  # map(x, filter, transform)
        if not isinstance(variable, Ident) or len(node.args) not in arity:
            return self.problem(node, f"{node.function}() takes a name and an expression")
        if isinstance(collection, Prim) and collection not in (DYN, NULL):
            return self.problem(node, f"{node.function}() needs a list or a map, not {collection}")
        element = _element(collection)
        outer, roots = self.names.get(variable.name), set(self.roots)
        self.names[variable.name] = element
        self.roots.discard(variable.name)
        for condition in node.args[1:-1]:
            self.condition(condition, self.type_of(condition), f"the filter of {node.function}()")
        result = self.type_of(body)
        self.roots = roots
        if outer is None:
            del self.names[variable.name]
        else:
            self.names[variable.name] = outer
        if node.function == "map":
            return ListOf(result)
        if node.function == "filter":
            return collection if isinstance(collection, ListOf) else ListOf(DYN)
        return BOOL

    def logical(self, node: Binary) -> CelType:
        """A chain of ``&&`` / ``||`` (walked without recursion: chains may be long)."""
        sides: list[tuple[Node, str]] = []
        current: Node = node
        while isinstance(current, Binary) and current.op in _LOGICAL:
            sides.append((current.right, current.op))
            current = current.left
        sides.append((current, sides[-1][1]))
        for side, op in reversed(sides):
            self.condition(side, self.type_of(side), f"each side of {op}")
        return BOOL

    def binary(self, node: Binary) -> CelType:
        if node.op in _LOGICAL:
            return self.logical(node)
        left, right = self.type_of(node.left), self.type_of(node.right)
        if node.op in ("==", "!=", "in"):
            return BOOL
        if node.op in _ORDERED:
            if not _comparable(left, right):
                self.problem(node, f"cannot compare {left} with {right} using {node.op}")
            return BOOL
        return self.arithmetic(node, left, right)

    def arithmetic(self, node: Binary, left: CelType, right: CelType) -> CelType:
        if DYN in (left, right):
            return left if right == DYN else right
        if {left, right} & _TIMES:
            return DYN  # timestamp - timestamp is a duration, timestamp + duration a timestamp
        if left != right or (node.op != "+" and left not in NUMBERS):
            hint = "CEL does not convert numbers: write double(x) or int(x)"
            both_numbers = left in NUMBERS and right in NUMBERS
            return self.problem(
                node, f"{left} {node.op} {right} is not defined", hint if both_numbers else None
            )
        if node.op == "+" and not (left in NUMBERS or left == STRING or isinstance(left, ListOf)):
            return self.problem(node, f"{left} + {right} is not defined")
        return left


def _element(collection: CelType) -> CelType:
    """What a macro's variable stands for: a list's items, a map's keys."""
    if isinstance(collection, ListOf):
        return collection.item
    if isinstance(collection, MapOf):
        return collection.key
    return STRING if isinstance(collection, Obj) else DYN


def _comparable(left: CelType, right: CelType) -> bool:
    if DYN in (left, right):
        return True
    if left in NUMBERS and right in NUMBERS:
        return True
    return left == right and left in (STRING, TIMESTAMP, BOOL, BYTES, DURATION)


def _did_you_mean(name: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else None

"""A small parser for CEL, enough for ``check`` to walk an expression's field selections.

The CEL library compiles and runs expressions but exposes no syntax tree and no type checker,
so ``check`` parses the text again here (the library has already accepted its syntax). The
grammar is CEL's, without message construction (``Type{field: …}``) and optional selection
(``.?``): such text raises :class:`Unsupported` and is then only checked by evaluation.
Every node keeps the offset of its first character, for positioned errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class Unsupported(Exception):
    """Raised when the text uses CEL syntax this parser does not know."""


@dataclass(frozen=True)
class Token:
    kind: str  # ident, int, uint, double, string, bytes, op, end
    text: str
    at: int


_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>[rRbB]{0,2}(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
                          |'(?:\\.|[^\\'\n])*'|"(?:\\.|[^\\"\n])*"))
  | (?P<double>(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?))
  | (?P<uint>(?:0[xX][0-9a-fA-F]+|\d+)[uU])
  | (?P<int>0[xX][0-9a-fA-F]+|\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(source):
        found = _TOKEN.match(source, at)
        if found is None or found.lastgroup is None:
            raise Unsupported(f"unexpected character {source[at]!r}")
        kind = found.lastgroup
        if kind == "string" and found.group().lower().startswith(("b", "rb", "br")):
            kind = "bytes"
        if kind != "space":
            tokens.append(Token(kind, found.group(), at))
        at = found.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


# --- the syntax tree ----------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    at: int


@dataclass(frozen=True)
class Literal(Node):
    kind: str  # bool, int, uint, double, string, bytes, null
    value: Any = None


@dataclass(frozen=True)
class Ident(Node):
    name: str


@dataclass(frozen=True)
class Select(Node):
    target: Node
    field: str


@dataclass(frozen=True)
class Call(Node):
    target: Node | None  # the receiver of a method call (``x.size()``), None for ``size(x)``
    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Index(Node):
    target: Node
    index: Node


@dataclass(frozen=True)
class ListExpr(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapExpr(Node):
    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Conditional(Node):
    condition: Node
    then: Node
    otherwise: Node


# --- the parser ---------------------------------------------------------------------------

_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"||"}),
    frozenset({"&&"}),
    frozenset({"==", "!=", "<", "<=", ">", ">=", "in"}),
    frozenset({"+", "-"}),
    frozenset({"*", "/", "%"}),
)
_KEYWORDS = {"true": ("bool", True), "false": ("bool", False), "null": ("null", None)}


def parse(source: str) -> Node:
    """The syntax tree of a CEL expression; raises Unsupported for syntax it does not know."""
    return _Parser(tokenize(source)).whole()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.index = tokens, 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def take(self, *texts: str) -> Token | None:
        token = self.token
        operator = token.kind == "op" or (token.kind == "ident" and token.text == "in")
        if operator and token.text in texts:
            self.index += 1
            return token
        return None

    def expect(self, text: str) -> Token:
        token = self.take(text)
        if token is None:
            raise Unsupported(f"expected {text!r} at offset {self.token.at}")
        return token

    def whole(self) -> Node:
        node = self.expression()
        if self.token.kind != "end":
            raise Unsupported(f"unexpected {self.token.text!r} at offset {self.token.at}")
        return node

    def expression(self) -> Node:
        condition = self.binary(0)
        if self.take("?") is None:
            return condition
        then = self.binary(0)
        self.expect(":")
        return Conditional(condition.at, condition, then, self.expression())

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while (op := self.take(*_LEVELS[level])) is not None:
            node = Binary(op.at, op.text, node, self.binary(level + 1))
        return node

    def unary(self) -> Node:
        op = self.take("!", "-")
        if op is None:
            return self.member()
        return Unary(op.at, op.text, self.unary())

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.take(".") is not None:
                name = self.ident()
                if self.take("(") is not None:
                    node = Call(name.at, node, name.text, self.arguments(")"))
                else:
                    node = Select(name.at, node, name.text)
            elif (bracket := self.take("[")) is not None:
                node = Index(bracket.at, node, self.expression())
                self.expect("]")
            else:
                return node

    def ident(self) -> Token:
        token = self.token
        if token.kind != "ident":
            raise Unsupported(f"expected a name at offset {token.at}")
        self.index += 1
        return token

    def arguments(self, close: str) -> tuple[Node, ...]:
        args: list[Node] = []
        while self.take(close) is None:
            args.append(self.expression())
            if self.take(",") is None:
                self.expect(close)
                break
        return tuple(args)

    def primary(self) -> Node:
        token = self.token
        if token.kind == "ident" and token.text in _KEYWORDS:
            self.index += 1
            return Literal(token.at, *_KEYWORDS[token.text])
        if token.kind == "ident":
            self.index += 1
            if self.take("(") is not None:
                return Call(token.at, None, token.text, self.arguments(")"))
            if self.token.text == "{":
                raise Unsupported("message construction")
            return Ident(token.at, token.text)
        if token.kind in ("int", "uint", "double", "string", "bytes"):
            self.index += 1
            return Literal(token.at, token.kind, token.text)
        return self.group(token)

    def group(self, token: Token) -> Node:
        if self.take("(") is not None:
            node = self.expression()
            self.expect(")")
            return node
        if self.take("[") is not None:
            return ListExpr(token.at, self.arguments("]"))
        if self.take("{") is not None:
            return MapExpr(token.at, self.entries())
        raise Unsupported(f"unexpected {token.text!r} at offset {token.at}")

    def entries(self) -> tuple[tuple[Node, Node], ...]:
        entries: list[tuple[Node, Node]] = []
        while self.take("}") is None:
            key = self.expression()
            self.expect(":")
            entries.append((key, self.expression()))
            if self.take(",") is None:
                self.expect("}")
                break
        return tuple(entries)


def position(source: str, at: int) -> tuple[int, int]:
    """1-based (line, column) of offset ``at`` in ``source``."""
    before = source[:at]
    return before.count("\n") + 1, at - (before.rfind("\n") + 1) + 1

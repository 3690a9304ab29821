"""CEL expressions (`when:`, `audience:`): compiled once when a program loads, evaluated often.

Compilation rejects syntax errors and variables the contract does not define, so a typo such as
``membr.tier`` fails at ``check`` time instead of silently never matching in production. Fields,
types and the variables each place may use are checked once the program's files are read
(:mod:`core.program.cel_check`, with the schema of :mod:`core.cel.types`); the variables
themselves are built by :mod:`core.cel.variables` (docs/cel.md says what each field means).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import cel
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

CEL_VARIABLES: frozenset[str] = frozenset({"member", "event", "order", "cart", "now"})

_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")
# Macros bind a variable of their own (`items.exists(i, i.qty > 1)`); it is not a root variable.
_MACRO_BINDING = re.compile(r"\b(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_EVALUATION_ERRORS = (KeyError, RuntimeError, TypeError, ValueError, ZeroDivisionError)


class ExpressionError(Exception):
    """Raised when a CEL expression does not compile or cannot be evaluated."""

    def __init__(
        self, message: str, *, source: str, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Expression:
    """A compiled CEL expression and the text it came from."""

    source: str
    program: cel.Program = field(repr=False, compare=False)

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate with the given variables; raise ExpressionError naming this expression."""
        try:
            return self.program.execute(dict(variables))
        except KeyError as exc:
            raise ExpressionError(
                f"cannot evaluate {self.source!r}: no value for {exc.args[0]!r}", source=self.source
            ) from exc
        except _EVALUATION_ERRORS as exc:
            raise ExpressionError(
                f"cannot evaluate {self.source!r}: {exc}", source=self.source
            ) from exc

    def is_true(self, variables: Mapping[str, Any]) -> bool:
        """Evaluate a condition; anything but a boolean result is an ExpressionError."""
        result = self.evaluate(variables)
        if not isinstance(result, bool):
            raise ExpressionError(
                f"{self.source!r} gave {result!r}, expected true or false", source=self.source
            )
        return result


def compile_expression(source: str, *, allowed_roots: frozenset[str] = CEL_VARIABLES) -> Expression:
    """Compile CEL text, rejecting syntax errors and variables outside ``allowed_roots``."""
    if not source.strip():
        raise ExpressionError(
            "empty expression; write a condition such as now.day == 18", source=source
        )
    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise _syntax_error(source, str(exc)) from None
    _check_roots(source, program, allowed_roots)
    return Expression(source=source, program=program)


def _syntax_error(source: str, reported: str) -> ExpressionError:
    found = _POSITION.search(reported)
    if found is None:
        return ExpressionError(f"invalid expression {source!r}: {reported}", source=source)
    line, column, detail = int(found[1]), int(found[2]), found[3]
    # The token list after "expecting" is long and rarely helps a marketer.
    detail = detail.split(" expecting ")[0].removeprefix("Syntax error: ")
    where = f"column {column}" if line == 1 else f"line {line}, column {column}"
    return ExpressionError(
        f"syntax error at {where} of {source!r}: {detail}", source=source, line=line, column=column
    )


def _check_roots(source: str, program: cel.Program, allowed: frozenset[str]) -> None:
    bound = set(_MACRO_BINDING.findall(source))
    for name in program.variables():
        if name in allowed or name in bound:
            continue
        line, column = _locate_name(source, name)
        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        suggestion = (
            f", did you mean {close[0]!r}?"
            if close
            else (f"; the variables are {', '.join(sorted(allowed))}")
        )
        raise ExpressionError(
            f"unknown variable {name!r}{suggestion}", source=source, line=line, column=column
        )


def _locate_name(source: str, name: str) -> tuple[int | None, int | None]:
    found = re.search(rf"(?<![\w.]){re.escape(name)}\b", source)
    if found is None:
        return None, None
    before = source[: found.start()]
    return before.count("\n") + 1, found.start() - (before.rfind("\n") + 1) + 1


def _validate(value: Any) -> Expression:
    if isinstance(value, Expression):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "cel_type", "expected a CEL expression as text, got {shown}", {"shown": repr(value)}
        )
    try:
        return compile_expression(value)
    except ExpressionError as exc:
        raise PydanticCustomError(
            "cel", "{reason}", {"reason": exc.message, "line": exc.line, "column": exc.column}
        ) from None


CelExpression = Annotated[
    Expression,
    PlainValidator(_validate),
    PlainSerializer(lambda expression: expression.source, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "description": "a CEL expression over member, event, order, cart and now "
            "(docs/cel.md lists every field and what it means)",
            "examples": ["member.paid_orders >= 1 && now.day == 18"],
        }
    ),
]

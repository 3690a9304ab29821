"""YAML documents that remember where every value was written, and issues positioned in them.

A document is read twice over: ruamel's round-trip nodes keep line and column of each mapping
key, value and sequence item; a plain copy (dict, list, str, int, Decimal, bool) is what the
models validate. A pydantic error ``loc`` is walked back through the nodes to a file position.
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic_core import PydanticCustomError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from core.program.yamlbounds import MAX_DEPTH, SIZE_HINT, BoundedComposer, size_issue

Segment = str | int
Loc = tuple[Segment, ...]
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ProgramIssue:
    """One problem found in a program directory, positioned in the file that has it."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column}"
        parts = [where, self.path] if self.path else [where]
        hint = f" — {self.hint}" if self.hint else ""
        return f"{': '.join(parts)}: {self.message}{hint}"  # severity: shown by the caller

    @property
    def sort_key(self) -> tuple[str, int, int]:
        return (self.file, self.line or 0, self.column or 0)

    @classmethod
    def unpositioned(
        cls, file: str, message: str, *, hint: str | None = None, severity: Severity = "error"
    ) -> ProgramIssue:
        """An issue about a whole file (missing, unreadable)."""
        return cls(file, None, None, "", message, hint, severity)


@dataclass(frozen=True)
class SourceDocument:
    """A parsed YAML file: ``tree`` for positions, ``data`` for validation."""

    file: str
    tree: Any
    data: Any

    def issue(
        self,
        loc: Loc,
        message: str,
        *,
        hint: str | None = None,
        severity: Severity = "error",
        at_key: bool = False,
    ) -> ProgramIssue:
        """An issue at ``loc`` (or the nearest parent written in the file)."""
        spot = locate(self.tree, loc, at_key=at_key)
        path = render_path(spot.path)
        return ProgramIssue(self.file, spot.line, spot.column, path, message, hint, severity)


@dataclass(frozen=True)
class Spot:
    """Where a ``loc`` landed: 1-based position, the path as written, and the node found."""

    line: int
    column: int
    path: Loc
    node: Any
    exact: bool


def parse_document(text: str, *, file: str) -> SourceDocument | ProgramIssue:
    """Parse YAML text; a syntax error, a duplicate key or a document that would expand past
    the bounds of :mod:`core.program.yamlbounds` comes back as a positioned issue."""
    too_large = size_issue(len(text.encode("utf-8", "surrogatepass")))
    if too_large is not None:
        return ProgramIssue.unpositioned(file, too_large, hint=SIZE_HINT)
    yaml = YAML(typ="rt")
    yaml.Composer = BoundedComposer
    yaml.max_depth = MAX_DEPTH
    yaml.preserve_quotes = True  # quoted scalars start one column before their text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReusedAnchorWarning)  # the later anchor wins
            tree = yaml.load(text)
    except MarkedYAMLError as exc:
        return _yaml_issue(exc, file=file)
    except ReaderError as exc:  # a character YAML does not allow, such as NUL
        line, column = _position(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return ProgramIssue(file, line, column, "", f"YAML: {exc.reason} (U+{char:04X})")
    except (YAMLError, ValueError, OverflowError) as exc:  # e.g. a timestamp of month 13
        return ProgramIssue.unpositioned(file, f"YAML: {exc}".replace('"', "'"))
    return SourceDocument(file=file, tree=tree, data=to_plain(tree))


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def _yaml_issue(exc: MarkedYAMLError, *, file: str) -> ProgramIssue:
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or "invalid YAML").replace('"', "'")
    hint = getattr(exc, "hint", None)
    if "duplicate key" in problem:
        hint = "keep one of them"
    elif isinstance(exc, MaxDepthExceededError):
        problem, hint = f"values nested more than {MAX_DEPTH} levels deep", "flatten them"
    if mark is None:
        return ProgramIssue.unpositioned(file, f"YAML: {problem}", hint=hint)
    return ProgramIssue(file, mark.line + 1, mark.column + 1, "", f"YAML: {problem}", hint)


def to_plain(node: Any) -> Any:
    """Copy ruamel nodes into plain Python values; floats become exact Decimals."""
    if isinstance(node, dict):
        return {to_plain(key): to_plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [to_plain(item) for item in node]
    for plain in (bool, int, str):  # bool first: ruamel's booleans are ints too
        if isinstance(node, plain):
            return plain(node)
    if isinstance(node, float):
        return Decimal(str(node))
    if isinstance(node, datetime):
        return datetime.fromisoformat(node.isoformat())
    if isinstance(node, date):
        return date(node.year, node.month, node.day)
    return node


def locate(tree: Any, loc: Loc, *, at_key: bool = False) -> Spot:
    """Walk ``loc`` through the nodes, skipping segments that are not in the file (union tags)."""
    node, line, column, path, exact = tree, *_start_of(tree), [], True
    for index, segment in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, CommentedMap) and segment in node:
            key_at, value_at = node.lc.key(segment), node.lc.value(segment)
            node = node[segment]
            scalar = not isinstance(node, CommentedMap | CommentedSeq)
            line, column = key_at if (last and at_key) or not scalar else value_at
        elif isinstance(node, CommentedSeq) and isinstance(segment, int) and segment < len(node):
            line, column = node.lc.item(segment)
            node = node[segment]
        elif segment == "[key]":
            continue
        elif last and isinstance(node, CommentedMap):  # a missing field: name it in the path
            exact = False
        else:
            continue
        path.append(segment)
    return Spot(line=line + 1, column=column + 1, path=tuple(path), node=node, exact=exact)


def _start_of(tree: Any) -> tuple[int, int]:
    if isinstance(tree, CommentedMap | CommentedSeq) and tree.lc.line is not None:
        return tree.lc.line, tree.lc.col
    return 0, 0


def render_path(path: Loc) -> str:
    """``('coupons', 2, 'eligibility')`` -> ``coupons[2].eligibility``."""
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else f".{segment}"
    return text.lstrip(".")


def position_inside(spot: Spot, *, line: int | None, column: int | None) -> tuple[int, int]:
    """The file position of a (line, column) reported inside the scalar text at ``spot``."""
    node = spot.node
    if not spot.exact or not isinstance(node, str) or line is None:
        return spot.line, spot.column
    if isinstance(node, LiteralScalarString):
        return spot.line + line, spot.column  # a `|` block starts on the line after its key
    if line != 1 or "\n" in node or column is None:
        return spot.line, spot.column
    quoted = isinstance(node, SingleQuotedScalarString | DoubleQuotedScalarString)
    return spot.line, spot.column + column - 1 + int(quoted)


def field_error(reason: str, *, at: Loc = (), hint: str | None = None) -> PydanticCustomError:
    """A validation error for a model validator to raise, positioned ``at`` a child field."""
    return PydanticCustomError("program", "{reason}", {"reason": reason, "at": at, "hint": hint})


# --- pydantic errors in words ---------------------------------------------------------------

_EXPECTED = {
    "int": "a whole number",
    "bool": "true or false",
    "string": "text",
    "dict": "a mapping",
    "model": "a mapping",
    "list": "a list",
    "tuple": "a list",
    "decimal": "a number",
    "datetime": "a date-time such as 2026-11-01T00:00:00+08:00",
}
_PATTERNS = {
    r"^[a-z0-9][a-z0-9_-]*$": "an id of lowercase letters, digits, - and _",
    r"^[A-Z]{3}$": "a 3-letter currency code such as CNY",
    "@": "an email address such as Club <club@example.com>",
    r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2}|-[0-9]{3})?$": "a locale such as zh-CN or en",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def describe_error(kind: str, msg: str, ctx: dict[str, Any], value: Any) -> tuple[str, str | None]:
    """A pydantic error in words a marketer follows: (message, hint)."""
    if "reason" in ctx:  # the project's own errors carry their final wording
        return ctx["reason"], ctx.get("hint")
    if kind == "missing":
        return "required field missing", None
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx["expected"]) or [ctx["expected"].lower()]
        close = difflib.get_close_matches(str(value), choices, n=1)
        return (
            f"expected one of {', '.join(choices)}, got {_shown(value)}",
            f"did you mean {close[0]!r}?" if close else None,
        )
    if kind == "timezone_aware":
        return (
            f"expected a date-time with a UTC offset, got {_shown(value)}",
            "add the offset, such as 2026-11-01T00:00:00+08:00",
        )
    if kind == "string_pattern_mismatch":
        expected = _PATTERNS.get(ctx["pattern"], f"text matching {ctx['pattern']}")
        return f"expected {expected}, got {_shown(value)}", None
    described = _describe_bound(kind, ctx, value) or _describe_type(kind, value)
    return described or (msg.removeprefix("Value error, "), None)


def _describe_bound(kind: str, ctx: dict[str, Any], value: Any) -> tuple[str, None] | None:
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx[key]}, got {_shown(value)}", None
    if kind == "string_too_short":
        return "must not be empty", None
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long", None
    if kind in ("too_short", "too_long"):
        words = "at least" if kind == "too_short" else "at most"
        return f"needs {words} {ctx.get('min_length', ctx.get('max_length'))} item(s)", None
    return None


def _describe_type(kind: str, value: Any) -> tuple[str, None] | None:
    if not kind.endswith(("_type", "_parsing")) and kind != "int_from_float":
        return None
    expected = _EXPECTED.get(kind.split("_")[0])
    return (f"expected {expected}, got {_shown(value)}", None) if expected else None


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)

"""A pydantic validation error as a :class:`ProgramIssue` positioned in its file.

The position is the YAML node the error's location names, or a spot inside a CEL or Jinja text
when the validator says where (``ctx.line``/``ctx.column``). An unknown field gets the closest
known field of the model that holds it as its hint.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from core.program.yamlsource import (
    Loc,
    ProgramIssue,
    Segment,
    SourceDocument,
    describe_error,
    locate,
    position_inside,
)


def issue_for(document: SourceDocument, model: type[BaseModel], error: Any) -> ProgramIssue:
    """A pydantic error as an issue positioned in the file (deep inside CEL or Jinja text)."""
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"]) + tuple(ctx.get("at") or ())
    if error["type"] == "extra_forbidden":
        hint = _field_hint(loc[-1], _allowed_fields(model, loc))
        return document.issue(loc, "unknown field", hint=hint, at_key=True)
    message, hint = describe_error(error["type"], error["msg"], ctx, error.get("input"))
    issue = document.issue(loc, message, hint=hint)
    if ctx.get("line") is None:
        return issue
    spot = locate(document.tree, loc)
    line, column = position_inside(spot, line=ctx["line"], column=ctx.get("column"))
    return replace(issue, line=line, column=column)


def _field_hint(name: Segment, allowed: set[str]) -> str | None:
    close = difflib.get_close_matches(str(name), sorted(allowed), n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"the fields here are {', '.join(sorted(allowed))}" if allowed else None


def _allowed_fields(model: type[BaseModel], loc: Loc) -> set[str]:
    """The field names (aliases first) of the model that holds ``loc[-1]``."""
    candidates: list[Any] = [model]
    for segment in loc[:-1]:
        candidates = [child for tp in candidates for child in _children(tp, segment)]
    models = [tp for candidate in candidates for tp in _options(candidate)]
    return {
        info.alias or name
        for tp in models
        if isinstance(tp, type) and issubclass(tp, BaseModel)
        for name, info in tp.model_fields.items()
    }


def _children(tp: Any, segment: Segment) -> list[Any]:
    found: list[Any] = []
    for option in _options(tp):
        if isinstance(option, type) and issubclass(option, BaseModel):
            if getattr(option, "tag", None) == segment:  # a tagged union member in the loc
                found.append(option)
            found += [
                info.annotation
                for name, info in option.model_fields.items()
                if segment in (name, info.alias)
            ]
        elif get_origin(option) in (list, tuple) and isinstance(segment, int):
            found.append(get_args(option)[0])
        elif get_origin(option) is dict and isinstance(segment, str):
            found.append(get_args(option)[1])
    return found


def _options(tp: Any) -> list[Any]:
    """A type with Annotated, Optional and unions unwrapped into its alternatives."""
    if get_origin(tp) is Annotated:
        return _options(get_args(tp)[0])
    if get_origin(tp) in (Union, UnionType):
        return [option for arg in get_args(tp) for option in _options(arg)]
    return [] if tp is type(None) else [tp]

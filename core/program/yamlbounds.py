"""Bounds on what a program file may make the YAML reader build: size, aliases, nesting.

A few lines of YAML can describe billions of values ("billion laughs": each level an anchored
list of aliases to the level below). The reader would build them all, and so would everything
that walks the data after it. :class:`BoundedComposer` keeps, for every node it composes, how
many values it stands for and how deep it nests once aliases are expanded; that is O(1) per node,
from its children's counts. An alias that would take the document over a bound is refused, at
its position in the file, before anything is constructed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

MAX_FILE_BYTES = 2 * 1024 * 1024  # the largest program file read; the example's are ~10 KB
MAX_ALIASES = 100  # aliases (*name) in one file
MAX_ALIAS_VALUES = 10_000  # values that aliases may add to one file, once expanded
MAX_DEPTH = 64  # levels of nesting, aliases expanded

SIZE_HINT = "split it: each campaign and template has a file of its own"
_ALIAS_HINT = "write the values out, or anchor (&) something smaller and alias (*) it fewer times"


class YAMLBoundExceeded(MarkedYAMLError):
    """Raised when a YAML document would expand past one of this module's bounds."""

    def __init__(self, problem: str, mark: Any, *, hint: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.hint = hint


class BoundedComposer(Composer):
    """ruamel's composer, refusing aliases and nesting beyond this module's bounds."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._shapes: dict[int, tuple[int, int]] = {}  # id(node): (values, depth), expanded
        self._aliases = 0
        self._alias_values = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        node = super().compose_node(parent, index)
        if isinstance(event, AliasEvent):
            self._count_alias(node, event)
        else:
            self._shapes[id(node)] = _shape(node, self._shapes)
        return node

    def _count_alias(self, target: Node, event: AliasEvent) -> None:
        shape = self._shapes.get(id(target))
        if shape is None:  # the anchored value is still being read: it contains this alias
            raise YAMLBoundExceeded(
                f"alias *{event.anchor} is inside the value it refers to",
                event.start_mark,
                hint="an alias can only repeat a value that ends before it",
            )
        values, depth = shape
        self._aliases += 1
        self._alias_values += values
        if self._aliases > MAX_ALIASES:
            problem = f"more than {MAX_ALIASES} aliases (*name) in one file"
        elif self._alias_values > MAX_ALIAS_VALUES:
            problem = f"aliases here would expand to more than {MAX_ALIAS_VALUES:,} values"
        elif self.depth + depth > MAX_DEPTH:
            problem = f"alias *{event.anchor} nests values more than {MAX_DEPTH} levels deep"
        else:
            return
        raise YAMLBoundExceeded(problem, event.start_mark, hint=_ALIAS_HINT)


def _shape(node: Node, shapes: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(values, depth) of a composed node, from its children's (already known) shapes."""
    if isinstance(node, MappingNode):
        children = [shapes[id(part)] for pair in node.value for part in pair]
    elif isinstance(node, SequenceNode):
        children = [shapes[id(item)] for item in node.value]
    else:
        return 1, 1
    return 1 + sum(v for v, _ in children), 1 + max((d for _, d in children), default=0)


def size_issue(size: int) -> str | None:
    """Why a file of ``size`` bytes is refused, or ``None`` when it may be read."""
    if size <= MAX_FILE_BYTES:
        return None
    return (
        f"the file is {size / 1024 / 1024:.1f} MB; program files are at most "
        f"{MAX_FILE_BYTES // 1024 // 1024} MB"
    )


class SourceRefused(ValueError):
    """Raised when a program file is too large, or not a regular file, to be read."""

    def __init__(self, message: str, *, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def read_source(path: Path) -> str:
    """A program file's text, read only if it is a regular file within ``MAX_FILE_BYTES``."""
    if path.exists() and not path.is_file():
        raise SourceRefused("not a regular file", hint="a program file is a .yaml text file")
    with path.open("rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
        problem = size_issue(max(len(data), path.stat().st_size))
    if problem is not None:
        raise SourceRefused(problem, hint=SIZE_HINT)
    return data.decode("utf-8")

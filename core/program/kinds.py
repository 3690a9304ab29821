"""The program file kinds and checks that packages register, so core names none of them.

A program directory holds core's ``program.yaml`` and the files of each package: the coupons
package registers ``coupons.yaml``, notifications ``templates/*.yaml``, campaigns
``campaigns/*.yaml``. Each package's ``program_files`` module, imported by its wiring, calls
:func:`register_file_kind` (the file or folder, its pydantic model, its JSON Schema name and
title, the :class:`~core.program.loader.Program` attribute that holds its models) and may call

* :func:`register_cross_check`: ``(LoadedFiles) -> Iterable[ProgramIssue]``, run on what loaded
  (a name one file uses must exist in another, positioned where it is used);
* :func:`register_expressions`: ``(LoadedFiles) -> Iterable[Site]``, every CEL expression of the
  package's files with the variables its place gives it; core type-checks and evaluates them
  (:mod:`core.program.cel_check`) and checks the tiers they name.

Checks of a loaded program (rendering templates, say) go to ``core.program.check.program_checks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel

from core.cel.types import Scope
from core.expressions import Expression
from core.program.program_file import ProgramFile
from core.program.yamlsource import Loc, ProgramIssue, SourceDocument

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A validated model with the document it came from, for positions."""

    model: M
    document: SourceDocument


@dataclass(frozen=True)
class FileKind:
    """One kind of program file a package owns.

    ``path`` is a file (``coupons.yaml``: required, one model) or a folder (``campaigns``: any
    number of ``<id>.yaml``, each one model, by file name). ``collect`` turns what loaded (the
    file's model, or the folder's models by name) into the value of ``program.<attribute>``;
    by default that is the model, or the dict of models.
    """

    attribute: str
    path: str
    model: type[BaseModel]
    schema_name: str
    title: str
    collect: Callable[[Any], Any] | None = None

    @property
    def is_folder(self) -> bool:
        return not self.path.endswith(".yaml")

    @property
    def shown(self) -> str:
        """The kind as a person reads it in a hint: ``coupons.yaml``, ``campaigns/``."""
        return f"{self.path}/" if self.is_folder else self.path

    def value(self, loaded: Any) -> Any:
        """``program.<attribute>`` from the file's model or the folder's models by name."""
        return self.collect(loaded) if self.collect is not None else loaded


@dataclass(frozen=True)
class Site:
    """One CEL expression, where it is written and the scope it runs in."""

    document: SourceDocument
    loc: Loc
    expression: Expression
    scope: Scope


@dataclass(frozen=True)
class LoadedFiles:
    """Everything that loaded, by kind, plus the names of every file present in each folder
    (loaded or not: a send naming a template whose file has errors is not reported again)."""

    program: Loaded[ProgramFile] | None
    files: Mapping[str, Loaded[Any] | None] = field(default_factory=dict)
    folders: Mapping[str, Mapping[str, Loaded[Any]]] = field(default_factory=dict)
    present: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def file(self, attribute: str, model: type[M]) -> Loaded[M] | None:
        """The file of a one-file kind (``coupons``), None when it did not load."""
        return cast("Loaded[M] | None", self.files.get(attribute))

    def folder(self, attribute: str, model: type[M]) -> Mapping[str, Loaded[M]]:
        """The files of a folder kind (``templates``) that loaded, by name."""
        return cast("Mapping[str, Loaded[M]]", self.folders.get(attribute, {}))

    def names(self, attribute: str) -> frozenset[str]:
        """The name of every file in a folder kind, whether it loaded or not."""
        return self.present.get(attribute, frozenset())


CrossCheck = Callable[[LoadedFiles], Iterable[ProgramIssue]]
ExpressionSites = Callable[[LoadedFiles], Iterable[Site]]

_kinds: dict[str, FileKind] = {}
cross_checks: list[CrossCheck] = []
expression_sites: list[ExpressionSites] = []


def register_file_kind(kind: FileKind) -> None:
    """Add a file kind; registering the same kind again does nothing."""
    known = _kinds.get(kind.attribute)
    if known is not None and known != kind:
        raise ValueError(f"program.{kind.attribute} is already the file kind {known.shown}")
    _kinds[kind.attribute] = kind


def register_cross_check(check: CrossCheck) -> None:
    """Add a check across the files that loaded (once, however often it is registered)."""
    if check not in cross_checks:
        cross_checks.append(check)


def register_expressions(sites: ExpressionSites) -> None:
    """Add a source of CEL expressions to check (once, however often it is registered)."""
    if sites not in expression_sites:
        expression_sites.append(sites)


def file_kinds() -> list[FileKind]:
    """Every registered kind: single files first, then folders, each by path (the order of
    hints and of ``loyalty-engine schema``, whatever order the packages registered in)."""
    return sorted(_kinds.values(), key=lambda kind: (kind.is_folder, kind.path))

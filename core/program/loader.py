"""Reading a program directory into validated models, collecting every issue on the way.

Exceptions::

    ProgramError                  base of this package
    ├── ProgramNotFound           the program directory does not exist
    └── ProgramInvalid            files have errors; ``issues`` lists each, positioned
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from core.program.cel_check import check_expressions
from core.program.crossref import cross_reference
from core.program.kinds import FileKind, Loaded, LoadedFiles, file_kinds
from core.program.model_errors import issue_for
from core.program.program_file import ProgramFile
from core.program.yamlbounds import SourceRefused, read_source
from core.program.yamlsource import ProgramIssue, SourceDocument, parse_document

__all__ = [
    "Program",
    "ProgramError",
    "ProgramInvalid",
    "ProgramIssue",
    "ProgramNotFound",
    "load_program",
    "read_program",
]

PROGRAM_FILE = "program.yaml"

M = TypeVar("M", bound=BaseModel)


class ProgramError(Exception):
    """Raised when a program cannot be loaded; the base of this package's exceptions."""


class ProgramNotFound(ProgramError):
    """Raised when the program directory does not exist."""

    def __init__(self, directory: Path) -> None:
        super().__init__(
            f"no program directory at {directory}; pass --program DIR or set LOYALTY_PROGRAM_DIR"
        )
        self.directory = directory


class ProgramInvalid(ProgramError):
    """Raised when a program directory has errors; ``issues`` holds every one, positioned."""

    def __init__(self, issues: list[ProgramIssue]) -> None:
        errors = [issue for issue in issues if issue.severity == "error"]
        lines = "\n".join(str(issue) for issue in errors)
        super().__init__(f"the program has {len(errors)} error(s):\n{lines}")
        self.issues = issues


@dataclass(frozen=True, init=False)
class Program:
    """A loaded, checked program: program.yaml's model, and each package's files by kind.

    ``program.coupons`` (id → coupon), ``program.campaigns``, ``program.templates`` (file name →
    model): every registered file kind's value (:mod:`core.program.kinds`) is an attribute,
    read from ``parts``. ``dataclasses.replace(program, coupons={...})`` swaps one.
    """

    directory: Path
    program_file: ProgramFile
    parts: Mapping[str, Any]

    def __init__(
        self,
        directory: Path,
        program_file: ProgramFile,
        parts: Mapping[str, Any] | None = None,
        **named: Any,
    ) -> None:
        object.__setattr__(self, "directory", directory)
        object.__setattr__(self, "program_file", program_file)
        object.__setattr__(self, "parts", {**(parts or {}), **named})

    def __getattr__(self, name: str) -> Any:
        parts = self.__dict__.get("parts", {})
        if name in parts:
            return parts[name]
        raise AttributeError(f"a program has no {name!r}; its files: {', '.join(parts)}")


def load_program(directory: Path) -> Program:
    """Load and check a program directory; raise ProgramInvalid listing every error."""
    program, issues = read_program(directory)
    if program is None:
        raise ProgramInvalid(issues)
    return program


def read_program(directory: Path) -> tuple[Program | None, list[ProgramIssue]]:
    """Every issue in the directory, and the program if none of them is an error."""
    if not directory.is_dir():
        raise ProgramNotFound(directory)
    from core.packages import load_packages

    load_packages()  # each package registers its file kinds and checks
    issues: list[ProgramIssue] = []
    kinds = file_kinds()
    program_file = _load_file(directory, PROGRAM_FILE, ProgramFile, issues)
    files = LoadedFiles(
        program=program_file,
        files={
            kind.attribute: _load_file(directory, kind.path, kind.model, issues)
            for kind in kinds
            if not kind.is_folder
        },
        folders={
            kind.attribute: _load_folder(directory, kind.path, kind.model, issues)
            for kind in kinds
            if kind.is_folder
        },
        present={
            kind.attribute: frozenset(path.stem for path in _yaml_files(directory / kind.path))
            for kind in kinds
            if kind.is_folder
        },
    )
    issues += cross_reference(files)
    issues += check_expressions(files)
    issues.sort(key=lambda issue: issue.sort_key)
    failed = any(loaded is None for loaded in files.files.values())
    if program_file is None or failed or any(issue.severity == "error" for issue in issues):
        return None, issues
    return Program(directory, program_file.model, _parts(files, kinds)), issues


def _parts(files: LoadedFiles, kinds: list[FileKind]) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for kind in kinds:
        if kind.is_folder:
            models = {name: loaded.model for name, loaded in files.folders[kind.attribute].items()}
            parts[kind.attribute] = kind.value(models)
        else:
            loaded = files.files[kind.attribute]
            assert loaded is not None
            parts[kind.attribute] = kind.value(loaded.model)
    return parts


def _required_hint() -> str:
    shown = [PROGRAM_FILE, *(kind.shown for kind in file_kinds())]
    return f"a program directory has {', '.join(shown)}"


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def _load_folder(
    directory: Path, folder: str, model: type[M], issues: list[ProgramIssue]
) -> dict[str, Loaded[M]]:
    loaded: dict[str, Loaded[M]] = {}
    for path in sorted((directory / folder).glob("*.yml")):
        issues.append(
            ProgramIssue.unpositioned(
                f"{folder}/{path.name}",
                "ignored: program files end in .yaml",
                hint=f"rename it to {path.stem}.yaml",
                severity="warning",
            )
        )
    for path in _yaml_files(directory / folder):
        item = _load_file(directory, f"{folder}/{path.name}", model, issues)
        if item is not None:
            loaded[path.stem] = item
    return loaded


def _load_file(
    directory: Path, file: str, model: type[M], issues: list[ProgramIssue]
) -> Loaded[M] | None:
    document = _read_document(directory, file, issues)
    if document is None:
        return None
    try:
        validated = model.model_validate(document.data)
    except ValidationError as exc:
        issues += [issue_for(document, model, error) for error in exc.errors()]
        return None
    stem_issue = _check_id_matches_name(document, validated)
    if stem_issue is not None:
        issues.append(stem_issue)
        return None
    return Loaded(model=validated, document=document)


def _read_document(directory: Path, file: str, issues: list[ProgramIssue]) -> SourceDocument | None:
    path = directory / file
    try:
        text = read_source(path)
    except FileNotFoundError:
        issues.append(ProgramIssue.unpositioned(file, "file not found", hint=_required_hint()))
        return None
    except SourceRefused as exc:
        issues.append(ProgramIssue.unpositioned(file, str(exc), hint=exc.hint))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read the file: {exc}"
        issues.append(ProgramIssue.unpositioned(file, message, hint="save it as UTF-8 text"))
        return None
    parsed = parse_document(text, file=file)
    if isinstance(parsed, ProgramIssue):
        issues.append(parsed)
        return None
    return parsed


def _check_id_matches_name(document: SourceDocument, model: BaseModel) -> ProgramIssue | None:
    stem = Path(document.file).stem
    model_id = getattr(model, "id", None)
    if "/" not in document.file or model_id is None or model_id == stem:
        return None
    return document.issue(
        ("id",),
        f"id {model_id!r} does not match the file name {Path(document.file).name!r}",
        hint=f"set id: {stem}, or rename the file to {model_id}.yaml",
    )

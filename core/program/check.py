"""The ``check`` command's logic: every issue in a program directory, without raising for them."""

from __future__ import annotations

from pathlib import Path

from core.program.loader import read_program
from core.program.yamlsource import ProgramIssue


def check_program(directory: Path) -> list[ProgramIssue]:
    """Every issue in the directory, errors and warnings, ordered by file and line; [] is clean.

    Raises ProgramNotFound when the directory does not exist.
    """
    _, issues = read_program(directory)
    return issues


def has_errors(issues: list[ProgramIssue]) -> bool:
    """Whether ``check`` should fail (warnings alone do not fail it)."""
    return any(issue.severity == "error" for issue in issues)

"""The ``check`` command's logic: every issue in a program directory, without raising for them.

Packages add deeper checks of a loaded program (rendering every template in every locale, say)
by appending to :data:`program_checks`; they run only when the files themselves load cleanly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.program.loader import Program, read_program
from core.program.yamlsource import ProgramIssue

program_checks: list[Callable[[Program], list[ProgramIssue]]] = []


def check_program(directory: Path) -> list[ProgramIssue]:
    """Every issue in the directory, errors and warnings, ordered by file and line; [] is clean.

    Raises ProgramNotFound when the directory does not exist.
    """
    from core.packages import load_packages

    load_packages()
    program, issues = read_program(directory)
    if program is not None:
        for extra_check in program_checks:
            issues += extra_check(program)
        issues.sort(key=lambda issue: issue.sort_key)
    return issues


def has_errors(issues: list[ProgramIssue]) -> bool:
    """Whether ``check`` should fail (warnings alone do not fail it)."""
    return any(issue.severity == "error" for issue in issues)

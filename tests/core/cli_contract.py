"""What every command promises, whatever its input: the exit codes and the shape of errors."""

from __future__ import annotations

import json

from typer.testing import Result

from core.cli.app import INTERNAL_ERROR

# Lines a command may print on stderr when it exits 1: its error, or the items it reports
# (program issues, rejected lines, ledger problems, failed retries) each on its own line.
_REPORT_LINES = ("error:", "error ", "warning ", "rejected ", "problem ", "failed ", "… and ")


def assert_clean_exit(args: list[str], result: Result) -> None:
    """Exit 0, 1 or 2; no traceback; exit 1 says what was wrong in lines of its own."""
    shown = f"{args!r} exited {result.exit_code}:\n{result.output}"
    assert result.exit_code != INTERNAL_ERROR, shown
    assert result.exit_code in (0, 1, 2), shown
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), shown
    assert "Traceback" not in result.output and "internal error" not in result.stderr, shown
    if result.exit_code == 1:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        if not lines and "--json" in args:
            json.loads(result.stdout)  # with --json the report itself says what went wrong
            return
        assert lines, shown
        assert all(line.startswith(_REPORT_LINES) or line.startswith(" ") for line in lines), shown
        assert sum(line.startswith("error:") for line in lines) <= 1, shown
    if result.exit_code == 2:
        assert "Error" in result.stderr or "error:" in result.stderr, shown

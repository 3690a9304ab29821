"""The ``loyalty-engine`` command line: thin commands that parse, call a service, print.

Exit codes: 0 ok, 1 user error (bad input, explained on stderr), 2 usage.
"""

from core.cli.app import app, main

__all__ = ["app", "main"]

"""``openapi [--output FILE] [--check]``: the HTTP API's OpenAPI schema, and its committed copy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.cli.output import errors, fail, shown


def openapi(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the schema to FILE instead of printing it."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Exit 1 if FILE (default: docs/openapi.json) is not the schema."
        ),
    ] = False,
) -> None:
    """The OpenAPI 3.1 schema the HTTP API serves at /openapi.json (sorted JSON)."""
    from core.http.openapi import COMMITTED_COPY, copy_difference, schema_text

    text = schema_text()
    if check:
        path = output or COMMITTED_COPY
        wrong = copy_difference(path, text)
        if wrong is not None:
            fail(f"{path} {wrong}; run make openapi (loyalty-engine openapi --output {path})")
        errors.print(f"{shown(path)} is the served schema", soft_wrap=True)
        return
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    errors.print(f"wrote {shown(output)}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(openapi)

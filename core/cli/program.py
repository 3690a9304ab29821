"""``check`` and ``schema``: for marketers writing program files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from core.cli.output import console, errors, fail, print_json, shown
from core.runtime import get_runtime


def check(
    directory: Annotated[
        Path | None, typer.Argument(help="Program directory (default: --program).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print issues as JSON.")] = False,
) -> None:
    """Validate a program directory; every error names file:line, the field and the fix."""
    from core.program.check import check_program
    from core.program.loader import ProgramNotFound

    directory = directory or get_runtime().program_path
    try:
        issues = check_program(directory)
    except ProgramNotFound as exc:
        fail(str(exc))
    bad = [i for i in issues if i.severity == "error"]
    if as_json:
        print_json([{**vars(i), "file": str(i.file)} for i in issues])
    else:
        for issue in issues:
            colour = "red" if issue.severity == "error" else "yellow"
            errors.print(f"[{colour}]{issue.severity}[/] {shown(issue)}", soft_wrap=True)
        if not bad:
            console.print(f"[green]ok[/] {shown(directory)}: program is valid")
    if bad:
        fail(f"{directory}: {len(bad)} error(s) in the program; fix them and check again")


def schema(
    kind: Annotated[
        str | None, typer.Argument(help="program, coupons, campaign or template (default: all).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write <kind>.schema.json files to this folder.")
    ] = None,
) -> None:
    """Print JSON Schema for program files, for editors' YAML language servers."""
    from core.program.schema import json_schemas

    schemas = json_schemas()
    if kind is not None and kind not in schemas:
        raise typer.BadParameter(f"unknown kind {kind!r}; use one of {', '.join(schemas)}")
    chosen = {kind: schemas[kind]} if kind else schemas
    if out is None:
        print_json(chosen[kind] if kind else chosen)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, document in chosen.items():
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(schema)

"""``check``: render every text of every template in every locale with sample data.

Registered in ``core.program.check.program_checks`` by the wiring. A missing variable, a filter
failing on its input or an unsafe construct is an error at the line of the text that has it;
an SMS longer than three segments is a warning.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.program.yamlsource import (
    Loc,
    ProgramIssue,
    SourceDocument,
    locate,
    parse_document,
    position_inside,
)
from notifications.errors import TemplateRenderError
from notifications.formatting import formatting
from notifications.samples import sample_variables
from notifications.segments import MAX_SEGMENTS_WITHOUT_WARNING, count_segments, sign
from notifications.templates import TemplateCatalog, as_template_value, render_field


def check_templates(program: Any) -> list[ProgramIssue]:
    """Every rendering problem of the program's templates, positioned in their files."""
    catalog = TemplateCatalog(
        program.templates, default_locale=program.program_file.program.default_locale
    )
    issues: list[ProgramIssue] = []
    for template_id in sorted(program.templates):
        issues += _check_template(program, catalog, template_id)
    return issues


def _check_template(program: Any, catalog: TemplateCatalog, template_id: str) -> list[ProgramIssue]:
    file = _TemplateSource(program, template_id)
    issues: list[ProgramIssue] = []
    for (channel, field), texts in catalog.template(template_id).texts():
        for locale in texts:
            loc: Loc = (channel, field, locale)
            try:
                text = _render(program, catalog, (template_id, str(channel), str(field), locale))
            except TemplateRenderError as exc:
                issues.append(file.issue(loc, exc.reason, line=exc.line))
                continue
            if channel == "sms":
                issues += _segment_warning(program, file, loc, text)
    return issues


def _render(program: Any, catalog: TemplateCatalog, key: tuple[str, str, str, str]) -> str:
    info = program.program_file.program
    variables = sample_variables(program, key[3])
    context = {name: as_template_value(value, name) for name, value in variables.items()}
    with formatting(locale=key[3], timezone=info.timezone, currency=info.currency):
        return render_field(catalog, key, context)


def _segment_warning(
    program: Any, file: _TemplateSource, loc: Loc, text: str
) -> list[ProgramIssue]:
    signed = sign(text, program.program_file.messaging.sender.sms_signature)
    count = count_segments(signed)
    if count.segments <= MAX_SEGMENTS_WITHOUT_WARNING:
        return []
    message = (
        f"with sample data this SMS is {count.segments} segments "
        f"({count.units} {count.encoding} units, signature included)"
    )
    hint = f"shorten it to at most {MAX_SEGMENTS_WITHOUT_WARNING} segments; each is billed"
    return [file.issue(loc, message, hint=hint, severity="warning")]


class _TemplateSource:
    """templates/<id>.yaml, parsed on the first issue to position it."""

    def __init__(self, program: Any, template_id: str) -> None:
        self.name = f"templates/{template_id}.yaml"
        self.path = program.directory / "templates" / f"{template_id}.yaml"
        self._document: SourceDocument | None = None

    def issue(
        self,
        loc: Loc,
        message: str,
        *,
        line: int | None = None,
        hint: str | None = None,
        severity: str = "error",
    ) -> ProgramIssue:
        document = self._parsed()
        if document is None:
            return ProgramIssue.unpositioned(self.name, message, hint=hint)
        issue = document.issue(loc, message, hint=hint, severity=severity)  # type: ignore[arg-type]
        spot = locate(document.tree, loc)
        at_line, column = position_inside(spot, line=line, column=None)
        return replace(issue, line=at_line, column=column)

    def _parsed(self) -> SourceDocument | None:
        if self._document is None:
            parsed = parse_document(self.path.read_text(encoding="utf-8"), file=self.name)
            self._document = parsed if isinstance(parsed, SourceDocument) else None
        return self._document

"""The notifications package's program files (``templates/*.yaml``) and the checks across them.

Importing this module (the wiring does) registers the file kind and the check that every text of
every template is written in each locale program.yaml offers. Rendering each template with
sample data is a check of the loaded program (:mod:`notifications.checks`).
"""

from __future__ import annotations

from collections.abc import Iterator

from core.program.kinds import FileKind, LoadedFiles, register_cross_check, register_file_kind
from core.program.yamlsource import ProgramIssue
from notifications.template_files import TemplateFile

# program.templates: file name → TemplateFile
TEMPLATES = FileKind(
    attribute="templates",
    path="templates",
    model=TemplateFile,
    schema_name="template",
    title="templates/<id>.yaml: one message, per channel and locale",
)


def check_template_locales(files: LoadedFiles) -> Iterator[ProgramIssue]:
    """Every text of every template has each program locale."""
    if files.program is None:
        return
    locales = files.program.model.locales
    for template in files.folder("templates", TemplateFile).values():
        for loc, texts in template.model.texts():
            missing = [locale for locale in locales if locale not in texts]
            if missing:
                yield template.document.issue(
                    loc,
                    f"no text for locale {', '.join(map(repr, missing))}",
                    hint=f"every text needs each program locale: {', '.join(locales)}",
                )


register_file_kind(TEMPLATES)
register_cross_check(check_template_locales)

"""Server-side template injection: known payloads are rejected at `check` or render inert."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.program.check import check_program
from core.program.loader import Program
from notifications.errors import TemplateRenderError
from notifications.samples import sample_variables
from notifications.template_files import TemplateFile
from notifications.templates import Audience, TemplateCatalog, render_message

PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ request.application }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "{{ url_for.__globals__['current_app'].config }}",
    "{{ get_flashed_messages.__globals__ }}",
    "{{ range.__init__ }}",
    "{{ member.__class__ }}",
    "{{ member['__class__'] }}",
    "{{ member|attr('__class__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ member.first_name.__class__.__base__.__subclasses__() }}",
    "{{ member.first_name.format.__globals__ }}",
    "{{ '{0.__class__}'.format(member) }}",
    "{{ member.first_name|format('%s') }}",
    "{% include '/etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os }}",
    "{{ '7' * 100000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{% set x = cart.items %}{{ x.append(1) }}",
    "{{ dict(a=1) }}",
]
SENSITIVE = ("<class", "<function", "<module", "built-in", "subclasses", "__globals__", "uid=")


def render_payload(payload: str, program: Program) -> str:
    template = TemplateFile.model_validate(
        {"id": "evil", "push": {"title": {"en": "Hi"}, "body": {"en": payload}}}
    )
    catalog = TemplateCatalog({"evil": template}, default_locale="en")
    message = render_message(
        catalog,
        template_id="evil",
        channel="push",
        variables=sample_variables(program, "en"),
        audience=Audience("en", "UTC"),
        currency="CNY",
        business_timezone="UTC",
    )
    return message.body


@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_injection_payload_is_rejected_at_load_or_render(payload: str, program: Program) -> None:
    try:
        output = render_payload(payload, program)
    except ValidationError as exc:
        outcome = "rejected when the program loads: " + exc.errors()[0]["msg"]
    except TemplateRenderError as exc:
        outcome = "rejected when check renders it: " + str(exc)
    else:
        assert not any(marker in output for marker in SENSITIVE), output
        outcome = f"inert: {output!r}"

    assert outcome.startswith(("rejected", "inert")), outcome
    assert len(PAYLOADS) >= 20


def test_check_names_the_file_and_line_of_an_injection_payload(
    examples: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "program"
    shutil.copytree(examples / "program", directory)
    path = directory / "templates" / "welcome-reminder.yaml"
    path.write_text(
        path.read_text().replace(
            "{{ member.first_name }}，{{ coupon.name }}还有",
            "{{ lipsum.__globals__['os'] }}，{{ coupon.name }}还有",
        )
    )

    issues = check_program(directory)

    assert [str(issue) for issue in issues] == [
        "templates/welcome-reminder.yaml:5:12: push.body.zh-CN: private attribute '__globals__'"
        " is not allowed — a message may only show its variables, their fields and filters"
    ]

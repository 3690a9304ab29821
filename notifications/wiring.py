"""How the notifications package plugs into the foundation (see core/packages.py).

Importing this module registers the program files (templates/) and their checks, subscribes
the package's event handlers, declares its actors, registers its scheduled jobs and names its
HTTP router (unsubscribe pages, provider webhooks); `register_cli` adds its commands.
"""

from __future__ import annotations

import typer

from core.demo import summary_sections
from core.http.registry import register_router
from core.members import MemberSection, member_sections
from core.metrics import register_database_gauge
from core.program.check import program_checks
from notifications import actors as _actors  # noqa: F401  (declares the actors)
from notifications import consents as _consents  # noqa: F401  (subscribes its handler)
from notifications import jobs as _jobs  # noqa: F401  (registers the scheduled jobs)
from notifications import program_files as _program_files  # noqa: F401  (registers templates/)
from notifications import tables as _tables  # noqa: F401  (registers the tables on the metadata)
from notifications.checks import check_templates
from notifications.metrics import MESSAGES
from notifications.summaries import (
    fetch_member_messages,
    print_delivery_summary,
    render_member_messages,
)

if check_templates not in program_checks:
    program_checks.append(check_templates)
if print_delivery_summary not in summary_sections:
    summary_sections.append(print_delivery_summary)
if not any(section.name == "notifications" for section in member_sections):
    member_sections.append(
        MemberSection("notifications", fetch_member_messages, render_member_messages)
    )
register_router("notifications.api:router")  # unsubscribe and webhooks, imported only when serving
register_database_gauge(MESSAGES)  # /metrics: messages by channel and status


def register_cli(app: typer.Typer) -> None:
    """Add this package's commands to the `loyalty-engine` CLI."""
    from notifications.cli import register

    register(app)

"""How the campaigns package plugs into the foundation (see core/packages.py).

Importing this module registers the package's program files and checks, tables, event handlers,
actors and scheduled jobs, adds the member's journeys to ``members show`` and the journeys part
to the demo summary; ``register_cli`` adds the ``campaigns`` commands.
"""

from __future__ import annotations

import typer

from campaigns import handlers as _handlers  # noqa: F401  (subscribes the event handler)
from campaigns import jobs as _jobs  # noqa: F401  (declares the actors, registers the jobs)
from campaigns import program_files as _program_files  # noqa: F401  (registers the files)
from campaigns import tables as _tables  # noqa: F401  (registers the tables on the metadata)
from campaigns.metrics import JOURNEYS_ACTIVE
from campaigns.views import (
    member_section,
    print_demo_summary,
    print_experiment_reports,
    print_program_report,
)
from core.demo import summary_sections
from core.members import member_sections
from core.metrics import register_database_gauge

if not any(section.name == member_section.name for section in member_sections):
    member_sections.append(member_section)
if print_demo_summary not in summary_sections:
    summary_sections.append(print_demo_summary)
if print_experiment_reports not in summary_sections:
    summary_sections.append(print_experiment_reports)
if print_program_report not in summary_sections:
    summary_sections.append(print_program_report)
register_database_gauge(JOURNEYS_ACTIVE)  # /metrics: active journeys by campaign


def register_cli(app: typer.Typer) -> None:
    """Add this package's commands to the `loyalty-engine` CLI."""
    from campaigns.cli import register

    register(app)

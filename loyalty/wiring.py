"""How the loyalty package plugs into the foundation (see core/packages.py).

Importing this module subscribes the package's event handlers, declares its actors and
registers its scheduled jobs and names its HTTP router (``loyalty.api``); `register_cli` adds its
commands.
"""

from __future__ import annotations

import typer

from core.demo import summary_sections
from core.events.internal import EventSource, register_event_source
from core.http.registry import register_router
from core.members import MemberSection, member_sections
from loyalty import handlers as _handlers  # noqa: F401  (subscribes the event handlers)
from loyalty import jobs as _jobs  # noqa: F401  (declares the actors, registers the jobs)
from loyalty import tables as _tables  # noqa: F401  (registers the tables on the metadata)
from loyalty.member_view import fetch_loyalty, print_demo_summary, render_loyalty
from loyalty.variables import register_cel_fields

register_cel_fields()  # member.tier, member.tier_rank, member.referrals; events' data

# The engine events loyalty emits, and for which programs (tiers_store, tier_recalc: a grace of 0
# downgrades at once, with no pending notice; referral_store settles only with a referral:).
register_event_source(
    EventSource("tier.changed", lambda file: len(file.tiers.levels) > 1, "two tier levels or more")
)
register_event_source(
    EventSource(
        "tier.downgrade_pending",
        lambda file: len(file.tiers.levels) > 1 and file.tiers.downgrade_grace_days > 0,
        "two tier levels or more and downgrade_grace_days above 0 (0 downgrades at once)",
    )
)
register_event_source(
    EventSource("referral.qualified", lambda file: file.referral is not None, "a referral: section")
)


def register_cli(app: typer.Typer) -> None:
    """Add this package's commands to the `loyalty-engine` CLI."""
    from loyalty.cli import register

    register(app)


_SECTION = MemberSection(name="loyalty", fetch=fetch_loyalty, render=render_loyalty)
if _SECTION not in member_sections:
    member_sections.append(_SECTION)
if print_demo_summary not in summary_sections:
    summary_sections.append(print_demo_summary)

register_router("loyalty.api:router")  # the HTTP endpoints, imported only when serving

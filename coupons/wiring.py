"""How the coupons package plugs into the foundation (see core/packages.py).

Importing this module registers the program file (coupons.yaml) and its checks, the tables,
subscribes the ``order.paid`` and ``order.refunded`` handlers, declares the actors and jobs,
adds the wallet to ``members show`` and the coupons part to the demo summary, names the HTTP
router (``coupons.api``: checkout, issuing); `register_cli` adds the ``coupons`` commands.
"""

from __future__ import annotations

import typer

from core.demo import checkout_hooks, summary_sections
from core.http.registry import register_router
from core.members import member_sections
from coupons import handlers as _handlers  # noqa: F401  (subscribes the event handlers)
from coupons import jobs as _jobs  # noqa: F401  (declares the actors, registers the jobs)
from coupons import program_files as _program_files  # noqa: F401  (registers coupons.yaml)
from coupons import tables as _tables  # noqa: F401  (registers the tables on the metadata)
from coupons.views import demo_checkout, member_section, print_demo_summary

if member_section not in member_sections:
    member_sections.append(member_section)
if print_demo_summary not in summary_sections:
    summary_sections.append(print_demo_summary)
if demo_checkout not in checkout_hooks:
    checkout_hooks.append(demo_checkout)


def register_cli(app: typer.Typer) -> None:
    """Add this package's commands to the `loyalty-engine` CLI."""
    from coupons.cli import register

    register(app)


register_router("coupons.api:router")  # the HTTP endpoints, imported only when serving

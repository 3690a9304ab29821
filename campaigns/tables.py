"""Tables of the campaigns package: journeys, the steps they ran, cart claims, controls.

Once-only is enforced by keys, never by check-then-write:

* ``campaign_journeys``: the primary key is derived from the enrolment key (campaign, member and
  the trigger instance: an event id, a cart version, a cron firing, a birthday year), so the
  same trigger never enrols twice, however many scanners or redeliveries meet it; a partial
  unique index on ``(campaign_id, member_id) WHERE status = 'active'`` keeps one journey per
  member and campaign at a time.
* ``campaign_journey_steps``: one row per (journey, step id); every effect of a step is keyed by
  the same pair (``journey:<id>:<step>``: the message dedupe key, the coupon issue key, the
  points idempotency key), so a retry, a crash or a second worker neither repeats nor skips it.
* ``campaign_cart_claims``: one row per (campaign, cart, cart version) a scan has looked at,
  enrolled or not, so two scans never take the same abandoned cart.
* ``campaign_controls``: ``campaigns pause|resume``: a status that wins over the file's.
* ``campaign_conversions``: one per journey (primary key): the first goal event within the
  goal's window after entering, with the order whose total, net of its refunds, is revenue.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text, text

from core.db import JsonDocument, UtcDateTime, metadata

journeys = Table(
    "campaign_journeys",
    metadata,
    Column("journey_id", String(40), primary_key=True),
    Column("campaign_id", String(64), nullable=False),
    Column("member_id", String(200), nullable=False),
    Column("enrolment_key", String(400), nullable=False),
    Column("version", String(16), nullable=False),  # of the campaign file it runs
    Column("arm", String(64), nullable=False),  # a variant, "holdout", or "main"
    Column("status", String(16), nullable=False),  # active, completed, exited
    Column("reason", String(64)),  # why it ended: holdout, exit_on:order.paid, step_removed …
    Column("step_id", String(200)),  # the next step to run
    Column("next_run_at", UtcDateTime()),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("context", JsonDocument, nullable=False),  # the trigger's: cart, order, referral
    Column("entered_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime()),
    Index(
        "uq_campaign_journeys_one_active",
        "campaign_id",
        "member_id",
        unique=True,
        postgresql_where=text("status = 'active'"),
        sqlite_where=text("status = 'active'"),
    ),
    Index("ix_campaign_journeys_due", "status", "next_run_at"),
    Index("ix_campaign_journeys_member", "member_id", "campaign_id", "entered_at"),
    Index("ix_campaign_journeys_campaign", "campaign_id", "entered_at"),
)

journey_steps = Table(
    "campaign_journey_steps",
    metadata,
    Column("journey_id", String(40), primary_key=True),
    Column("step_id", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),  # send, wait, issue_coupon, award_points
    Column("status", String(16), nullable=False),  # done, skipped
    Column("reason", String(64)),  # why skipped (the member cannot receive any channel …)
    Column("member_id", String(200), nullable=False),  # who the step was for
    Column("message_id", String(40)),
    Column("coupon_code", String(32)),
    Column("points", Integer),
    Column("executed_at", UtcDateTime(), nullable=False),
)

conversions = Table(
    "campaign_conversions",
    metadata,
    # One per enrolment: the first goal event within the goal's window after entering.
    Column("journey_id", String(40), primary_key=True),
    Column("campaign_id", String(64), nullable=False),
    Column("member_id", String(200), nullable=False),
    Column("arm", String(64), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("order_id", String(200)),  # revenue: this order's total, net of its refunds
    Column("converted_at", UtcDateTime(), nullable=False),
    Index("ix_campaign_conversions_campaign", "campaign_id", "converted_at"),
)

cart_claims = Table(
    "campaign_cart_claims",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("cart_id", String(200), primary_key=True),
    Column("cart_updated_at", UtcDateTime(), primary_key=True),
    Column("member_id", String(200), nullable=False),
    Column("claimed_at", UtcDateTime(), nullable=False),
)

controls = Table(
    "campaign_controls",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),  # active, paused
    Column("changed_at", UtcDateTime(), nullable=False),
    Column("note", String(500)),
)

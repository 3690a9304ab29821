"""campaigns: journeys, their steps, cart claims, controls

Revision ID: 0008_campaigns
Revises: 0001
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import core.db
from sqlalchemy.dialects import postgresql

revision = '0008_campaigns'
down_revision = '0001'
branch_labels = ('campaigns',)
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_cart_claims',
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('cart_id', sa.String(length=200), nullable=False),
    sa.Column('cart_updated_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('campaign_id', 'cart_id', 'cart_updated_at', name=op.f('pk_campaign_cart_claims'))
    )
    op.create_table('campaign_controls',
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('changed_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_campaign_controls'))
    )
    op.create_table('campaign_journey_steps',
    sa.Column('journey_id', sa.String(length=40), nullable=False),
    sa.Column('step_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('coupon_code', sa.String(length=32), nullable=True),
    sa.Column('points', sa.Integer(), nullable=True),
    sa.Column('executed_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('journey_id', 'step_id', name=op.f('pk_campaign_journey_steps'))
    )
    op.create_table('campaign_journeys',
    sa.Column('journey_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('enrolment_key', sa.String(length=400), nullable=False),
    sa.Column('version', sa.String(length=16), nullable=False),
    sa.Column('arm', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('step_id', sa.String(length=200), nullable=True),
    sa.Column('next_run_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('entered_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('journey_id', name=op.f('pk_campaign_journeys'))
    )
    with op.batch_alter_table('campaign_journeys', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_journeys_campaign', ['campaign_id', 'entered_at'], unique=False)
        batch_op.create_index('ix_campaign_journeys_due', ['status', 'next_run_at'], unique=False)
        batch_op.create_index('ix_campaign_journeys_member', ['member_id', 'campaign_id', 'entered_at'], unique=False)
        batch_op.create_index('uq_campaign_journeys_one_active', ['campaign_id', 'member_id'], unique=True, postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))



def downgrade() -> None:
    with op.batch_alter_table('campaign_journeys', schema=None) as batch_op:
        batch_op.drop_index('uq_campaign_journeys_one_active', postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
        batch_op.drop_index('ix_campaign_journeys_member')
        batch_op.drop_index('ix_campaign_journeys_due')
        batch_op.drop_index('ix_campaign_journeys_campaign')

    op.drop_table('campaign_journeys')
    op.drop_table('campaign_journey_steps')
    op.drop_table('campaign_controls')
    op.drop_table('campaign_cart_claims')

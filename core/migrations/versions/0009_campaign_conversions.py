"""campaigns: conversions, one per journey

Revision ID: 0009_campaign_conversions
Revises: 0008_campaigns
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import core.db


revision = '0009_campaign_conversions'
down_revision = '0008_campaigns'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_conversions',
    sa.Column('journey_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('arm', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('order_id', sa.String(length=200), nullable=True),
    sa.Column('converted_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('journey_id', name=op.f('pk_campaign_conversions'))
    )
    with op.batch_alter_table('campaign_conversions', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_conversions_campaign', ['campaign_id', 'converted_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('campaign_conversions', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_conversions_campaign')

    op.drop_table('campaign_conversions')

"""loyalty: the points_redeemed of paid orders that could not be redeemed, with the reason

Revision ID: 0012_loyalty_points_refusals
Revises: 0011_loyalty_points_holds
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa
import core.db


revision = '0012_loyalty_points_refusals'
down_revision = '0011_loyalty_points_holds'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('points_refusals',
    sa.Column('order_id', sa.String(length=200), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('points', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=True),
    sa.Column('refused_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_points_refusals'))
    )
    with op.batch_alter_table('points_refusals', schema=None) as batch_op:
        batch_op.create_index('ix_points_refusals_member', ['member_id', 'refused_at'], unique=False)
        batch_op.create_index('ix_points_refusals_refused_at', ['refused_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('points_refusals', schema=None) as batch_op:
        batch_op.drop_index('ix_points_refusals_refused_at')
        batch_op.drop_index('ix_points_refusals_member')

    op.drop_table('points_refusals')

"""coupon refusals: codes on paid orders that could not be redeemed, with their reasons

Revision ID: 0007_coupon_refusals
Revises: 0006_coupons_money
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import core.db
from sqlalchemy.dialects import postgresql


revision = '0007_coupon_refusals'
down_revision = '0006_coupons_money'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('coupon_refusals',
    sa.Column('order_id', sa.String(length=200), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('coupon_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=True),
    sa.Column('refused_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('order_id', 'code', name=op.f('pk_coupon_refusals'))
    )
    with op.batch_alter_table('coupon_refusals', schema=None) as batch_op:
        batch_op.create_index('ix_coupon_refusals_member', ['member_id', 'refused_at'], unique=False)
        batch_op.create_index('ix_coupon_refusals_refused_at', ['refused_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('coupon_refusals', schema=None) as batch_op:
        batch_op.drop_index('ix_coupon_refusals_refused_at')
        batch_op.drop_index('ix_coupon_refusals_member')

    op.drop_table('coupon_refusals')

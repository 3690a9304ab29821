"""coupons: checkout reservations (an order's codes and points held under one id)

Revision ID: 0011_coupons_reservations
Revises: 0007_coupon_refusals
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import core.db
from sqlalchemy.dialects import postgresql


revision = '0011_coupons_reservations'
down_revision = '0007_coupon_refusals'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkout_reservations',
    sa.Column('reservation_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=200), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('codes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('discount', core.db.Money(precision=18, scale=2), nullable=False),
    sa.Column('points', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('points_value', core.db.Money(precision=18, scale=2), nullable=False),
    sa.Column('held_until', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('released_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('reservation_id', name=op.f('pk_checkout_reservations'))
    )
    with op.batch_alter_table('checkout_reservations', schema=None) as batch_op:
        batch_op.create_index('ix_checkout_reservations_order', ['order_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('checkout_reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_checkout_reservations_order')

    op.drop_table('checkout_reservations')

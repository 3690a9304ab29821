"""coupons

Revision ID: 0003_coupons
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa
import core.db


revision = '0003_coupons'
down_revision = '0001'
branch_labels = ('coupons',)
depends_on = None


def upgrade() -> None:
    op.create_table('coupon_codes',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('coupon_id', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('issue_key', sa.String(length=200), nullable=True),
    sa.Column('issued_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('order_id', sa.String(length=200), nullable=True),
    sa.Column('reserved_until', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('discount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('redeemed_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_coupon_codes')),
    sa.UniqueConstraint('issue_key', name=op.f('uq_coupon_codes_issue_key'))
    )
    with op.batch_alter_table('coupon_codes', schema=None) as batch_op:
        batch_op.create_index('ix_coupon_codes_due', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_coupon_codes_held', ['status', 'reserved_until'], unique=False)
        batch_op.create_index('ix_coupon_codes_member', ['member_id', 'status'], unique=False)
        batch_op.create_index('ix_coupon_codes_order', ['order_id'], unique=False)

    op.create_table('coupon_counters',
    sa.Column('coupon_id', sa.String(length=64), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.Column('spent_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('coupon_id', name=op.f('pk_coupon_counters'))
    )
    op.create_table('coupon_member_uses',
    sa.Column('coupon_id', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=True),
    sa.Column('used_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('coupon_id', 'member_id', 'slot', name=op.f('pk_coupon_member_uses'))
    )
    with op.batch_alter_table('coupon_member_uses', schema=None) as batch_op:
        batch_op.create_index('ix_coupon_member_uses_code', ['code'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('coupon_member_uses', schema=None) as batch_op:
        batch_op.drop_index('ix_coupon_member_uses_code')

    op.drop_table('coupon_member_uses')
    op.drop_table('coupon_counters')
    with op.batch_alter_table('coupon_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_coupon_codes_order')
        batch_op.drop_index('ix_coupon_codes_member')
        batch_op.drop_index('ix_coupon_codes_held')
        batch_op.drop_index('ix_coupon_codes_due')

    op.drop_table('coupon_codes')

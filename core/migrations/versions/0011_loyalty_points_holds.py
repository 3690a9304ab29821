"""loyalty: points held for an order by a checkout reservation

Revision ID: 0011_loyalty_points_holds
Revises: 0006_loyalty_bigint
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import core.db


revision = '0011_loyalty_points_holds'
down_revision = '0006_loyalty_bigint'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('points_holds',
    sa.Column('order_id', sa.String(length=200), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('points', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('held_until', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('points > 0', name=op.f('ck_points_holds_held_points_positive')),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_points_holds'))
    )
    with op.batch_alter_table('points_holds', schema=None) as batch_op:
        batch_op.create_index('ix_points_holds_member', ['member_id', 'held_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('points_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_points_holds_member')

    op.drop_table('points_holds')

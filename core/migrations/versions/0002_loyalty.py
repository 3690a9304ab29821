"""loyalty

Revision ID: 0002_loyalty
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa
import core.db


revision = '0002_loyalty'
down_revision = '0001'
branch_labels = ('loyalty',)
depends_on = None


def upgrade() -> None:
    op.create_table('member_tiers',
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('tier_id', sa.String(length=64), nullable=False),
    sa.Column('qualifying_spend', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('since', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('below_since', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_member_tiers'))
    )
    with op.batch_alter_table('member_tiers', schema=None) as batch_op:
        batch_op.create_index('ix_member_tiers_tier', ['tier_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('member_tiers', schema=None) as batch_op:
        batch_op.drop_index('ix_member_tiers_tier')

    op.drop_table('member_tiers')

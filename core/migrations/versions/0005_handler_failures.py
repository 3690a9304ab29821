"""handler failures: valid events whose handlers failed, kept for retry

Revision ID: 0005_handler_failures
Revises: 0001
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
import core.db


revision = '0005_handler_failures'
down_revision = '0001'
branch_labels = ('intake',)
depends_on = None


def upgrade() -> None:
    op.create_table('handler_failures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('handler', sa.String(length=200), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('first_failed_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handler_failures')),
    sa.UniqueConstraint('event_id', 'handler', name=op.f('uq_handler_failures_event_id_handler'))
    )
    with op.batch_alter_table('handler_failures', schema=None) as batch_op:
        batch_op.create_index('ix_handler_failures_member_status', ['member_id', 'status'], unique=False)
        batch_op.create_index('ix_handler_failures_status_next', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('handler_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_handler_failures_status_next')
        batch_op.drop_index('ix_handler_failures_member_status')
    op.drop_table('handler_failures')

"""notifications: messages, attempts, delivery callbacks, suppressions, unsubscribes, caps

Revision ID: 0004_notifications
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa
import core.db
from sqlalchemy.dialects import postgresql

revision = '0004_notifications'
down_revision = '0001'
branch_labels = ('notifications',)
depends_on = None


def upgrade() -> None:
    op.create_table('notification_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('started_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('provider_message_id', sa.String(length=200), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_attempts'))
    )
    with op.batch_alter_table('notification_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_attempts_message_id'), ['message_id'], unique=False)

    op.create_table('notification_cap_counters',
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'period', name=op.f('pk_notification_cap_counters'))
    )
    op.create_table('notification_delivery_events',
    sa.Column('callback_id', sa.String(length=200), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('received_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('callback_id', name=op.f('pk_notification_delivery_events'))
    )
    with op.batch_alter_table('notification_delivery_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_delivery_events_message_id'), ['message_id'], unique=False)

    op.create_table('notification_messages',
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('dedupe_key', sa.String(length=300), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=True),
    sa.Column('template_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=True),
    sa.Column('locale', sa.String(length=35), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('segments', sa.Integer(), nullable=True),
    sa.Column('to_masked', sa.String(length=320), nullable=True),
    sa.Column('address_hash', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('not_before', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=True),
    sa.Column('provider_message_id', sa.String(length=200), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sending_since', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('delivery', sa.String(length=16), nullable=True),
    sa.Column('delivery_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_notification_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notification_messages_dedupe_key'))
    )
    with op.batch_alter_table('notification_messages', schema=None) as batch_op:
        batch_op.create_index('ix_notification_messages_campaign', ['campaign_id'], unique=False)
        batch_op.create_index('ix_notification_messages_member', ['member_id', 'created_at'], unique=False)
        batch_op.create_index('ix_notification_messages_provider_id', ['provider_message_id'], unique=False)
        batch_op.create_index('ix_notification_messages_status_due', ['status', 'not_before'], unique=False)

    op.create_table('notification_suppressions',
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('to_masked', sa.String(length=320), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('address_hash', 'channel', name=op.f('pk_notification_suppressions'))
    )
    op.create_table('notification_unsubscribes',
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('unsubscribed_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'channel', name=op.f('pk_notification_unsubscribes'))
    )


def downgrade() -> None:
    op.drop_table('notification_unsubscribes')
    op.drop_table('notification_suppressions')
    with op.batch_alter_table('notification_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_messages_status_due')
        batch_op.drop_index('ix_notification_messages_provider_id')
        batch_op.drop_index('ix_notification_messages_member')
        batch_op.drop_index('ix_notification_messages_campaign')

    op.drop_table('notification_messages')
    with op.batch_alter_table('notification_delivery_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_delivery_events_message_id'))

    op.drop_table('notification_delivery_events')
    op.drop_table('notification_cap_counters')
    with op.batch_alter_table('notification_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_attempts_message_id'))

    op.drop_table('notification_attempts')

"""http: API keys and idempotency records

Revision ID: 0010_http_api
Revises: 0006_money_cents_core
Create Date: 2026-12-02

On the core branch: the HTTP API's keys (a SHA-256 of each secret, never the secret) and the
stored responses of POST requests sent with an Idempotency-Key.
"""

from alembic import op
import sqlalchemy as sa
import core.db
from sqlalchemy.dialects import postgresql

revision = '0010_http_api'
down_revision = '0006_money_cents_core'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_idempotency',
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('method', sa.String(length=10), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_headers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('response_body', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id', 'idempotency_key', name=op.f('pk_api_idempotency'))
    )
    with op.batch_alter_table('api_idempotency', schema=None) as batch_op:
        batch_op.create_index('ix_api_idempotency_created_at', ['created_at'], unique=False)

    op.create_table('api_keys',
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', core.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_api_keys'))
    )


def downgrade() -> None:
    op.drop_table('api_keys')
    with op.batch_alter_table('api_idempotency', schema=None) as batch_op:
        batch_op.drop_index('ix_api_idempotency_created_at')

    op.drop_table('api_idempotency')

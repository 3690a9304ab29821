"""loyalty: 64-bit points on PostgreSQL, exact money on SQLite (integer cents)

Revision ID: 0006_loyalty_bigint
Revises: 0002_loyalty
Create Date: 2026-12-02

Every points column becomes BIGINT on PostgreSQL (SQLite's INTEGER already is 64-bit). On
SQLite, which keeps a NUMERIC as a float, core.db.Money stores cents in a BIGINT column; the
amounts already stored become cents (rounded to the cent: what the float still holds).
"""

from alembic import op
import sqlalchemy as sa


revision = '0006_loyalty_bigint'
down_revision = '0002_loyalty'
branch_labels = None
depends_on = None

POINTS = [
    ('points_accounts', 'debt'),
    ('points_ledger', 'points'),
    ('points_ledger', 'debt'),
    ('points_lots', 'points'),
    ('points_lots', 'remaining'),
    ('points_lots', 'expired_points'),
    ('points_moves', 'points'),
]
MONEY = [
    ('member_tiers', 'qualifying_spend', False),
    ('tier_history', 'qualifying_spend', False),
    ('referrals', 'order_total', True),
]


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for table, column, nullable in MONEY:
            op.execute(f'UPDATE {table} SET {column} = CAST(ROUND({column} * 100) AS INTEGER)')
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.alter_column(column, existing_type=sa.Numeric(precision=18, scale=2), type_=sa.BigInteger(), existing_nullable=nullable)
        return
    for table, column in POINTS:
        op.alter_column(table, column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for table, column, nullable in MONEY:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Numeric(precision=18, scale=2), existing_nullable=nullable)
            op.execute(f'UPDATE {table} SET {column} = {column} / 100.0')
        return
    for table, column in POINTS:
        op.alter_column(table, column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)

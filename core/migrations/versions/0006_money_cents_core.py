"""core: exact money on SQLite (integer cents), 64-bit orders.points_redeemed on PostgreSQL

Revision ID: 0006_money_cents_core
Revises: 0001
Create Date: 2026-12-02

SQLite keeps a NUMERIC as a float, so core.db.Money stores cents there in a BIGINT column; the
amounts already stored become cents (rounded to the cent: what the float still holds).
PostgreSQL keeps NUMERIC(18, 2). SQLite's INTEGER is already 64-bit, so points_redeemed changes
only on PostgreSQL.
"""

from alembic import op
import sqlalchemy as sa


revision = '0006_money_cents_core'
down_revision = '0001'
branch_labels = None
depends_on = None

MONEY = [('orders', 'total', False), ('refunds', 'amount', False), ('carts', 'total', False)]


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for table, column, nullable in MONEY:
            op.execute(f'UPDATE {table} SET {column} = CAST(ROUND({column} * 100) AS INTEGER)')
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.alter_column(column, existing_type=sa.Numeric(precision=18, scale=2), type_=sa.BigInteger(), existing_nullable=nullable)
        return
    op.alter_column('orders', 'points_redeemed', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for table, column, nullable in MONEY:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Numeric(precision=18, scale=2), existing_nullable=nullable)
            op.execute(f'UPDATE {table} SET {column} = {column} / 100.0')
        return
    op.alter_column('orders', 'points_redeemed', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)

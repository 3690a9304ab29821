"""coupons: exact money on SQLite (integer cents)

Revision ID: 0006_coupons_money
Revises: 0003_coupons
Create Date: 2026-12-02

SQLite keeps a NUMERIC as a float, so core.db.Money stores cents there in a BIGINT column; the
discounts already stored become cents (rounded to the cent: what the float still holds).
PostgreSQL keeps NUMERIC(18, 2): nothing changes there.
"""

from alembic import op
import sqlalchemy as sa


revision = '0006_coupons_money'
down_revision = '0003_coupons'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    op.execute('UPDATE coupon_codes SET discount = CAST(ROUND(discount * 100) AS INTEGER)')
    with op.batch_alter_table('coupon_codes', schema=None) as batch_op:
        batch_op.alter_column('discount', existing_type=sa.Numeric(precision=18, scale=2), type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table('coupon_codes', schema=None) as batch_op:
        batch_op.alter_column('discount', existing_type=sa.BigInteger(), type_=sa.Numeric(precision=18, scale=2), existing_nullable=True)
    op.execute('UPDATE coupon_codes SET discount = discount / 100.0')

"""core: PostgreSQL announces on channel loyalty_changes which members and coupons changed

Revision ID: 0013_change_notifications
Revises: 0012_loyalty_points_refusals
Create Date: 2026-12-03

One statement-level trigger per table and operation sends one pg_notify per statement: a JSON
array of the distinct keys ("member:m-1", "coupon:welcome-20") of the rows it touched, or "*"
when that would not fit in a notification. core.readcache.ReadCache listens and drops them.
TRUNCATE sends "*" too. PostgreSQL only: SQLite has no LISTEN, nothing is cached there.

The list of tables is written here, not imported from core.readcache, so this migration stays
what it was when core.readcache.WATCHED changes; tests/core/test_readcache.py checks they agree.
It depends on 0003_coupons, which creates the coupon tables on another branch.
"""

from alembic import op


revision = '0013_change_notifications'
down_revision = '0012_loyalty_points_refusals'
branch_labels = None
depends_on = '0003_coupons'

# (table, column, key prefix)
WATCHED = [
    ('members', 'member_id', 'member'),
    ('orders', 'member_id', 'member'),
    ('refunds', 'member_id', 'member'),
    ('member_tiers', 'member_id', 'member'),
    ('tier_history', 'member_id', 'member'),
    ('referrals', 'referrer_id', 'member'),
    ('coupon_codes', 'member_id', 'member'),
    ('coupon_member_uses', 'member_id', 'member'),
    ('points_lots', 'member_id', 'member'),
    ('points_holds', 'member_id', 'member'),
    ('points_ledger', 'member_id', 'member'),
    ('coupon_counters', 'coupon_id', 'coupon'),
]

# A payload of n keys takes at least 5n bytes ('":x", ' even with an empty prefix), so 1,501
# distinct keys are already more than 7,500 bytes: the LIMIT bounds the work on a bulk statement
# without changing the answer. pg_notify refuses payloads of 8,000 bytes or more.
FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_notify_changes() RETURNS trigger
LANGUAGE plpgsql AS $function$
DECLARE
    changed text;
    payload text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('loyalty_changes', '*');
        RETURN NULL;
    END IF;
    changed := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT %1$I AS value FROM new_rows', TG_ARGV[1])
        WHEN 'DELETE' THEN format('SELECT %1$I AS value FROM old_rows', TG_ARGV[1])
        ELSE format(
            'SELECT %1$I AS value FROM old_rows UNION ALL SELECT %1$I FROM new_rows', TG_ARGV[1])
    END;
    EXECUTE format(
        'SELECT json_agg($1 || '':'' || value)::text FROM (SELECT DISTINCT value'
        ' FROM (%s) AS changed WHERE value IS NOT NULL LIMIT 1501) AS keys', changed)
    INTO payload USING TG_ARGV[0];
    IF payload IS NULL THEN
        RETURN NULL;
    END IF;
    IF octet_length(payload) > 7500 THEN
        payload := '*';
    END IF;
    PERFORM pg_notify('loyalty_changes', payload);
    RETURN NULL;
END
$function$
"""

TRIGGERS = {
    'insert': 'AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows',
    'update': 'AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows',
    'delete': 'AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows',
    'truncate': 'AFTER TRUNCATE ON {table}',
}


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(FUNCTION)
    for table, column, prefix in WATCHED:
        for operation, event in TRIGGERS.items():
            op.execute(
                f'CREATE TRIGGER {table}_notify_{operation} {event.format(table=table)}'
                ' FOR EACH STATEMENT'
                f" EXECUTE FUNCTION loyalty_notify_changes('{prefix}', '{column}')"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, _column, _prefix in WATCHED:
        for operation in TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS {table}_notify_{operation} ON {table}')
    op.execute('DROP FUNCTION IF EXISTS loyalty_notify_changes()')

"""core: PostgreSQL announces on channel loyalty_changes which members, coupons and keys changed

Revision ID: 0013_change_notifications
Revises: 0012_loyalty_points_refusals, 0010_http_api
Create Date: 2026-12-03

Statement-level triggers on each watched table (one plpgsql function per table, its SQL static,
so it is planned once per connection) send what each statement touched: the distinct keys
("member:m-1", "coupon:welcome-20", "api_key:k1") of its old and new rows, as JSON arrays of
at most 7,000 bytes each, one pg_notify per array. A statement touching more than 8,000 keys,
or a TRUNCATE, sends "*" instead. core.readcache.ReadCache listens and drops them. PostgreSQL
only: SQLite has no LISTEN, nothing is cached there.

The list of tables is written here, not imported from core.readcache, so this migration stays
what it was when core.readcache.WATCHED changes; tests/core/test_readcache.py checks they agree.
It merges the loyalty branch with 0010_http_api (api_keys), and depends on 0003_coupons, which
creates the coupon tables it watches on another branch.
"""

from alembic import op


revision = '0013_change_notifications'
down_revision = ('0012_loyalty_points_refusals', '0010_http_api')
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
    ('api_keys', 'key_id', 'api_key'),
]

# 32 keys (at most 215 bytes each in an array) always fit in one, and most statements touch
# one member: they skip the grouping (a single-row INSERT: 23 -> 14 µs of trigger). work_mem
# lets the DISTINCT of a bulk statement hash in memory where it sorted on disk (100,000 lots
# updated: the trigger's share 1.72 -> 1.24 times the statement; docs/bench/readcache.md).
# Keys are grouped into arrays by their running length (a key is at most 211 bytes, 4 more
# in the array): each array stays under 7,000 + 215 bytes, below pg_notify's 8,000. One of
# control characters (escaped six-fold in JSON) could grow past it: that array becomes "*".
FUNCTION = """
CREATE FUNCTION loyalty_notify_{table}() RETURNS trigger
LANGUAGE plpgsql SET work_mem = '64MB' AS $function$
DECLARE
    payload text;
    keys text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('loyalty_changes', '*');
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        keys := ARRAY(SELECT DISTINCT {column} FROM new_rows WHERE {column} IS NOT NULL
                      LIMIT 8001);
    ELSIF TG_OP = 'DELETE' THEN
        keys := ARRAY(SELECT DISTINCT {column} FROM old_rows WHERE {column} IS NOT NULL
                      LIMIT 8001);
    ELSE
        keys := ARRAY(SELECT {column} FROM old_rows WHERE {column} IS NOT NULL
                      UNION SELECT {column} FROM new_rows WHERE {column} IS NOT NULL
                      LIMIT 8001);
    END IF;
    IF cardinality(keys) = 0 THEN
        RETURN NULL;
    ELSIF cardinality(keys) > 8000 THEN
        PERFORM pg_notify('loyalty_changes', '*');
        RETURN NULL;
    ELSIF cardinality(keys) <= 32 THEN  -- one array surely: no grouping by length
        payload := array_to_json(ARRAY(SELECT '{prefix}:' || value FROM unnest(keys) AS value));
        PERFORM pg_notify('loyalty_changes',
                          CASE WHEN octet_length(payload) < 8000 THEN payload ELSE '*' END);
        RETURN NULL;
    END IF;
    FOR payload IN
        SELECT json_agg('{prefix}:' || value)::text
        FROM (SELECT value, sum(octet_length(value) + {overhead}) OVER (ORDER BY value) AS upto
              FROM unnest(keys) AS value) AS running
        GROUP BY upto / 7000
    LOOP
        IF octet_length(payload) >= 8000 THEN
            payload := '*';
        END IF;
        PERFORM pg_notify('loyalty_changes', payload);
    END LOOP;
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
    for table, column, prefix in WATCHED:
        overhead = len(prefix) + 5  # the prefix, ':', two quotes, ', '
        op.execute(FUNCTION.format(table=table, column=column, prefix=prefix, overhead=overhead))
        for operation, event in TRIGGERS.items():
            op.execute(
                f'CREATE TRIGGER {table}_notify_{operation} {event.format(table=table)}'
                f' FOR EACH STATEMENT EXECUTE FUNCTION loyalty_notify_{table}()'
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, _column, _prefix in WATCHED:
        for operation in TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS {table}_notify_{operation} ON {table}')
        op.execute(f'DROP FUNCTION IF EXISTS loyalty_notify_{table}()')

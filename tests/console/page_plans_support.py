"""A PostgreSQL store the size of a real one (1M users), filled on the server in seconds, and
the plans of the statements a console page runs on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, event

USERS = 1_000_000
# Besides each user's signup: views, sessions, cart updates and orders.
OTHER_EVENTS = 2_000_000

# Server-side fills, in the order of their foreign keys. ``NOW`` is console_support.NOW;
# every instant is within the year before it. Users are ``u1`` .. ``u1000000``.
SEED = [
    # Profiles: a phone and an email each (a tenth first seen anonymously), a tenth tagged
    # 母婴人群, seen over the last 90 days.
    f"""
    INSERT INTO users (id, anonymous_id, email, phone, locale, timezone, member_tier, traits,
                       tags, trait_times, created_at, last_seen_at, updated_at)
    SELECT 'u' || i, CASE WHEN i % 10 = 0 THEN 'anon-' || i END, 'user' || i || '@example.com',
           '+86138' || lpad(i::text, 8, '0'), 'zh-CN', 'Asia/Shanghai',
           (ARRAY['silver', 'gold', NULL])[1 + i % 3],
           jsonb_build_object('city', (ARRAY['Shanghai', 'Beijing', 'Chengdu'])[1 + i % 3]),
           CASE WHEN i % 10 = 0 THEN '["母婴人群"]'::jsonb ELSE '[]'::jsonb END, '{{}}',
           :now - (i % 365) * interval '1 day' - (i % 1440) * interval '1 minute',
           :now - (i % 90) * interval '1 day', :now - (i % 90) * interval '1 day'
    FROM generate_series(1, {USERS}) AS i
    """,
    # Each user's signup, routed.
    f"""
    INSERT INTO events (message_id, type, user_id, event, properties, context, timestamp,
                        received_at, routed_at, route_attempts)
    SELECT 'signup-' || i, 'track', 'u' || i, 'user_signed_up', '{{}}', '{{}}', t, t, t, 0
    FROM (SELECT i, :now - (i % 365) * interval '1 day' - (i % 1440) * interval '1 minute' AS t
          FROM generate_series(1, {USERS}) AS i) AS s
    """,
    # The rest of the stream, spread over users and the last 180 days: 40% views, 30%
    # sessions, 20% cart updates, 10% orders (with a total and a category).
    f"""
    INSERT INTO events (message_id, type, user_id, event, properties, context, timestamp,
                        received_at, routed_at, route_attempts)
    SELECT 'ev-' || i, 'track', 'u' || (1 + (i::bigint * 7919) % {USERS}), e,
           CASE WHEN e = 'order_placed' THEN jsonb_build_object(
                    'total', 20 + i % 900,
                    'category', (ARRAY['mother_baby', 'food', 'beauty', 'home'])[1 + i % 4])
                ELSE jsonb_build_object('sku', 'sku-' || i % 5000) END,
           '{{}}', t, t, t, 0
    FROM (SELECT i, (ARRAY['product_viewed', 'product_viewed', 'product_viewed',
                           'product_viewed', 'session_started', 'session_started',
                           'session_started', 'cart_updated', 'cart_updated',
                           'order_placed'])[1 + i % 10] AS e,
                 :now - (i % 180) * interval '1 day' - (i % 86400) * interval '1 second' AS t
          FROM generate_series(1, {OTHER_EVENTS}) AS i) AS s
    """,
    # new_user_coupon for 80% of the users (a tenth held out, a fifth converted, most
    # finished), cart_abandonment for another 20%, both entered on every day.
    f"""
    INSERT INTO enrollments (journey_id, journey_version, user_id, entry_key, entry_number,
                             "group", workflow_id, entered_at, exited_at, exit_reason,
                             converted_at)
    SELECT j, 1, 'u' || i, '', 1, CASE WHEN i % 10 = 0 THEN 'holdout' ELSE 'treatment' END,
           'journey:' || j || ':' || 'u' || i, t,
           CASE WHEN i % 50 <> 1 THEN t + interval '7 days' END,
           CASE WHEN i % 5 = 2 THEN 'converted' WHEN i % 50 <> 1 THEN 'completed' END,
           CASE WHEN i % 5 = 2 THEN t + interval '2 days' END
    FROM (SELECT i, CASE WHEN i / 7 % 5 = 0 THEN 'cart_abandonment' ELSE 'new_user_coupon' END AS j,
                 :now - (i % 365) * interval '1 day' AS t
          FROM generate_series(1, {USERS}) AS i) AS s
    """,
    # A ledger row per treatment run, a second for a third of them: sent, delivered, skipped
    # or failed (in every day's runs alike: ``e.id / 365`` counts a day's runs), on three
    # channels, created over the year and the minutes of its days, and written day by day
    # (ids are in creation order by the day only). A few are rare: one in 10,000 skipped
    # for quiet hours, one bounced.
    """
    INSERT INTO messages (idempotency_key, enrollment_id, journey_id, step_id, user_id, channel,
                          template, topic, status, reason, provider, provider_message_id,
                          created_at, sent_at, delivered_at, segments)
    SELECT 'k' || e.id || ':' || s.n, e.id, e.journey_id,
           (ARRAY['welcome_sms', 'day2_push', 'day6_email'])[s.n], e.user_id,
           (ARRAY['sms', 'push', 'email'])[s.n], 'template_' || s.n, 'marketing',
           CASE e.id % 10000 WHEN 3 THEN 'skipped' WHEN 4 THEN 'bounced'
                ELSE (ARRAY['sent', 'delivered', 'delivered', 'skipped', 'failed'])[1 + o]
           END,
           CASE e.id % 10000 WHEN 3 THEN 'quiet_hours' WHEN 4 THEN 'mailbox_full'
                ELSE CASE o WHEN 3 THEN 'frequency_cap' WHEN 4 THEN 'invalid_number' END
           END,
           'outbox', CASE WHEN o < 3 THEN 'pm' || e.id || '.' || s.n END,
           t, CASE WHEN o < 3 THEN t END, CASE WHEN o IN (1, 2) THEN t + interval '1 hour' END,
           CASE WHEN s.n = 1 THEN 1 END
    FROM enrollments AS e CROSS JOIN generate_series(1, 2) AS s(n)
         CROSS JOIN LATERAL (
             SELECT (e.id / 365) % 5 AS o,
                    e.entered_at + s.n * interval '1 hour' + e.id % 1440 * interval '1 minute' AS t
         ) AS x
    WHERE e."group" = 'treatment' AND (s.n = 1 OR e.id % 3 = 0)
    ORDER BY date_trunc('day', t), e.id, s.n
    """,
    # A coupon for every second new_user_coupon run, a third of them redeemed.
    """
    INSERT INTO coupons (issue_key, code, user_id, journey_id, amount_fen, min_spend_fen,
                         issued_at, expires_at, redeemed_at)
    SELECT e.workflow_id || ':' || 'welcome_coupon', 'C' || e.id, e.user_id, e.journey_id,
           2000, 5000, e.entered_at, e.entered_at + interval '7 days',
           CASE WHEN e.id % 3 = 0 THEN e.entered_at + interval '1 day' END
    FROM enrollments AS e
    WHERE e.journey_id = 'new_user_coupon' AND e.id % 2 = 0
    """,
    # Consent for a third of the users (a tenth of those opted out), push tokens for half.
    """
    INSERT INTO consents (user_id, channel, topic, status, source, updated_at)
    SELECT 'u' || i, 'sms', 'marketing',
           CASE WHEN i % 30 = 0 THEN 'unsubscribed' ELSE 'subscribed' END, 'import', :now
    FROM generate_series(3, 1000000, 3) AS i
    """,
    """
    INSERT INTO push_tokens (user_id, token, platform, created_at, registered_at)
    SELECT 'u' || i, 'token-' || i, 'android', :now, :now
    FROM generate_series(2, 1000000, 2) AS i
    """,
    # Finished broadcasts, each with its ledger rows' broadcast_id left to the journeys.
    """
    INSERT INTO broadcasts (name, audience, audience_source, template, channel, topic, send_at,
                            status, workflow_id, created_at, finished_at, recipients, holdout)
    SELECT 'Sale ' || i, '{"tag": "母婴人群"}', 'mother_and_baby', 'flash_sale_push', 'push',
           'marketing', :now - i * interval '1 day', 'completed', 'broadcast:' || i,
           :now - i * interval '1 day', :now - i * interval '1 day', 100000, 0
    FROM generate_series(1, 30) AS i
    """,
]


# The migrated schema's indexes and constraints: their definitions as PostgreSQL prints them.
INDEXES = """
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
ORDER BY indexname
"""
CONSTRAINTS = """
SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace
WHERE n.nspname = current_schema() AND c.contype IN ('p', 'u', 'f')
ORDER BY c.contype = 'f', c.conname
"""


def seed(engine: Engine, now: Any) -> None:
    """Fill the store behind ``engine`` and refresh the planner's statistics.

    Rows go in with the indexes and keys set aside, which are then built again from their
    own definitions (a sorted build is several times faster than a million inserts into
    each); the schema afterwards is the migrated one, checked index by index.
    """
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        indexes = conn.exec_driver_sql(INDEXES).all()
        constraints = conn.exec_driver_sql(CONSTRAINTS).all()
        owned = {name for _table, name, _kind, _definition in constraints}
        for table, name, _kind, _definition in reversed(constraints):  # foreign keys first
            conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            if name not in owned:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
        for statement in SEED:
            conn.execute(sa.text(statement), {"now": now})
        for table, name, _kind, definition in constraints:
            conn.exec_driver_sql(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            if name not in owned:
                conn.exec_driver_sql(definition)
        assert conn.exec_driver_sql(INDEXES).all() == indexes
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")


@dataclass
class Captured:
    """One statement a page ran, with its parameters and (once explained) its plan."""

    sql: str
    parameters: Any
    plan: dict[str, Any] = field(default_factory=dict)
    # The plan as run (``EXPLAIN ANALYZE``), for the statements whose reads are measured.
    run: dict[str, Any] = field(default_factory=dict)


@contextmanager
def capturing(engine: Engine) -> Iterator[list[Captured]]:
    """Every statement run on ``engine`` (in any thread) while the block runs."""
    seen: list[Captured] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append(Captured(statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(engine: Engine, captured: Captured, *, run: bool = False) -> dict[str, Any]:
    """The planner's plan (``EXPLAIN (FORMAT JSON)``) of a captured statement; when ``run``,
    the statement is run and the plan has each node's actual rows (``EXPLAIN ANALYZE``)."""
    options = "ANALYZE, FORMAT JSON" if run else "FORMAT JSON"
    with engine.connect() as conn:
        raw = conn.exec_driver_sql(f"EXPLAIN ({options}) {captured.sql}", captured.parameters)
        document = raw.scalar_one()
    plans = json.loads(document) if isinstance(document, str) else document
    return dict(plans[0]["Plan"])


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a plan, the root first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def scans(plan: dict[str, Any]) -> list[str]:
    """How each table is read: ``Index Scan messages (ix_messages_user_sent)``; a bitmap
    heap scan follows the ``Bitmap Index Scan (its index)`` it reads."""
    found = []
    for node in nodes(plan):
        relation, index = node.get("Relation Name"), node.get("Index Name")
        if relation is None and index is None:
            continue
        kind = ("Parallel " if node.get("Parallel Aware") else "") + node["Node Type"]
        found.append(" ".join(filter(None, (kind, relation, index and f"({index})"))))
    return found


def seq_scanned(plan: dict[str, Any]) -> set[str]:
    """The tables the plan reads whole."""
    return {n["Relation Name"] for n in nodes(plan) if n["Node Type"] == "Seq Scan"}


def rows_read(plan: dict[str, Any], table: str) -> int:
    """How many rows of ``table`` a plan that was run read: what each of its scans of the
    table returned and what it threw away (filtered out, or rechecked), over all its loops."""
    return sum(
        (
            node["Actual Rows"]
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        * node["Actual Loops"]
        for node in nodes(plan)
        if node.get("Relation Name") == table
    )

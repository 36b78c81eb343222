"""The baseline: each shipped audience's question as a person would write it in SQL.

Written for the data the platform sends (``total`` is a number, ``cart_id`` and ``category``
are text), idiomatic and as fast as we know how for each database. Every value is a bound
parameter; instants are given by :func:`params`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

POSTGRESQL = {
    "new_users_7d": """
        SELECT count(DISTINCT s.user_id) FROM events s JOIN users u ON u.id = s.user_id
        WHERE s.event = 'user_signed_up'
          AND s.timestamp >= :now - interval '7 days' AND s.timestamp <= :now
          AND NOT EXISTS (SELECT 1 FROM events e
                          WHERE e.user_id = u.id AND e.event = 'order_placed'
                            AND e.timestamp <= :now)
    """,
    "dormant_30d": """
        SELECT count(*) FROM users u
        LEFT JOIN (SELECT user_id, bool_or(channel = 'push') AS push_off,
                          bool_or(channel = 'sms') AS sms_off
                   FROM consents
                   WHERE topic = 'marketing' AND status = 'unsubscribed'
                     AND channel IN ('push', 'sms')
                   GROUP BY user_id) c ON c.user_id = u.id
        LEFT JOIN (SELECT DISTINCT user_id FROM push_tokens) p ON p.user_id = u.id
        WHERE (u.last_seen_at IS NULL OR u.last_seen_at < :now - interval '30 days')
          AND ((p.user_id IS NOT NULL AND c.push_off IS NOT TRUE)
            OR (u.phone <> '' AND c.sms_off IS NOT TRUE))
    """,
    "cart_abandoners": """
        SELECT count(*) FROM users u
        WHERE EXISTS (
          SELECT 1 FROM events c
          WHERE c.user_id = u.id AND c.event = 'cart_updated'
            AND c.timestamp >= :now - interval '7 days' AND c.timestamp <= :now
            AND c.properties ? 'cart_id'
            AND NOT EXISTS (SELECT 1 FROM events o
                            WHERE o.user_id = c.user_id AND o.event = 'order_placed'
                              AND o.timestamp >= c.timestamp AND o.timestamp <= :now
                              AND o.properties ->> 'cart_id' = c.properties ->> 'cart_id'))
    """,
    "coupons_expiring_48h": """
        SELECT count(DISTINCT user_id) FROM coupons
        WHERE redeemed_at IS NULL AND expires_at > :now AND expires_at <= :now + interval '48 hours'
    """,
    "high_value": """
        SELECT count(*) FROM users u
        JOIN (SELECT user_id FROM events
              WHERE event = 'order_placed'
                AND timestamp >= :now - interval '90 days' AND timestamp <= :now
              GROUP BY user_id
              HAVING count(*) >= 3 OR sum((properties ->> 'total')::float8) >= 2000) o
          ON o.user_id = u.id
    """,
    "mother_and_baby": """
        SELECT count(*) FROM (
          SELECT id FROM users WHERE tags @> '["母婴人群"]'
          UNION
          SELECT e.user_id FROM events e
          WHERE e.event = 'order_placed'
            AND e.timestamp >= :now - interval '180 days' AND e.timestamp <= :now
            AND e.properties ->> 'category' = 'mother_baby'
            AND EXISTS (SELECT 1 FROM users u WHERE u.id = e.user_id)
        ) m
    """,
}

SQLITE = {
    "new_users_7d": """
        SELECT count(DISTINCT s.user_id) FROM events s JOIN users u ON u.id = s.user_id
        WHERE s.event = 'user_signed_up' AND s.timestamp >= :since_7d AND s.timestamp <= :now
          AND NOT EXISTS (SELECT 1 FROM events e
                          WHERE e.user_id = u.id AND e.event = 'order_placed'
                            AND e.timestamp <= :now)
    """,
    "dormant_30d": """
        SELECT count(*) FROM users u
        WHERE (u.last_seen_at IS NULL OR u.last_seen_at < :since_30d)
          AND ((EXISTS (SELECT 1 FROM push_tokens p WHERE p.user_id = u.id)
                AND NOT EXISTS (SELECT 1 FROM consents c
                                WHERE c.user_id = u.id AND c.channel = 'push'
                                  AND c.topic = 'marketing' AND c.status = 'unsubscribed'))
            OR (u.phone <> ''
                AND NOT EXISTS (SELECT 1 FROM consents c
                                WHERE c.user_id = u.id AND c.channel = 'sms'
                                  AND c.topic = 'marketing' AND c.status = 'unsubscribed')))
    """,
    "cart_abandoners": """
        SELECT count(*) FROM users u
        WHERE EXISTS (
          SELECT 1 FROM events c
          WHERE c.user_id = u.id AND c.event = 'cart_updated'
            AND c.timestamp >= :since_7d AND c.timestamp <= :now
            AND json_extract(c.properties, '$.cart_id') IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM events o
                            WHERE o.user_id = c.user_id AND o.event = 'order_placed'
                              AND o.timestamp >= c.timestamp AND o.timestamp <= :now
                              AND json_extract(o.properties, '$.cart_id')
                                  = json_extract(c.properties, '$.cart_id')))
    """,
    "coupons_expiring_48h": """
        SELECT count(DISTINCT user_id) FROM coupons
        WHERE redeemed_at IS NULL AND expires_at > :now AND expires_at <= :until_48h
    """,
    "high_value": """
        SELECT count(*) FROM users u
        WHERE u.id IN (SELECT user_id FROM events
                       WHERE event = 'order_placed'
                         AND timestamp >= :since_90d AND timestamp <= :now
                       GROUP BY user_id
                       HAVING count(*) >= 3 OR sum(json_extract(properties, '$.total')) >= 2000)
    """,
    "mother_and_baby": """
        SELECT count(*) FROM users u
        WHERE EXISTS (SELECT 1 FROM json_each(u.tags) t WHERE t.value = '母婴人群')
           OR u.id IN (SELECT user_id FROM events
                       WHERE event = 'order_placed'
                         AND timestamp >= :since_180d AND timestamp <= :now
                         AND json_extract(properties, '$.category') = 'mother_baby')
    """,
}

QUERIES = {"postgresql": POSTGRESQL, "sqlite": SQLITE}


def params(dialect: str, now: datetime) -> dict[str, Any]:
    """Bound parameters for the queries of ``dialect`` at ``now``.

    SQLite stores instants as naive UTC text in SQLAlchemy's format, so they are given as
    such text; PostgreSQL takes the instant itself.
    """
    if dialect == "postgresql":
        return {"now": now}
    now = now.astimezone(UTC)
    offsets = {
        "now": timedelta(0),
        "since_7d": -timedelta(days=7),
        "since_30d": -timedelta(days=30),
        "since_90d": -timedelta(days=90),
        "since_180d": -timedelta(days=180),
        "until_48h": timedelta(hours=48),
    }
    return {k: (now + d).strftime("%Y-%m-%d %H:%M:%S.%f") for k, d in offsets.items()}

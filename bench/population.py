"""A synthetic shop population, generated inside the database (no Python row loops).

One shape on both dialects, so the audiences see the same kind of data everywhere:

- users sign up over the last two years, more of them lately (signup density grows linearly);
  ids ``u00000001`` … follow signup order; ~3 % were never seen, ~30 % in all have not been
  seen for 30 days, the others were seen lately (skewed towards ``now``);
- most have an email and a phone (a few empty), ~1/3 of the seen ones a push token or two,
  ~10 % carry the tag 母婴人群, member tiers 普通 > 银卡 > 金卡 > 钻石;
- consents: a minority of users have rows, ~45 % of those say ``unsubscribed``;
- coupons (¥20 off ¥50, valid 7 days) issued over the last 60 days, ~30 % redeemed, so some
  expire around ``now``;
- events: one ``user_signed_up`` per seen user, then a heavy-tailed number of
  ``session_started`` / ``product_viewed`` / ``cart_updated`` (``cart_id``) / ``order_placed``
  (``total`` 20–3000, ``category``, ``cart_id``) / ``coupon_redeemed`` between signup and
  last seen, stored in time order as an append-only table would be. A cart is the user's
  3-day bucket: an order closes the cart updates of its bucket that came before it.

Tables are loaded with their indexes and constraints detached and rebuilt afterwards (the
usual bulk-load practice); the rebuilt schema is exactly the migrated one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, text

TABLES = ("users", "events", "consents", "coupons", "push_tokens")
CART_BUCKET_SECONDS = 3 * 86400
GAMMA_2_5 = 1.329340388  # E[(-ln U) ** 1.5] for U uniform on (0, 1]
ORDER_CATEGORIES = (
    # (category, cumulative probability) for orders of users without the 母婴 tag
    ("apparel", 0.22),
    ("beauty", 0.40),
    ("electronics", 0.52),
    ("groceries", 0.70),
    ("mother_baby", 0.80),
    ("home", 0.92),
    ("sports", 1.0),
)
Progress = Callable[[str], None]


def _case(var: str, choices: tuple[tuple[str, float], ...]) -> str:
    """``CASE WHEN var < p1 THEN 'a' ...``: a categorical draw from a uniform ``var``."""
    arms = " ".join(f"WHEN {var} < {p} THEN '{value}'" for value, p in choices[:-1])
    return f"CASE {arms} ELSE '{choices[-1][0]}' END"


CATEGORY = _case("r_b", ORDER_CATEGORIES)
VIEW_CATEGORY = _case("r_b", tuple((c, (i + 1) / 7) for i, (c, _) in enumerate(ORDER_CATEGORIES)))
TIER = "CASE WHEN r_tier < 0.60 THEN '普通' WHEN r_tier < 0.85 THEN '银卡' \
WHEN r_tier < 0.95 THEN '金卡' WHEN r_tier < 0.98 THEN '钻石' END"
LOCALE = "CASE WHEN r_loc < 0.85 THEN 'zh-CN' WHEN r_loc < 0.93 THEN 'en-US' \
WHEN r_loc < 0.97 THEN 'zh-TW' END"
TIMEZONE = "CASE WHEN r_loc < 0.85 THEN 'Asia/Shanghai' \
WHEN r_loc < 0.93 THEN 'America/Los_Angeles' WHEN r_loc < 0.97 THEN 'Asia/Taipei' END"
KIND = "CASE WHEN r_kind < 0.40 THEN 'session_started' WHEN r_kind < 0.73 THEN 'product_viewed' \
WHEN r_kind < 0.88 THEN 'cart_updated' WHEN r_kind < 0.96 THEN 'order_placed' \
ELSE 'coupon_redeemed' END"
TAGS = "CASE WHEN r_tag < 0.08 THEN '[\"母婴人群\"]' \
WHEN r_tag < 0.10 THEN '[\"母婴人群\", \"高消费\"]' \
WHEN r_tag < 0.15 THEN '[\"学生\"]' WHEN r_tag < 0.20 THEN '[\"高消费\"]' ELSE '[]' END"
CITIES = "上海 北京 广州 深圳 杭州 成都 武汉 南京".split()


class Timer:
    """Prints each step with its duration."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def step(self, label: str, run: Callable[[], object]) -> None:
        started = time.perf_counter()
        run()
        self.progress(f"  {label:<44} {time.perf_counter() - started:7.1f} s")


# --- PostgreSQL ---------------------------------------------------------------------------

PG_USERS = f"""
INSERT INTO users (id, anonymous_id, email, phone, locale, timezone, member_tier, traits, tags,
                   created_at, last_seen_at, updated_at)
SELECT id, anonymous_id, email, phone, locale, timezone, member_tier, traits, tags,
       created_at, last_seen_at, coalesce(last_seen_at, created_at)
FROM (
  SELECT g.*,
    CASE
      WHEN r_seen < 0.03 THEN NULL
      WHEN r_seen < 0.32 AND created_at < :now - interval '30 days'
        THEN created_at + (:now - interval '30 days' - created_at) * r_when
      ELSE :now - (:now - greatest(created_at, :now - interval '30 days')) * r_when * r_when
    END AS last_seen_at,
    CASE WHEN r_mail < 0.90 THEN format('user%s@example.com', i)
         WHEN r_mail < 0.92 THEN '' END AS email,
    CASE WHEN r_phone < 0.85 THEN '+86' || (13000000000 + floor(r_phone * 6e9)::bigint)
         WHEN r_phone < 0.86 THEN '' END AS phone,
    {LOCALE} AS locale,
    {TIMEZONE} AS timezone,
    {TIER} AS member_tier,
    jsonb_build_object('city', (ARRAY{CITIES!r})[1 + floor(r_city * {len(CITIES)})::int],
                       'age', 18 + floor(r_age * 45)::int,
                       'vip', r_age < 0.05) AS traits,
    ({TAGS})::jsonb AS tags,
    CASE WHEN r_anon < 0.3 THEN gen_random_uuid()::text END AS anonymous_id
  FROM (
    SELECT i, format('u%s', lpad(i::text, 8, '0')) AS id,
      :now - interval '730 days' * (1 - sqrt(i::float8 / :users)) AS created_at,
      random() AS r_seen, random() AS r_when, random() AS r_mail, random() AS r_phone,
      random() AS r_loc, random() AS r_tier, random() AS r_city, random() AS r_age,
      random() AS r_tag, random() AS r_anon
    FROM generate_series(1, :users) AS i
    OFFSET 0
  ) g
) u
"""

PG_EVENTS = f"""
INSERT INTO events (message_id, type, user_id, event, properties, context, timestamp,
                    received_at, routed_at)
SELECT gen_random_uuid()::text, 'track', user_id, event, properties, '{{}}'::jsonb, ts,
       ts + interval '2 seconds' * r_lag, ts + interval '2 seconds' * r_lag
FROM (
  SELECT user_id, 'user_signed_up' AS event, ts, random() AS r_lag,
         jsonb_build_object('channel', (ARRAY['organic', 'ads', 'referral'])
                                       [1 + floor(random() * 3)::int]) AS properties
  FROM (SELECT id AS user_id, created_at AS ts FROM users WHERE last_seen_at IS NOT NULL) s
  UNION ALL
  SELECT user_id, event, ts, r_lag,
    CASE event
      WHEN 'session_started' THEN jsonb_build_object(
        'platform', (ARRAY['ios', 'android', 'web'])[1 + floor(r_a * 3)::int])
      WHEN 'product_viewed' THEN jsonb_build_object(
        'product_id', 'p' || floor(r_a * 20000)::int, 'category', {VIEW_CATEGORY})
      WHEN 'cart_updated' THEN jsonb_build_object(
        'cart_id', cart_id, 'product_id', 'p' || floor(r_a * 20000)::int,
        'quantity', 1 + floor(r_b * 3)::int)
      WHEN 'order_placed' THEN jsonb_build_object(
        'order_id', 'o' || substr(user_id, 2) || '-' || floor(r_a * 1e6)::int,
        'total', round((20 + 2980 * power(r_a, 3)) * 2) / 2,
        'category', CASE WHEN mb AND r_c < 0.4 THEN 'mother_baby' ELSE {CATEGORY} END,
        'cart_id', cart_id)
      ELSE jsonb_build_object('coupon_code', 'CP' || floor(r_a * 1e6)::int)
    END AS properties
  FROM (
    SELECT user_id, mb, ts, r_a, r_b, r_c, r_lag, {KIND} AS event,
      format('c%s-%s', substr(user_id, 2),
             floor(extract(epoch FROM ts) / {CART_BUCKET_SECONDS})::bigint) AS cart_id
    FROM (
      SELECT u.id AS user_id, u.mb,
        u.created_at + (u.last_seen_at - u.created_at) * random() AS ts,
        random() AS r_kind, random() AS r_a, random() AS r_b, random() AS r_c, random() AS r_lag
      FROM (
        SELECT id, created_at, last_seen_at, tags @> '["母婴人群"]' AS mb,
          floor(:scale * power(-ln(1 - random()), 1.5) + 0.5)::int AS k
        FROM users WHERE last_seen_at IS NOT NULL
        OFFSET 0
      ) u
      CROSS JOIN LATERAL generate_series(1, u.k) AS n
      OFFSET 0
    ) r
  ) t
) e
ORDER BY ts
"""

PG_PUSH_TOKENS = """
INSERT INTO push_tokens (user_id, token, platform, created_at)
SELECT u.id, 'fcm:' || md5(u.id || ':' || n) || md5(n || ':' || u.id),
       (ARRAY['ios', 'android', 'web'])[1 + floor(random() * 3)::int],
       u.created_at + (u.last_seen_at - u.created_at) * random()
FROM (
  SELECT id, created_at, last_seen_at,
         CASE WHEN r < 0.30 THEN 1 WHEN r < 0.35 THEN 2 ELSE 0 END AS k
  FROM (SELECT *, random() AS r FROM users WHERE last_seen_at IS NOT NULL OFFSET 0) s
) u
CROSS JOIN LATERAL generate_series(1, u.k) AS n
"""

PG_CONSENTS = """
INSERT INTO consents (user_id, channel, topic, status, source, updated_at)
SELECT u.id, c.channel, c.topic,
       CASE WHEN random() < 0.45 THEN 'unsubscribed' ELSE 'subscribed' END,
       'bench', u.updated_at
FROM (SELECT id, updated_at, random() AS r1, random() AS r2, random() AS r3, random() AS r4
      FROM users OFFSET 0) u
CROSS JOIN LATERAL (VALUES ('sms', 'marketing', u.r1 < 0.10),
                           ('email', 'marketing', u.r2 < 0.12),
                           ('push', 'marketing', u.r3 < 0.10),
                           ('sms', 'transactional', u.r4 < 0.02)) AS c (channel, topic, picked)
WHERE c.picked
"""

PG_COUPONS = """
INSERT INTO coupons (issue_key, code, user_id, journey_id, amount_fen, min_spend_fen,
                     issued_at, expires_at, redeemed_at)
SELECT format('bench:%s:%s', user_id, n), format('CP%s%s', substr(user_id, 2), n), user_id,
       journey_id, 2000, 5000, issued_at, issued_at + interval '7 days',
       CASE WHEN r_red < 0.3 AND issued_at + interval '7 days' * r_when <= :now
            THEN issued_at + interval '7 days' * r_when END
FROM (
  SELECT u.id AS user_id, n,
    (ARRAY['new_user_coupon', 'winback', 'cart_reminder'])[1 + floor(random() * 3)::int]
      AS journey_id,
    u.since + (:now - u.since) * random() AS issued_at,
    random() AS r_red, random() AS r_when
  FROM (
    SELECT id, greatest(created_at, :now - interval '60 days') AS since,
      CASE WHEN r < 0.60 THEN 0 WHEN r < 0.85 THEN 1 WHEN r < 0.95 THEN 2 ELSE 3 END AS k
    FROM (SELECT *, random() AS r FROM users OFFSET 0) s
  ) u
  CROSS JOIN LATERAL generate_series(1, u.k) AS n
  OFFSET 0
) c
"""


def _pg_detach(conn: Connection) -> list[str]:
    """Drop the bulk-loaded tables' constraints and indexes; return the DDL that restores them."""
    tables = list(TABLES)
    constraints = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace "
            "AND contype IN ('p', 'u', 'f') AND conrelid::regclass::text = ANY(:t)"
        ),
        {"t": tables},
    ).all()
    indexes = conn.execute(
        text(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
            "WHERE indrelid::regclass::text = ANY(:t) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "                WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u'))"
        ),
        {"t": tables},
    ).all()
    foreign = [c for c in constraints if c[2] == "f"]
    owned = [c for c in constraints if c[2] != "f"]
    for table, name, _, _ in foreign + owned:
        conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    restore = [f'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" {d}' for t, n, _, d in owned]
    restore += [ddl for _, ddl in indexes]
    restore += [f'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" {d}' for t, n, _, d in foreign]
    return restore


def generate_postgresql(
    conn: Connection, *, users: int, events: int, now: datetime, seed: float, progress: Progress
) -> None:
    """Fill the (empty, migrated) schema behind ``conn``; the caller commits."""
    timer = Timer(progress)
    # Loading only: no waiting on WAL flushes, room to sort for the index builds.
    for setting in ("synchronous_commit = off", "maintenance_work_mem = '1GB'"):
        conn.execute(text(f"SET LOCAL {setting}"))
    conn.execute(text("SET LOCAL work_mem = '256MB'"))
    conn.execute(text("SELECT setseed(:s)"), {"s": seed})
    restore = _pg_detach(conn)
    params = {"now": now, "users": users}
    timer.step(f"users ({users:,})", lambda: conn.execute(text(PG_USERS), params))
    seen = conn.scalar(text("SELECT count(*) FROM users WHERE last_seen_at IS NOT NULL")) or 1
    scale = max(events - seen, 0) / seen / GAMMA_2_5
    timer.step(
        f"events (~{events:,}, time order)",
        lambda: conn.execute(text(PG_EVENTS), {"now": now, "scale": scale}),
    )
    timer.step("push tokens", lambda: conn.execute(text(PG_PUSH_TOKENS)))
    timer.step("consents", lambda: conn.execute(text(PG_CONSENTS)))
    timer.step("coupons", lambda: conn.execute(text(PG_COUPONS), {"now": now}))
    timer.step(
        f"indexes and constraints ({len(restore)})",
        lambda: [conn.execute(text(ddl)) for ddl in restore],
    )


# --- SQLite -------------------------------------------------------------------------------
# Same distributions; instants are computed as Unix seconds and stored as the naive UTC text
# SQLAlchemy writes ('YYYY-MM-DD HH:MM:SS.ffffff'). Each draw is materialized once per row.

R = "(random() / 18446744073709551616.0 + 0.5)"


def _ts(expr: str) -> str:
    return f"(strftime('%Y-%m-%d %H:%M:%S', {expr}, 'unixepoch') || '.000000')"


CITY = _case("r_city", tuple((c, (i + 1) / len(CITIES)) for i, c in enumerate(CITIES)))

LITE_BASE = f"""
CREATE TEMP TABLE bench_u AS
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :users),
g AS MATERIALIZED (
  SELECT i, printf('u%08d', i) AS id,
    :now - 730 * 86400 * (1 - sqrt(i * 1.0 / :users)) AS created,
    {R} AS r_seen, {R} AS r_when, {R} AS r_mail, {R} AS r_phone, {R} AS r_loc, {R} AS r_tier,
    {R} AS r_city, {R} AS r_age, {R} AS r_tag, {R} AS r_anon, {R} AS r_k, {R} AS r_push,
    {R} AS r_coupon
  FROM seq
)
SELECT *,
  CASE WHEN r_seen < 0.03 THEN NULL
       WHEN r_seen < 0.32 AND created < :now - 30 * 86400
         THEN created + (:now - 30 * 86400 - created) * r_when
       ELSE :now - (:now - max(created, :now - 30 * 86400)) * r_when * r_when
  END AS seen,
  r_tag < 0.10 AS mb, 0 AS k
FROM g
"""

LITE_USERS = f"""
INSERT INTO users (id, anonymous_id, email, phone, locale, timezone, member_tier, traits, tags,
                   created_at, last_seen_at, updated_at)
SELECT id, CASE WHEN r_anon < 0.3 THEN lower(hex(randomblob(16))) END,
  CASE WHEN r_mail < 0.90 THEN printf('user%d@example.com', i) WHEN r_mail < 0.92 THEN '' END,
  CASE WHEN r_phone < 0.85 THEN '+86' || (13000000000 + CAST(r_phone * 6e9 AS INTEGER))
       WHEN r_phone < 0.86 THEN '' END,
  {LOCALE}, {TIMEZONE}, {TIER},
  json_object('city', {CITY}, 'age', 18 + CAST(r_age * 45 AS INTEGER),
              'vip', json(CASE WHEN r_age < 0.05 THEN 'true' ELSE 'false' END)),
  {TAGS}, {_ts("created")}, CASE WHEN seen IS NOT NULL THEN {_ts("seen")} END,
  {_ts("coalesce(seen, created)")}
FROM bench_u
"""

LITE_EVENTS = f"""
INSERT INTO events (message_id, type, user_id, event, properties, context, timestamp,
                    received_at, routed_at)
WITH r AS MATERIALIZED (
  SELECT u.id AS user_id, u.mb, u.created + (u.seen - u.created) * {R} AS ts,
    {R} AS r_kind, {R} AS r_a, {R} AS r_b, {R} AS r_c, {R} AS r_lag
  FROM bench_u u JOIN nums ON nums.n <= u.k
  WHERE u.seen IS NOT NULL
), t AS (
  SELECT user_id, mb, ts, r_a, r_b, r_c, r_lag, {KIND} AS event,
    printf('c%s-%d', substr(user_id, 2), CAST(ts / {CART_BUCKET_SECONDS} AS INTEGER)) AS cart_id
  FROM r
), e AS (
  SELECT id AS user_id, 'user_signed_up' AS event, created AS ts, {R} AS r_lag,
    json_object('channel', CASE CAST({R} * 3 AS INTEGER) WHEN 0 THEN 'organic'
                                WHEN 1 THEN 'ads' ELSE 'referral' END) AS properties
  FROM bench_u WHERE seen IS NOT NULL
  UNION ALL
  SELECT user_id, event, ts, r_lag,
    CASE event
      WHEN 'session_started' THEN json_object(
        'platform', CASE CAST(r_a * 3 AS INTEGER) WHEN 0 THEN 'ios' WHEN 1 THEN 'android'
                    ELSE 'web' END)
      WHEN 'product_viewed' THEN json_object(
        'product_id', 'p' || CAST(r_a * 20000 AS INTEGER), 'category', {VIEW_CATEGORY})
      WHEN 'cart_updated' THEN json_object(
        'cart_id', cart_id, 'product_id', 'p' || CAST(r_a * 20000 AS INTEGER),
        'quantity', 1 + CAST(r_b * 3 AS INTEGER))
      WHEN 'order_placed' THEN json_object(
        'order_id', 'o' || substr(user_id, 2) || '-' || CAST(r_a * 1e6 AS INTEGER),
        'total', round((20 + 2980 * pow(r_a, 3)) * 2) / 2.0,
        'category', CASE WHEN mb AND r_c < 0.4 THEN 'mother_baby' ELSE {CATEGORY} END,
        'cart_id', cart_id)
      ELSE json_object('coupon_code', 'CP' || CAST(r_a * 1e6 AS INTEGER))
    END
  FROM t
)
SELECT lower(hex(randomblob(16))), 'track', user_id, event, properties, '{{}}', {_ts("ts")},
       {_ts("ts + 2 * r_lag")}, {_ts("ts + 2 * r_lag")}
FROM e ORDER BY ts
"""

LITE_PUSH_TOKENS = f"""
INSERT INTO push_tokens (user_id, token, platform, created_at)
WITH u AS MATERIALIZED (
  SELECT id, created, seen,
         CASE WHEN r_push < 0.30 THEN 1 WHEN r_push < 0.35 THEN 2 ELSE 0 END AS k
  FROM bench_u WHERE seen IS NOT NULL
)
SELECT u.id, 'fcm:' || lower(hex(randomblob(32))),
  CASE CAST({R} * 3 AS INTEGER) WHEN 0 THEN 'ios' WHEN 1 THEN 'android' ELSE 'web' END,
  {_ts(f"u.created + (u.seen - u.created) * {R}")}
FROM u JOIN nums ON nums.n <= u.k
"""

LITE_CONSENTS = f"""
INSERT INTO consents (user_id, channel, topic, status, source, updated_at)
WITH u AS MATERIALIZED (
  SELECT id, {_ts("coalesce(seen, created)")} AS updated_at,
         {R} AS r1, {R} AS r2, {R} AS r3, {R} AS r4
  FROM bench_u
), c AS (
  SELECT id, 'sms' AS channel, 'marketing' AS topic, updated_at FROM u WHERE r1 < 0.10
  UNION ALL SELECT id, 'email', 'marketing', updated_at FROM u WHERE r2 < 0.12
  UNION ALL SELECT id, 'push', 'marketing', updated_at FROM u WHERE r3 < 0.10
  UNION ALL SELECT id, 'sms', 'transactional', updated_at FROM u WHERE r4 < 0.02
)
SELECT id, channel, topic, CASE WHEN {R} < 0.45 THEN 'unsubscribed' ELSE 'subscribed' END,
       'bench', updated_at
FROM c
"""

LITE_COUPONS = f"""
INSERT INTO coupons (issue_key, code, user_id, journey_id, amount_fen, min_spend_fen,
                     issued_at, expires_at, redeemed_at)
WITH u AS MATERIALIZED (
  SELECT id, max(created, :now - 60 * 86400) AS since,
    CASE WHEN r_coupon < 0.60 THEN 0 WHEN r_coupon < 0.85 THEN 1 WHEN r_coupon < 0.95 THEN 2
         ELSE 3 END AS k
  FROM bench_u
), c AS MATERIALIZED (
  SELECT u.id AS user_id, nums.n,
    CASE CAST({R} * 3 AS INTEGER) WHEN 0 THEN 'new_user_coupon' WHEN 1 THEN 'winback'
         ELSE 'cart_reminder' END AS journey_id,
    u.since + (:now - u.since) * {R} AS issued, {R} AS r_red, {R} AS r_when
  FROM u JOIN nums ON nums.n <= u.k
)
SELECT printf('bench:%s:%d', user_id, n), printf('CP%s%d', substr(user_id, 2), n), user_id,
  journey_id, 2000, 5000, {_ts("issued")}, {_ts("issued + 7 * 86400")},
  CASE WHEN r_red < 0.3 AND issued + 7 * 86400 * r_when <= :now
       THEN {_ts("issued + 7 * 86400 * r_when")} END
FROM c
"""


def generate_sqlite(
    conn: Connection, *, users: int, events: int, now: datetime, progress: Progress
) -> None:
    """Fill the (empty, migrated) SQLite database behind ``conn``; the caller commits."""
    timer = Timer(progress)
    epoch = now.timestamp()
    names = ", ".join(f"'{t}'" for t in TABLES)
    indexes = conn.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({names})"
        )
    ).all()
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    timer.step(
        "per-user draws", lambda: conn.execute(text(LITE_BASE), {"now": epoch, "users": users})
    )
    seen = conn.scalar(text("SELECT count(*) FROM bench_u WHERE seen IS NOT NULL")) or 1
    scale = max(events - seen, 0) / seen / GAMMA_2_5
    conn.execute(
        text("UPDATE bench_u SET k = CAST(:scale * pow(-ln(1 - r_k), 1.5) + 0.5 AS INTEGER)"),
        {"scale": scale},
    )
    most = conn.scalar(text("SELECT max(max(k), 3) FROM bench_u")) or 3
    conn.execute(text("CREATE TEMP TABLE nums (n INTEGER PRIMARY KEY)"))
    conn.execute(
        text(
            "INSERT INTO nums WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL "
            "SELECT n + 1 FROM s WHERE n < :most) SELECT n FROM s"
        ),
        {"most": most},
    )
    timer.step(f"users ({users:,})", lambda: conn.execute(text(LITE_USERS)))
    timer.step(f"events (~{events:,}, time order)", lambda: conn.execute(text(LITE_EVENTS)))
    timer.step("push tokens", lambda: conn.execute(text(LITE_PUSH_TOKENS)))
    timer.step("consents", lambda: conn.execute(text(LITE_CONSENTS)))
    timer.step("coupons", lambda: conn.execute(text(LITE_COUPONS), {"now": epoch}))
    timer.step(f"indexes ({len(indexes)})", lambda: [conn.execute(text(sql)) for _, sql in indexes])
    conn.execute(text("DROP TABLE bench_u"))
    conn.execute(text("DROP TABLE nums"))

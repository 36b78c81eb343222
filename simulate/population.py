"""A synthetic population and what its users do each day, as Segment calls.

Users differ the way a real audience does: timezones (mostly China, some abroad), locales,
member tiers, contact details that are sometimes missing, marketing consent sometimes
withdrawn. Some sign up during the simulation, some are active customers, some have not been
seen for weeks (dormant). Every draw comes from a ``random.Random`` seeded by the run's seed
and the user (and day), so a seed replays the same population doing the same things.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kinds import all_kinds
from simulate.behaviour import Behaviour

# (IANA zone, share of users, share of them who read English)
ZONES = [
    ("Asia/Shanghai", 0.70, 0.05),
    ("Asia/Hong_Kong", 0.08, 0.3),
    ("Asia/Singapore", 0.07, 0.5),
    ("America/Los_Angeles", 0.05, 0.8),
    ("America/New_York", 0.05, 0.8),
    ("Europe/London", 0.05, 0.9),
]
TIERS = [("普通", 0.6), ("银卡", 0.25), ("金卡", 0.12), ("钻石", 0.03)]
NAMES_ZH = ["小王", "小李", "阿敏", "晓雯", "大刘", ""]
NAMES_EN = ["Alex", "Sam", "Jo", "Kim", ""]
# How a day's activity spreads over the local hours 0-23: mostly daytime and evening, a
# little at night (whose messages quiet hours hold until morning).
HOUR_WEIGHTS = [
    *[0.6, 0.3, 0.2, 0.1, 0.1, 0.2, 0.5],  # 00-06
    *[1.0, 1.5, 2.0, 2.0, 2.0, 3.0, 3.0],  # 07-13
    *[2.0, 2.0, 2.0, 2.0, 3.0, 4.0, 5.0],  # 14-20
    *[5.0, 4.0, 2.0],  # 21-23
]
PRODUCTS = [
    ("p_101", "保温杯 500ml", 9900, "home"),
    ("p_205", "兰蔻小黑瓶精华 50ml", 76000, "beauty"),
    ("p_318", "帮宝适纸尿裤 L码", 12900, "mother_baby"),
    ("p_422", "无线降噪耳机", 59900, "digital"),
    ("p_530", "有机燕麦片 1kg", 4590, "food"),
]
# Reachability and consent: the share of users with each contact, and who opted out.
HAS = {"phone": 0.9, "email": 0.7, "push": 0.75}
# By channel kind (the identify trait ``unsubscribed_<kind>``).
UNSUBSCRIBED = {"sms": 0.05, "email": 0.08, "push": 0.1}


# A coupon a user holds: code, amount and minimum spend in fen, expiry.
HeldCoupon = tuple[str, int, int, datetime]


def _pick(rng: random.Random, weighted: list[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


@dataclass
class Person:
    """One synthetic user, and what the simulation remembers about them between days."""

    user_id: str
    kind: str  # new | active | dormant
    timezone: str
    traits: dict[str, Any]
    signup_at: datetime | None = None  # newcomers: when they sign up
    last_seen: datetime | None = None  # existing users: their last visit before the run
    dormant: bool = False
    open_cart: str | None = None
    carts: int = 0
    orders: int = 0
    # Coupons platform campaigns gave them (journeys' coupons are in the database).
    coupons: list[HeldCoupon] = field(default_factory=list)

    def signed_up_by(self, at: datetime) -> bool:
        return self.signup_at is None or self.signup_at < at


def make_population(
    seed: int, size: int, behaviour: Behaviour, *, start: datetime, days: int
) -> list[Person]:
    """``size`` users; newcomers sign up at a local-daytime-weighted hour of one of the first
    ``days`` days after ``start`` (a UTC midnight)."""
    rng = random.Random(f"{seed}:population")  # noqa: S311 - a reproducible simulation
    shares = behaviour.population
    people = []
    for i in range(size):
        zone, english = _pick(rng, [((z, e), w) for z, w, e in ZONES])
        en = rng.random() < english
        traits: dict[str, Any] = {
            "name": rng.choice(NAMES_EN if en else NAMES_ZH),
            "locale": "en" if en else "zh-CN",
            "timezone": zone,
            "member_tier": _pick(rng, TIERS),
        }
        if rng.random() < HAS["phone"]:
            traits["phone"] = f"+86138{rng.randrange(10**8):08d}"
        if rng.random() < HAS["email"]:
            traits["email"] = f"sim{i:05d}@example.com"
        if rng.random() < HAS["push"]:
            traits["push_token"] = f"fcm-sim-{seed}-{i:05d}"
            traits["push_platform"] = rng.choice(["android", "ios"])
        for described in all_kinds():  # a kind the simulation has no share for: subscribed
            if described.name in UNSUBSCRIBED:
                traits[f"unsubscribed_{described.name}"] = (
                    rng.random() < UNSUBSCRIBED[described.name]
                )
        person = Person(f"sim-{i:05d}", "active", zone, traits)
        draw = rng.random()
        if draw < shares.new:
            person.kind = "new"
            day = start + timedelta(days=rng.randrange(max(days, 1)))
            person.signup_at = local_moment(rng, day, zone)
        elif draw < shares.new + shares.dormant:
            person.kind, person.dormant = "dormant", True
            person.last_seen = start - timedelta(days=rng.uniform(20, 60))
        else:
            person.last_seen = start - timedelta(days=rng.uniform(0, 10))
        people.append(person)
    return people


def local_moment(rng: random.Random, day: datetime, zone: str) -> datetime:
    """An hour of the UTC day starting at ``day``, chosen by how active people are at that
    hour in ``zone``; on the hour, so events line up with the simulation's hourly ticks."""
    offset = day.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    shift = int(offset.total_seconds() // 3600)
    weights = [HOUR_WEIGHTS[(h + shift) % 24] for h in range(24)]
    return day + timedelta(hours=rng.choices(range(24), weights=weights)[0])


def identify(person: Person, at: datetime) -> dict[str, Any]:
    """The profile as the platform reports it (a Segment ``identify`` call)."""
    return {
        "type": "identify",
        "userId": person.user_id,
        "traits": person.traits,
        "timestamp": at.isoformat(),
        "messageId": f"identify:{person.user_id}:{at:%Y%m%d%H%M}",
    }


def track(person: Person, event: str, at: datetime, n: int, **properties: Any) -> dict[str, Any]:
    """A Segment ``track`` call; its message id is stable for a seed (no random uuids)."""
    return {
        "type": "track",
        "userId": person.user_id,
        "event": event,
        "properties": properties,
        "timestamp": at.isoformat(),
        "messageId": f"{event}:{person.user_id}:{at:%Y%m%d%H}:{n}",
    }


@dataclass(frozen=True)
class DayPlan:
    """When a user acts on a given day, and the dice they will roll then (rolled up front so
    a seed gives the same dice whatever happened earlier in the run)."""

    person: Person
    at: datetime
    visit: float
    cart: float
    order: float
    coupon: float
    same_cart: float
    low_stock: float
    product: int
    quantity: int
    order_total: int
    coupon_amount: int
    coupon_days: int


def plan_day(seed: int, person: Person, day: int, day_start: datetime) -> DayPlan:
    rng = random.Random(f"{seed}:{person.user_id}:{day}")  # noqa: S311 - reproducible
    return DayPlan(
        person=person,
        at=local_moment(rng, day_start, person.timezone),
        visit=rng.random(),
        cart=rng.random(),
        order=rng.random(),
        coupon=rng.random(),
        same_cart=rng.random(),
        low_stock=rng.random(),
        product=rng.randrange(len(PRODUCTS)),
        quantity=rng.randint(1, 3),
        order_total=rng.randint(30, 400),
        coupon_amount=rng.choice([10, 20, 30, 50]),
        coupon_days=rng.randint(3, 10),
    )


def act(
    plan: DayPlan,
    behaviour: Behaviour,
    *,
    lifted: bool,
    journey_coupons: list[HeldCoupon],
    entering: bool = True,
) -> list[dict[str, Any]]:
    """The calls a user makes at their moment of the day, given whether a recent message is
    working on them and the unused coupons journeys gave them.

    ``entering`` False (after the simulated period) means no new carts or campaign coupons:
    only visits and orders, which let the runs still open reach their goals.
    """
    person, at, daily = plan.person, plan.at, behaviour.daily
    # A dormant user is mostly away: every chance shrinks until they come back.
    away = behaviour.population.dormant_visit if person.dormant else 1.0

    def happens(dice: float, base: float) -> bool:
        return dice < behaviour.chance(base * away, lifted=lifted)

    carts = entering and happens(plan.cart, daily.add_to_cart)
    orders = happens(plan.order, daily.order)
    visits = carts or orders or happens(plan.visit, daily.visit)
    calls: list[dict[str, Any]] = []
    if visits:
        person.dormant = False
        calls.append(track(person, "session_started", at, 0, channel="app"))
    if carts:
        if person.open_cart is None or plan.same_cart < 0.5:
            person.carts += 1
            person.open_cart = f"{person.user_id}-cart{person.carts}"
        product_id, name, price, _ = PRODUCTS[plan.product]
        items = [
            {"product_id": product_id, "name": name, "price_fen": price, "quantity": plan.quantity}
        ]
        calls.append(
            track(
                person,
                "cart_updated",
                at,
                1,
                cart_id=person.open_cart,
                items=items,
                total_fen=price * plan.quantity,
                low_stock=plan.low_stock < 0.2,
            )
        )
    if orders:
        calls += _order(plan, at, journey_coupons)
    if entering and plan.coupon < daily.coupon:
        code = f"CAMP-{person.user_id[-5:]}-{at:%m%d}"
        expires = at + timedelta(days=plan.coupon_days)
        amount, min_spend = plan.coupon_amount * 100, plan.coupon_amount * 500
        person.coupons.append((code, amount, min_spend, expires))
        calls.append(
            track(
                person,
                "coupon_issued",
                at,
                4,
                coupon_code=code,
                amount_fen=amount,
                min_spend_fen=min_spend,
                expires_at=expires.astimezone(UTC).isoformat(),
            )
        )
    return calls


def _order(plan: DayPlan, at: datetime, journey_coupons: list[HeldCoupon]) -> list[Any]:
    """An order (of the open cart, if any) using the most valuable coupon it qualifies for,
    the one expiring first among equals."""
    person = plan.person
    person.orders += 1
    total_fen = plan.order_total * 100
    usable = [c for c in [*journey_coupons, *person.coupons] if c[3] > at and c[2] <= total_fen]
    order_id = f"{person.user_id}-order{person.orders}"
    props: dict[str, Any] = {"order_id": order_id, "total": plan.order_total}
    props["total_fen"] = total_fen
    props["category"] = PRODUCTS[plan.product][3]
    if person.open_cart is not None:
        props["cart_id"], person.open_cart = person.open_cart, None
    if not usable:
        return [track(person, "order_placed", at, 2, **props)]
    code = min(usable, key=lambda c: (-c[1], c[3]))[0]
    props["coupon_code"] = code
    person.coupons = [c for c in person.coupons if c[0] != code]
    return [
        track(person, "order_placed", at, 2, **props),
        track(person, "coupon_redeemed", at, 3, coupon_code=code, order_id=order_id),
    ]

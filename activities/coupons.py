"""Issuing coupons, idempotently (a retried activity issues nothing twice)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from temporalio import activity

from store.db import SessionFactory, transaction
from store.models import Coupon, Event
from store.upsert import insert_new_columns
from workflows.journey_contracts import ISSUE_COUPON, CouponRef, IssueCouponInput

log = logging.getLogger(__name__)

# No 0/O/1/I: codes are read aloud and typed from SMS.
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_code(length: int = 10) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


# What a coupon activity reports of a coupon row.
_REF_COLUMNS = (Coupon.id, Coupon.code, Coupon.amount_fen, Coupon.min_spend_fen, Coupon.expires_at)


class CouponActivities:
    """``announce``, when given, is handed the id of each ``coupon_issued`` event as soon as
    it is committed (the worker routes it at once, best effort); without it, or if routing
    fails, the worker's pending-event loop routes the event later."""

    def __init__(self, factory: SessionFactory, *, announce: Callable[[int], None] | None = None):
        self._factory = factory
        self._announce = announce

    @activity.defn(name=ISSUE_COUPON)
    def issue_coupon(self, inp: IssueCouponInput) -> CouponRef:
        """Issue the coupon keyed by ``issue_key``, or return the one already issued."""
        coupon, event_id = self._issue(inp)
        if event_id is not None and self._announce is not None:
            try:
                self._announce(event_id)
            except Exception:  # the pending-event loop routes it anyway
                log.exception("could not hand coupon_issued event %s to the router", event_id)
        return coupon

    def _issue(self, inp: IssueCouponInput) -> tuple[CouponRef, int | None]:
        """The coupon, and the id of its ``coupon_issued`` event if nobody routed it yet."""
        with transaction(self._factory) as session:
            coupon = None
            for _ in range(5):  # a fresh code on the (astronomically rare) code collision
                coupon = insert_new_columns(
                    session,
                    Coupon,
                    values={
                        "issue_key": inp.issue_key,
                        "code": new_code(),
                        "user_id": inp.user_id,
                        "journey_id": inp.journey_id,
                        "amount_fen": inp.amount_fen,
                        "min_spend_fen": inp.min_spend_fen,
                        "issued_at": inp.now,
                        "expires_at": inp.now + inp.valid_for,
                    },
                    columns=_REF_COLUMNS,
                )
                # Not inserted: issued by an earlier attempt, or (rarely) the code was taken.
                coupon = (
                    coupon
                    or session.execute(
                        select(*_REF_COLUMNS).where(Coupon.issue_key == inp.issue_key)
                    ).first()
                )
                if coupon is not None:
                    break
            if coupon is None:
                raise RuntimeError(f"could not issue coupon {inp.issue_key}")
            # Announce it like the platform would, so coupon journeys (expiry nudges) start:
            # routed once committed (``announce``), or by the worker's pending-event loop.
            message_id = f"coupon-issued:{coupon.id}"
            announced = insert_new_columns(
                session,
                Event,
                values={
                    "message_id": message_id,
                    "type": "track",
                    "user_id": inp.user_id,
                    "event": "coupon_issued",
                    "properties": {
                        "coupon_code": coupon.code,
                        "amount_fen": coupon.amount_fen,
                        "min_spend_fen": coupon.min_spend_fen,
                        "expires_at": coupon.expires_at.isoformat(),
                        "journey_id": inp.journey_id,
                    },
                    "context": {},
                    "timestamp": inp.now,
                    # Bookkeeping, not business time: when the row was written.
                    "received_at": datetime.now(UTC),
                },
                columns=(Event.id,),
            )
            unrouted = (
                announced.id
                if announced is not None
                else session.scalar(
                    select(Event.id).where(
                        Event.message_id == message_id, Event.routed_at.is_(None)
                    )
                )
            )
            ref = CouponRef(
                coupon_id=coupon.id,
                code=coupon.code,
                amount_fen=coupon.amount_fen,
                min_spend_fen=coupon.min_spend_fen,
                expires_at=coupon.expires_at,
            )
        return ref, unrouted

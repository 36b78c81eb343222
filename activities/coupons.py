"""Issuing coupons, idempotently (a retried activity issues nothing twice)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from temporalio import activity

from store.db import SessionFactory, transaction
from store.models import Coupon, Event
from store.upsert import insert_ignore
from workflows.contracts import ISSUE_COUPON, CouponRef, IssueCouponInput

# No 0/O/1/I: codes are read aloud and typed from SMS.
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_code(length: int = 10) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class CouponActivities:
    def __init__(self, factory: SessionFactory):
        self._factory = factory

    @activity.defn(name=ISSUE_COUPON)
    def issue_coupon(self, inp: IssueCouponInput) -> CouponRef:
        """Issue the coupon keyed by ``issue_key``, or return the one already issued."""
        with transaction(self._factory) as session:
            coupon = None
            for _ in range(5):  # a fresh code on the (astronomically rare) code collision
                insert_ignore(
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
                )
                coupon = session.scalar(select(Coupon).where(Coupon.issue_key == inp.issue_key))
                if coupon is not None:
                    break
            if coupon is None:
                raise RuntimeError(f"could not issue coupon {inp.issue_key}")
            # Announce it like the platform would, so coupon journeys (expiry nudges) start;
            # the worker's pending-event router picks it up.
            insert_ignore(
                session,
                Event,
                values={
                    "message_id": f"coupon-issued:{coupon.id}",
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
            )
            return CouponRef(
                coupon_id=coupon.id,
                code=coupon.code,
                amount_fen=coupon.amount_fen,
                min_spend_fen=coupon.min_spend_fen,
                expires_at=coupon.expires_at,
            )

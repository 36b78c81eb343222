"""The schema: profiles, events, consent, coupons, the message ledger, enrollments, journeys.

The same models (and migrations) serve SQLite and PostgreSQL. Instants are UTC-aware
(:class:`~store.types.UTCDateTime`); money is integer fen (¥1 = 100) so 满50减20 never
meets a float.
"""

from store.models.base import NAMING, Base, BigId
from store.models.events import Event, RejectedEvent
from store.models.journeys import Coupon, Enrollment, JourneyDraft, JourneyVersion, SavedAudience
from store.models.ledger import Message, OutboxMessage, ProviderEvent
from store.models.operations import Broadcast, ControlFlag, SweepTick
from store.models.people import Consent, PushToken, User

__all__ = [
    "NAMING",
    "Base",
    "BigId",
    "Broadcast",
    "Consent",
    "ControlFlag",
    "Coupon",
    "Enrollment",
    "Event",
    "JourneyDraft",
    "JourneyVersion",
    "Message",
    "OutboxMessage",
    "ProviderEvent",
    "PushToken",
    "RejectedEvent",
    "SavedAudience",
    "SweepTick",
    "User",
]

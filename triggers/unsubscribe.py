"""What a followed unsubscribe link changes: the user's consent for that channel and topic.

A link is ``{public_base_url}/u/{token}``, signed as ``message_templates.unsubscribe_links``
says (ids only, never an address); :mod:`api.routes.unsubscribe` serves it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from message_templates.unsubscribe_links import UnsubscribeClaim
from store.webhooks import set_consent

log = logging.getLogger(__name__)

UNSUBSCRIBE_SOURCE = "unsubscribe_link"


def unsubscribe(session: Session, *, claim: UnsubscribeClaim, at: datetime) -> int:
    """Unsubscribe the claim's user from its channel and topic as of ``at``; returns how many
    users changed (0 for a user we do not know)."""
    changed = set_consent(
        session,
        user_ids=[claim.user_id],
        channel=claim.channel,
        topics=[claim.topic],
        status="unsubscribed",
        source=UNSUBSCRIBE_SOURCE,
        at=at,
    )
    log.info(
        "unsubscribe link: user %s %s/%s (message %s, %s)",
        claim.user_id,
        claim.channel,
        claim.topic,
        claim.message_id,
        "done" if changed else "unknown user",
    )
    return changed

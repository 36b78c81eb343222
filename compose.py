"""The composition root: the real database engine, sessions, template renderer, senders,
Temporal client and clock, each built from settings in one place.

The entry points call these (the worker, the API process, the command line, the sweep
scheduler, the simulator and the dev stack); nothing here is built at import time. The
classes they feed take their dependencies as arguments, so a test builds the same classes
with fakes and never calls this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine

import kinds
from channels.base import Channel
from channels.outbox import OutboxChannel
from channels.providers import provider
from config import Settings
from message_templates.render import TemplateRenderer
from store.clock import utc_now
from store.db import SessionFactory, make_engine, make_session_factory
from store.outbox import SqlOutboxSink

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.runtime import Runtime


def clock() -> datetime:
    """The UTC wall clock: "now" for every real process (tests pass a clock of their own)."""
    return utc_now()


def engine(settings: Settings, *, pre_ping: bool = True, pool_size: int | None = None) -> Engine:
    """An engine on ``settings.database_url``; ``pool_size`` pooled connections when given
    (else the dialect's default), each tested before use unless ``pre_ping`` is off
    (see :func:`store.db.make_engine`)."""
    pool = {} if pool_size is None else {"pool_size": pool_size}
    return make_engine(settings.database_url, pre_ping=pre_ping, **pool)


def session_factory(settings: Settings, *, on: Engine | None = None) -> SessionFactory:
    """Sessions on the engine ``on``, else on a new engine on ``settings.database_url``."""
    return make_session_factory(on if on is not None else engine(settings))


def renderer(settings: Settings) -> TemplateRenderer:
    """The shipped templates, rendered with the configured default locale and timezone and
    the SMS opt-out text."""
    return TemplateRenderer(
        default_locale=settings.default_locale,
        default_timezone=settings.default_timezone,
        sms_opt_out_text=settings.sms_opt_out_text,
    )


def channels(settings: Settings, factory: SessionFactory) -> dict[str, Channel]:
    """One sender per channel kind, as settings say: the provider chosen for the kind, built
    from its own settings (checked by ``Settings``), or the outbox, which records instead."""
    outbox = OutboxChannel(SqlOutboxSink(factory))
    senders: dict[str, Channel] = {}
    for kind in kinds.names():
        chosen = settings.provider_for(kind)
        found = provider(chosen)
        if found is not None:
            senders[kind] = found.build(settings.provider_settings(chosen))
        elif chosen == "outbox":
            senders[kind] = outbox
        else:
            raise ValueError(f"unknown {kind} provider {chosen!r}")
    return senders


async def temporal_client(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client of ``settings.temporal_address`` / ``temporal_namespace`` with the shared data
    converter (payloads encrypted when keys are set), on ``runtime`` when given (e.g. one
    serving Prometheus metrics)."""
    # Imported here: the Temporal SDK takes longer to import than the rest of this module,
    # and the command line's database-only commands never need it.
    from triggers.temporal_client import connect

    return await connect(settings, runtime=runtime)

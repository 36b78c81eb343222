"""What a channel kind is: how its address is found, its template parts, its wording, what a
refusal teaches and its rates, written once as data.

Nothing here reads a database or a provider: the rooms that do (the audience compiler, the
delivery activities) turn an :data:`Address` into their own queries. Pure Python, no I/O at
import, so the workflow sandbox may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class ProfileColumn:
    """The address is a column of the profile (``users.phone``, ``users.email``); a NULL or
    empty value is no address."""

    name: str


@dataclass(frozen=True)
class ProfileTrait:
    """The address is a text trait of the profile (``users.traits[name]``); a missing,
    non-text or empty value is no address."""

    name: str


@dataclass(frozen=True)
class DeviceTokens:
    """The address is the newest device token the user registered (``push_tokens``)."""


Address = ProfileColumn | ProfileTrait | DeviceTokens

# What a permanent refusal teaches about the recipient:
#   consent_lost  the recipient opted out at the provider: unsubscribed from the kind;
#   address_dead  the address will never work again (a dead push token): forget it.
Lesson = Literal["consent_lost", "address_dead"]


@dataclass(frozen=True)
class TemplateParts:
    """The parts a template of the kind has per locale, and what each becomes when sent.

    Attributes:
        required: Parts every locale must have.
        optional: Parts a locale may have.
        body: The part sent as the message body.
        subject: The part sent as the subject line (one line), if the kind has one.
        title: The part sent as the title (one line), if the kind has one.
        html: The part rendered with HTML escaping and sent as the HTML body.
        preheader: The part put first in the HTML as the hidden inbox preview line.
        link: The part sent as the deep link, ``data["link"]``.
        options: Keys a template file may have beside ``channel``, ``description`` and
            ``locales`` (push: ``data``, ``priority``, ``ttl``, ``sound``).
        opt_out_footer: Whether the opt-out text is appended to the body.
        segmented: Whether the body is sent (and priced) as SMS segments.
    """

    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    body: str = "body"
    subject: str | None = None
    title: str | None = None
    html: str | None = None
    preheader: str | None = None
    link: str | None = None
    options: tuple[str, ...] = ()
    opt_out_footer: bool = False
    segmented: bool = False


@dataclass(frozen=True)
class Wording:
    """How people are told about the kind: the plural noun, in Chinese and English
    ("短信" / "text messages"), as unsubscribe pages say it."""

    zh: str
    en: str


@dataclass(frozen=True)
class ChannelKind:
    """One channel kind: everything the engine knows about it, in one place.

    Attributes:
        name: The kind's name in journeys, templates, consent and the ledger (``sms``).
        address: Where a user's address for the kind is found.
        template: The parts of its templates.
        wording: Its name as unsubscribe pages say it.
        one_click_unsubscribe: Whether its messages carry the recipient's one-click
            unsubscribe link for the client to offer (email's ``List-Unsubscribe``).
        refusals: Permanent refusal reasons (``channels.base.PermanentSendError.reason``)
            that teach something about the recipient, and what.
        rate_per_second: Default provider calls per second across every worker
            (``LIFECYCLE_<NAME>_RATE_PER_SECOND`` overrides it for a built-in kind).
        broadcast_rate_per_second: Default broadcast sends per second, likewise.
    """

    name: str
    address: Address
    template: TemplateParts
    wording: Wording
    one_click_unsubscribe: bool = False
    refusals: Mapping[str, Lesson] = field(default_factory=dict)
    rate_per_second: float = 50.0
    broadcast_rate_per_second: float = 50.0

    @property
    def queue_suffix(self) -> str:
        """What its provider calls' task queue adds to the worker's (``lifecycle.sms``)."""
        return self.name

    def lesson(self, reason: str) -> Lesson | None:
        """What a permanent refusal with ``reason`` teaches, or None."""
        return self.refusals.get(reason)

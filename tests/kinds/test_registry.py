"""The channel kinds: one registry lists them in a fixed order and says what each means."""

from __future__ import annotations

import pytest

import kinds
from kinds import (
    ChannelKind,
    DeviceTokens,
    ProfileColumn,
    ProfileTrait,
    TemplateParts,
    UnknownKindError,
    Wording,
)

FAX = ChannelKind(
    name="fax",
    address=ProfileTrait("fax_number"),
    template=TemplateParts(required=frozenset({"body"})),
    wording=Wording(zh="传真", en="faxes"),
)


def test_the_built_in_kinds_come_in_the_order_every_list_shows_them():
    assert kinds.names() == ("sms", "email", "push")
    assert [k.name for k in kinds.all_kinds()] == ["sms", "email", "push"]
    assert kinds.one_of() == "sms, email or push"


def test_each_kind_says_where_its_address_is():
    assert kinds.kind("sms").address == ProfileColumn("phone")
    assert kinds.kind("email").address == ProfileColumn("email")
    assert kinds.kind("push").address == DeviceTokens()


def test_only_email_carries_a_one_click_unsubscribe_link():
    assert [k.name for k in kinds.all_kinds() if k.one_click_unsubscribe] == ["email"]


def test_a_refusal_teaches_what_its_kind_says():
    assert kinds.lesson("sms", "opted_out") == "consent_lost"
    assert kinds.lesson("push", "unregistered_token") == "address_dead"
    assert kinds.lesson("email", "opted_out") is None
    assert kinds.lesson("sms", "invalid_number") is None
    assert kinds.lesson("fax", "opted_out") is None  # no such kind: nothing learnt


def test_each_kind_has_its_own_task_queue_and_rates():
    assert [k.queue_suffix for k in kinds.all_kinds()] == ["sms", "email", "push"]
    assert [k.rate_per_second for k in kinds.all_kinds()] == [50, 100, 500]


def test_an_unknown_kind_is_named_with_the_known_ones():
    with pytest.raises(UnknownKindError) as caught:
        kinds.kind("fax")

    assert str(caught.value) == "unknown channel kind 'fax'; known: sms, email, push"
    assert isinstance(caught.value, KeyError)
    assert not kinds.is_kind("fax") and not kinds.is_kind(None)


def test_a_kind_registered_for_a_while_is_listed_then_gone():
    with kinds.registered(FAX):
        assert kinds.kind("fax") is FAX
        assert kinds.names() == ("sms", "email", "push", "fax")
        assert kinds.one_of() == "sms, email, push or fax"

    assert kinds.names() == ("sms", "email", "push")


def test_two_kinds_cannot_share_a_name():
    other_sms = ChannelKind(
        name="sms",
        address=ProfileTrait("mobile"),
        template=TemplateParts(required=frozenset({"body"})),
        wording=Wording(zh="短信", en="texts"),
    )

    with pytest.raises(ValueError, match="'sms' is already registered"):
        kinds.register(other_sms)
    assert kinds.kind("sms").address == ProfileColumn("phone")

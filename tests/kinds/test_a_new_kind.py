"""A kind added in one place is asked everywhere: audiences reach it where its address is,
its templates render, unsubscribe links name it, and settings give it a rate and a sender."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Database

import kinds
from audiences.addresses import address_of
from audiences.audience import audience_from_data
from audiences.rules import AudienceError, parse_rule
from config import Settings
from journeys.models import Journey
from journeys.validate import JourneyError, parse_journey
from kinds import ChannelKind, ProfileTrait, TemplateParts, Wording
from message_templates.errors import InvalidTemplateError
from message_templates.render import TemplateRenderer
from message_templates.unsubscribe_links import UnsubscribeLinks
from store.db import transaction
from store.models import User

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)

# A messenger whose users are known by an id the platform sends as a trait.
WECHAT = ChannelKind(
    name="wechat",
    address=ProfileTrait("wechat_openid"),
    template=TemplateParts(
        required=frozenset({"title", "body"}),
        optional=frozenset({"link"}),
        title="title",
        link="link",
    ),
    wording=Wording(zh="微信消息", en="WeChat messages"),
    refusals={"opted_out": "consent_lost"},
    rate_per_second=20,
    broadcast_rate_per_second=10,
)

JOURNEY = """\
id: on_wechat
name: on WeChat
trigger: {{event: user_signed_up}}
steps:
  - {{id: hello, type: send, channel: {channel}, template: wechat_hello}}
"""


@pytest.fixture(autouse=True)
def wechat() -> Iterator[ChannelKind]:
    with kinds.registered(WECHAT) as described:
        yield described


def test_an_audience_reaches_the_users_with_the_address_its_kind_names(db: Database):
    with transaction(db.factory) as session:
        for user_id, traits in (
            ("has-id", {"wechat_openid": "oXyz"}),
            ("empty-id", {"wechat_openid": ""}),
            ("number-id", {"wechat_openid": 7}),
            ("no-id", {"name": "李雷"}),
        ):
            session.add(User(id=user_id, created_at=NOW, updated_at=NOW, traits=traits))

    reachable = audience_from_data({"name": "on_wechat", "rule": {"reachable": "wechat"}})
    unsubscribed = audience_from_data({"name": "x", "rule": {"subscribed": {"channel": "wechat"}}})
    with db.factory() as session:
        assert reachable.members(session, now=NOW) == ["has-id"]
        assert reachable.contains(session, user_id="has-id", now=NOW)
        assert not reachable.contains(session, user_id="number-id", now=NOW)
        assert unsubscribed.count(session, now=NOW) == 4
        users = {u.id: u for u in session.query(User)}
        assert address_of(session, users["has-id"], WECHAT) == "oXyz"
        assert address_of(session, users["empty-id"], WECHAT) is None


def test_a_rule_naming_a_kind_nobody_registered_is_refused():
    with pytest.raises(AudienceError, match="one of sms, email, push, wechat, not 'fax'"):
        parse_rule({"reachable": "fax"})


def test_its_templates_have_its_parts_and_render(tmp_path: Path):
    (tmp_path / "hello.yaml").write_text(
        "channel: wechat\n"
        "locales:\n"
        "  zh-CN:\n"
        "    title: 你好 {{ user.name }}\n"
        "    body: 欢迎\n"
        "    link: https://shop.example.com/w\n"
    )
    (tmp_path / "no_title.yaml").write_text("channel: wechat\nlocales:\n  zh-CN:\n    body: 欢迎\n")
    renderer = TemplateRenderer(tmp_path)

    message = renderer.render(
        "hello", channel="wechat", locale="zh-CN", context={"user": {"name": "李雷"}}
    )

    assert (message.channel, message.title, message.body) == ("wechat", "你好 李雷", "欢迎")
    assert message.data == {"link": "https://shop.example.com/w"}
    assert message.segments is None and message.subject is None
    with pytest.raises(InvalidTemplateError, match="missing 'title' \\(wechat templates have"):
        renderer.render("no_title", channel="wechat", locale="zh-CN", context={})


def test_an_unknown_channel_in_a_template_lists_every_kind(tmp_path: Path):
    (tmp_path / "fax.yaml").write_text("channel: fax\nlocales:\n  zh-CN:\n    body: x\n")

    with pytest.raises(InvalidTemplateError, match="'fax' \\(sms, email, push or wechat\\)"):
        TemplateRenderer(tmp_path).render("fax", channel="fax", locale=None, context={})


def test_an_unsubscribe_link_may_name_it():
    links = UnsubscribeLinks("secret", prefix="http://127.0.0.1:8000/u")
    url = links.url(user_id="u1", channel="wechat", topic="marketing", message_id=3, now=NOW)

    assert links.read(url.rsplit("/", 1)[1], now=NOW).channel == "wechat"


def test_settings_give_it_its_own_rates_and_the_outbox():
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.rate_for("wechat") == 20
    assert settings.broadcast_rate_for("wechat") == 10
    assert settings.provider_for("wechat") == "outbox"
    assert settings.rate_for("sms") == settings.sms_rate_per_second


def test_a_journey_may_send_on_it_and_the_journey_schema_lists_it():
    journey = parse_journey(JOURNEY.format(channel="wechat"))
    schema = Journey.model_json_schema(by_alias=True)

    assert journey.steps[0].channel == "wechat"  # type: ignore[union-attr]
    assert schema["$defs"]["SendStep"]["properties"]["channel"]["enum"] == [
        "sms",
        "email",
        "push",
        "wechat",
    ]
    with pytest.raises(JourneyError, match="it should be 'sms', 'email', 'push' or 'wechat'"):
        parse_journey(JOURNEY.format(channel="fax"))

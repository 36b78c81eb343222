"""A channel kind described in this module alone runs through a journey: the real worker
builds it a sender (the outbox), the journey sends on it, the ledger records it, and a user
without its address is skipped. Nothing outside this module names it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Database

import kinds
from config import Settings
from journey_support import add_user, ledger, outbox, publish_text, router_for, store_event
from kinds import ChannelKind, ProfileTrait, TemplateParts, Wording
from message_templates.render import TemplateRenderer
from store.db import transaction
from store.models import User
from worker import running_worker
from workflows.ids import journey_workflow_id
from workflows.journey import JourneyWorkflow

# A messenger whose users are known by an id the platform sends as a profile trait.
WECHAT = ChannelKind(
    name="wechat",
    address=ProfileTrait("wechat_openid"),
    template=TemplateParts(
        required=frozenset({"title", "body"}), optional=frozenset({"link"}), title="title"
    ),
    wording=Wording(zh="微信消息", en="WeChat messages"),
)

TEMPLATE = """\
channel: wechat
locales:
  zh-CN:
    title: 欢迎, {{ user.name }}
    body: 新人礼包已到账
"""

JOURNEY = """\
id: wechat_welcome
name: welcome on WeChat
trigger: {event: user_signed_up}
delivery: {quiet_hours: "off"}
steps:
  - {id: hello, type: send, channel: wechat, template: wechat_hello}
"""


@pytest.fixture(autouse=True)
def wechat() -> Iterator[ChannelKind]:
    with kinds.registered(WECHAT) as described:
        yield described


async def test_a_journey_sends_on_a_kind_registered_by_its_test_alone(
    time_env, db: Database, task_queue: str, tmp_path: Path
):
    (tmp_path / "wechat_hello.yaml").write_text(TEMPLATE, encoding="utf-8")
    reachable, unreachable = f"wx-{task_queue}", f"no-wx-{task_queue}"
    async with running_worker(
        time_env.client,
        Settings(environment="development"),
        db.factory,
        task_queue=task_queue,
        renderer=TemplateRenderer(tmp_path),
    ):
        now = await time_env.get_current_time()
        publish_text(db.factory, JOURNEY, now)
        for user_id in (reachable, unreachable):
            add_user(db.factory, user_id, now)
        with transaction(db.factory) as session:
            session.get_one(User, reachable).traits = {"wechat_openid": "oWx42", "name": "李雷"}
        events = [
            store_event(db.factory, u, "user_signed_up", now) for u in (reachable, unreachable)
        ]
        await router_for(time_env, db, task_queue).route(events)
        for user_id in (reachable, unreachable):
            handle = time_env.client.get_workflow_handle_for(
                JourneyWorkflow.run, journey_workflow_id("wechat_welcome", user_id)
            )
            await asyncio.wait_for(handle.result(), timeout=30)

    assert [(m.step_id, m.channel, m.status) for m in ledger(db.factory, reachable)] == [
        ("hello", "wechat", "sent")
    ]
    ((step, channel, status, reason),) = [
        (m.step_id, m.channel, m.status, m.reason) for m in ledger(db.factory, unreachable)
    ]
    assert (step, channel, status, reason) == ("hello", "wechat", "skipped", "unreachable")
    (sent,) = outbox(db.factory)
    assert (sent.channel, sent.recipient, sent.subject, sent.body) == (
        "wechat",
        "oWx42",
        "欢迎, 李雷",
        "新人礼包已到账",
    )

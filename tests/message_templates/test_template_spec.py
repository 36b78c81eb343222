"""Malformed template files are refused with the file, line and field at fault."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from message_templates.errors import InvalidTemplateError
from message_templates.render import TemplateRenderer

PUSH = "channel: push\nlocales:\n  zh-CN: {title: t, body: b}\n"


def load(tmp_path: Path, text: str) -> str:
    (tmp_path / "bad.yaml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return TemplateRenderer(tmp_path).channel_of("bad")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "bad.yaml: the file must be a mapping"),
        ("- sms\n", "bad.yaml, line 1: the file must be a mapping"),
        (
            "channel: sms\nlocales:\n  zh-CN: {body: 'a'\n",
            "bad.yaml, line 4: not valid YAML",
        ),
        ("locales:\n  zh-CN: {body: hi}\n", "bad.yaml, line 1: missing 'channel'"),
        (
            "channel: fax\nlocales:\n  zh-CN: {body: hi}\n",
            "bad.yaml, line 1: channel: unknown channel 'fax'",
        ),
        ("channel: sms\n", "bad.yaml, line 1: missing 'locales'"),
        (
            "channel: sms\nbody: hi\nlocales:\n  zh-CN: {body: hi}\n",
            "bad.yaml, line 2: body: unknown field",
        ),
        ("channel: sms\nlocales: {}\n", "bad.yaml, line 2: locales: must map at least one"),
        (
            "channel: sms\nlocales:\n  zh-CN: hello\n",
            "bad.yaml, line 3: locales.zh-CN: must map parts to text (sms templates have body)",
        ),
        (
            "channel: sms\nlocales:\n  zh-CN:\n    boddy: hi\n",
            "bad.yaml, line 4: locales.zh-CN.boddy: unknown part (sms templates have body)",
        ),
        (
            "channel: push\nlocales:\n  zh-CN:\n    body: hi\n",
            "bad.yaml, line 3: locales.zh-CN: missing 'title' "
            "(push templates have body, title, optional link)",
        ),
        (
            "channel: email\nlocales:\n  zh-CN:\n    subject: s\n    html: h\n",
            "bad.yaml, line 3: locales.zh-CN: missing 'text'",
        ),
        (
            "channel: email\nlocales:\n  zh-CN:\n    html: h\n    text: t\n",
            "bad.yaml, line 3: locales.zh-CN: missing 'subject'",
        ),
        (
            "channel: email\nlocales:\n  zh-CN:\n    subject: s\n    text: t\n",
            "bad.yaml, line 3: locales.zh-CN: missing 'html'",
        ),
        (
            "channel: email\nlocales:\n  zh-CN:\n    subject: ' '\n    html: h\n    text: t\n",
            "bad.yaml, line 4: locales.zh-CN.subject: is empty",
        ),
        (
            PUSH + "data:\n  from: x\n",
            "bad.yaml, line 5: data.from: reserved by FCM",
        ),
        (PUSH + "data:\n  notification: x\n", "bad.yaml, line 5: data.notification: reserved"),
        (PUSH + "data:\n  message_type: x\n", "bad.yaml, line 5: data.message_type: reserved"),
        (PUSH + "data:\n  google.c.a.e: '1'\n", "bad.yaml, line 5: data.google.c.a.e: reserved"),
        (PUSH + "data:\n  gcm.n.e: '1'\n", "bad.yaml, line 5: data.gcm.n.e: reserved"),
        (
            PUSH + "data:\n  link: app://x\n",
            "bad.yaml, line 5: data.link: reserved by the link part",
        ),
        (PUSH + "data: [a]\n", "bad.yaml, line 4: data: must map data keys to text"),
        (PUSH + "data:\n  n: 7\n", "bad.yaml, line 5: data.n: must be text"),
        (PUSH + "priority: urgent\n", "bad.yaml, line 4: priority: must be high or normal"),
        (PUSH + "ttl: 3600\n", "bad.yaml, line 4: ttl: must be a duration like 30m"),
        (PUSH + "ttl: 2w\n", "bad.yaml, line 4: ttl: must be a duration like 30m"),
        (PUSH + "ttl: 29d\n", "bad.yaml, line 4: ttl: FCM keeps a push 28d at most"),
        (PUSH + "sound: ''\n", "bad.yaml, line 4: sound: is empty"),
        (
            "channel: sms\npriority: high\nlocales:\n  zh-CN: {body: hi}\n",
            "bad.yaml, line 2: priority: only push templates have 'priority'",
        ),
        (
            "channel: email\ndata: {a: b}\nlocales:\n  zh-CN: {subject: s, html: h, text: t}\n",
            "bad.yaml, line 2: data: only push templates have 'data'",
        ),
        (
            "channel: sms\nlocales:\n  zh-CN:\n    body: 20\n",
            "bad.yaml, line 4: locales.zh-CN.body: must be text",
        ),
        (
            "channel: sms\nlocales:\n  zh-CN:\n    body: '  '\n",
            "bad.yaml, line 4: locales.zh-CN.body: is empty",
        ),
        (
            "channel: sms\nlocales:\n  zh-CN: {body: a}\n  zh-CN: {body: b}\n",
            "bad.yaml, line 4: locales.zh-CN: duplicate key",
        ),
        (
            "channel: sms\nlocales:\n  zh-CN: {body: a}\n  zh_cn: {body: b}\n",
            "bad.yaml, line 4: locales.zh_cn: the same locale is listed twice",
        ),
        (
            "channel: sms\nlocales:\n  chinese!: {body: a}\n",
            "bad.yaml, line 3: locales.chinese!: not a locale tag",
        ),
    ],
)
def test_malformed_files_name_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidTemplateError) as error:
        load(tmp_path, text)
    assert str(error.value).startswith(message)


def test_a_well_formed_file_loads(tmp_path: Path) -> None:
    text = """
        channel: push
        description: For marketers to read.
        locales:
          zh-CN: {title: 标题, body: 正文, link: "app://home"}
    """
    assert load(tmp_path, text) == "push"

"""Rendering templates as the engine does: shipped copy, locales, SMS rules, errors, sandbox."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from message_templates.errors import (
    InvalidTemplateError,
    SandboxViolationError,
    TemplateError,
    UndefinedVariableError,
    UnknownTemplateError,
    WrongChannelError,
)
from message_templates.render import RenderedMessage, TemplateRenderer
from message_templates.sample import sample_context

SHIPPED = {
    "new_user_welcome_sms": "sms",
    "new_user_reminder_push": "push",
    "new_user_last_chance_email": "email",
}


def context(**user: Any) -> dict[str, Any]:
    ctx = sample_context()
    ctx["user"] = {**ctx["user"], **user}
    return ctx


def write_template(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def sms_template(directory: Path, body: str, name: str = "custom_sms") -> str:
    write_template(
        directory,
        name,
        f"channel: sms\nlocales:\n  zh-CN:\n    body: {json.dumps(body, ensure_ascii=False)}\n",
    )
    return name


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def render_shipped(
    renderer: TemplateRenderer, template: str, locale: str, /, **user: Any
) -> RenderedMessage:
    return renderer.render(
        template, channel=SHIPPED[template], locale=locale, context=context(**user)
    )


# --- the shipped new-user coupon templates -------------------------------------------------


def test_names_lists_the_shipped_templates(renderer: TemplateRenderer) -> None:
    assert set(SHIPPED) <= set(renderer.names())
    for name, channel in SHIPPED.items():
        assert renderer.channel_of(name) == channel


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_templates_render_in_both_languages(
    renderer: TemplateRenderer, name: str, locale: str
) -> None:
    message = render_shipped(renderer, name, locale, name="Lily")

    assert isinstance(message, RenderedMessage)
    assert (message.template, message.channel, message.locale) == (name, SHIPPED[name], locale)
    assert "¥20" in message.body
    assert "{{" not in message.body and "{%" not in message.body
    if message.channel == "sms":
        assert "NEW20-7KQ9" in message.body
        assert message.segments is not None and message.segments >= 1
    else:
        assert message.segments is None
    if message.channel == "push":
        assert message.title and "¥20" in message.title
        assert message.data == {"link": "app://coupons/NEW20-7KQ9"}
    if message.channel == "email":
        assert message.subject and "¥20" in message.subject
        assert message.html is not None and "NEW20-7KQ9" in message.html
        unsubscribe = "https://example.com/unsubscribe?token=sample"
        assert unsubscribe in message.html and unsubscribe in message.body


def test_welcome_sms_reads_naturally_and_fits_one_segment(renderer: TemplateRenderer) -> None:
    zh = render_shipped(renderer, "new_user_welcome_sms", "zh-CN", name="王小明")
    en = render_shipped(renderer, "new_user_welcome_sms", "en", name="Lily")

    assert zh.body.startswith("王小明，欢迎加入！")
    assert "满¥50减¥20" in zh.body
    assert "3月9日10:15前有效" in zh.body  # 02:15 UTC is 10:15 in Shanghai
    assert zh.segments == 1
    assert en.body.startswith("Hi Lily, welcome!")
    assert "¥20 off orders of ¥50 or more" in en.body
    assert en.segments == 1  # GSM-7: ¥ is in the GSM alphabet


def test_dates_are_shown_in_the_recipients_time_zone(renderer: TemplateRenderer) -> None:
    london = render_shipped(renderer, "new_user_last_chance_email", "en", timezone="Europe/London")
    unknown = render_shipped(renderer, "new_user_last_chance_email", "en", timezone="Mars/Base")
    missing = render_shipped(renderer, "new_user_last_chance_email", "en", timezone=None)

    assert "It expires at 02:15 on Mar 9" in london.body
    assert "It expires at 10:15 on Mar 9" in unknown.body  # falls back to Asia/Shanghai
    assert "It expires at 10:15 on Mar 9" in missing.body


@pytest.mark.parametrize(
    ("locale", "greeting"), [("zh-CN", "亲，欢迎加入！"), ("en", "Hi there, welcome!")]
)
def test_an_empty_name_still_greets_politely(
    renderer: TemplateRenderer, locale: str, greeting: str
) -> None:
    message = render_shipped(renderer, "new_user_welcome_sms", locale, name="")
    assert message.body.startswith(greeting)


def test_dates_given_as_iso_strings_render_the_same(renderer: TemplateRenderer) -> None:
    ctx = context()
    ctx["coupon"]["expires_at"] = ctx["coupon"]["expires_at"].isoformat()

    message = renderer.render("new_user_welcome_sms", channel="sms", locale="zh-CN", context=ctx)

    assert "3月9日10:15前有效" in message.body


# --- locales -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "used"),
    [
        ("en-US", "en"),
        ("en_GB", "en"),
        ("EN", "en"),
        ("fr", "zh-CN"),
        ("fr-FR", "zh-CN"),
        ("zh_cn", "zh-CN"),
        ("zh-TW", "zh-CN"),
        (None, "zh-CN"),
    ],
)
def test_locale_falls_back_to_language_then_default(
    renderer: TemplateRenderer, wanted: str | None, used: str
) -> None:
    message = renderer.render(
        "new_user_reminder_push", channel="push", locale=wanted, context=context()
    )
    assert message.locale == used


def test_a_language_finds_a_regional_locale(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "regional",
        """
        channel: sms
        locales:
          zh-CN: {body: "你好"}
          en-US: {body: "Hello"}
        """,
    )
    message = TemplateRenderer(tmp_path).render("regional", channel="sms", locale="en", context={})
    assert (message.locale, message.body) == ("en-US", "Hello Reply STOP to opt out")


def test_a_template_without_the_default_locale_is_refused(tmp_path: Path) -> None:
    write_template(tmp_path, "english_only", 'channel: sms\nlocales:\n  en: {body: "Hi"}\n')
    with pytest.raises(InvalidTemplateError, match=r"english_only\.yaml: no text for .*zh-CN"):
        TemplateRenderer(tmp_path).render("english_only", channel="sms", locale="en", context={})
    # ...unless this renderer's default locale is English.
    renderer = TemplateRenderer(tmp_path, default_locale="en")
    assert renderer.render("english_only", channel="sms", locale="fr", context={}).body == (
        "Hi Reply STOP to opt out"
    )


# --- SMS: opt-out and segments -------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "opt_out"), [("zh-CN", " 回T退订"), ("en-US", " Reply STOP to opt out")]
)
def test_sms_ends_with_the_opt_out_text(
    renderer: TemplateRenderer, locale: str, opt_out: str
) -> None:
    message = render_shipped(renderer, "new_user_welcome_sms", locale)
    assert message.body.endswith(opt_out)
    assert message.body.count(opt_out.strip()) == 1


def test_opt_out_is_not_added_twice(tmp_path: Path) -> None:
    name = sms_template(tmp_path, "周末大促，全场包邮 回T退订")
    message = TemplateRenderer(tmp_path).render(name, channel="sms", locale="zh-CN", context={})
    assert message.body == "周末大促，全场包邮 回T退订"


def test_opt_out_text_can_be_configured(tmp_path: Path) -> None:
    name = sms_template(tmp_path, "周末大促")
    renderer = TemplateRenderer(tmp_path, sms_opt_out_text={"zh-CN": "拒收请回复R"})
    message = renderer.render(name, channel="sms", locale="zh-CN", context={})
    assert message.body == "周末大促 拒收请回复R"


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("中" * 70, 1),
        ("中" * 71, 2),
    ],
)
def test_segment_count_of_a_rendered_sms(tmp_path: Path, text: str, segments: int) -> None:
    name = sms_template(tmp_path, text)
    renderer = TemplateRenderer(tmp_path, sms_opt_out_text={})  # count the text alone
    message = renderer.render(name, channel="sms", locale="zh-CN", context={})
    assert len(message.body) == len(text)
    assert message.segments == segments


def test_segment_count_includes_the_opt_out_text(tmp_path: Path) -> None:
    # 65 Chinese characters + " 回T退订" (5) = 70: one segment; one more character: two.
    renderer = TemplateRenderer(tmp_path)
    fits = renderer.render(
        sms_template(tmp_path, "中" * 65, "fits"), channel="sms", locale="zh-CN", context={}
    )
    spills = renderer.render(
        sms_template(tmp_path, "中" * 66, "spills"), channel="sms", locale="zh-CN", context={}
    )
    assert (len(fits.body), fits.segments) == (70, 1)
    assert (len(spills.body), spills.segments) == (71, 2)


# --- errors a template author sees ---------------------------------------------------------


def test_undefined_variable_names_the_variable_and_template(tmp_path: Path) -> None:
    sms_template(tmp_path, "{{ user.nickname }}，你好", "uses_nickname")
    sms_template(tmp_path, "{{ promo_code }}", "uses_promo")
    renderer = TemplateRenderer(tmp_path)

    with pytest.raises(UndefinedVariableError) as nested:
        renderer.render("uses_nickname", channel="sms", locale="zh-CN", context=context())
    with pytest.raises(UndefinedVariableError) as top_level:
        renderer.render("uses_promo", channel="sms", locale="zh-CN", context=context())

    assert nested.value.variable == "user.nickname"
    assert "uses_nickname.yaml" in str(nested.value)
    assert "'user.nickname'" in str(nested.value)
    assert "locales.zh-CN.body" in str(nested.value)
    assert top_level.value.variable == "promo_code"
    assert "uses_promo.yaml" in str(top_level.value)


def test_undefined_variable_in_a_block_names_its_line(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "multi",
        """
        channel: push
        locales:
          zh-CN:
            title: "标题"
            body: |
              第一行
              {{ coupon.discount }}
        """,
    )
    with pytest.raises(UndefinedVariableError) as error:
        TemplateRenderer(tmp_path).render(
            "multi", channel="push", locale="zh-CN", context=context()
        )
    assert error.value.variable == "coupon.discount"
    assert str(error.value).startswith("multi.yaml, line 7 (locales.zh-CN.body):")


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "broken",
        """
        channel: email
        locales:
          zh-CN:
            subject: "你好"
            html: |
              <p>第一行</p>
              <p>{{ user.name }</p>
            text: "ok"
        """,
    )
    with pytest.raises(InvalidTemplateError) as error:
        TemplateRenderer(tmp_path).render(
            "broken", channel="email", locale="zh-CN", context=context()
        )
    message = str(error.value)
    assert message.startswith("broken.yaml, line 7 (locales.zh-CN.html): template syntax error")
    assert error.value.line == 7


def test_syntax_error_in_a_one_line_value_names_its_line(tmp_path: Path) -> None:
    sms_template(tmp_path, "{% if user.name %}hi", "unclosed")
    with pytest.raises(InvalidTemplateError, match=r"^unclosed\.yaml, line 4 \(locales\.zh-CN"):
        TemplateRenderer(tmp_path).channel_of("unclosed")


def test_unknown_template_is_named(renderer: TemplateRenderer) -> None:
    with pytest.raises(UnknownTemplateError, match="new_user_welcom_sms"):
        renderer.render("new_user_welcom_sms", channel="sms", locale="zh-CN", context=context())
    with pytest.raises(UnknownTemplateError):
        renderer.channel_of("nope")


@pytest.mark.parametrize("name", ["../pyproject", "/etc/passwd", "templates/x", ""])
def test_names_cannot_reach_outside_the_directory(renderer: TemplateRenderer, name: str) -> None:
    with pytest.raises(UnknownTemplateError):
        renderer.channel_of(name)


def test_wrong_channel_is_refused(renderer: TemplateRenderer) -> None:
    with pytest.raises(WrongChannelError, match="written for sms, not email"):
        renderer.render("new_user_welcome_sms", channel="email", locale="en", context=context())


def test_a_filter_refusing_its_input_is_a_template_error(tmp_path: Path) -> None:
    sms_template(tmp_path, "省{{ coupon.amount_fen | yuan }}", "amount")
    ctx = context()
    ctx["coupon"]["amount_fen"] = 19.9
    with pytest.raises(TemplateError, match=r"amount\.yaml.*integer amount in fen"):
        TemplateRenderer(tmp_path).render("amount", channel="sms", locale="zh-CN", context=ctx)


def test_a_part_that_renders_empty_is_an_error(tmp_path: Path) -> None:
    sms_template(tmp_path, "{% if user.member_tier %}VIP专享{% endif %}", "vip")
    with pytest.raises(TemplateError, match=r"vip\.yaml \(locales\.zh-CN\.body\): renders empty"):
        TemplateRenderer(tmp_path).render("vip", channel="sms", locale="zh-CN", context=context())


# --- sandbox and escaping ------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ user.__class__ }}",
        "{{ user.name.__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ coupon.expires_at.__class__ }}",
        "{{ user.update({'id': 'someone-else'}) }}",
        "{{ trigger.properties.clear() }}",
    ],
)
def test_templates_cannot_reach_python_internals(tmp_path: Path, expression: str) -> None:
    sms_template(tmp_path, expression, "escape")
    ctx = context()
    with pytest.raises(SandboxViolationError, match=r"escape\.yaml"):
        TemplateRenderer(tmp_path).render("escape", channel="sms", locale="zh-CN", context=ctx)
    assert ctx["user"]["id"] == "u_1001" and ctx["trigger"]["properties"] == {"method": "phone"}


@pytest.mark.parametrize(
    "statement", ["{% include 'new_user_welcome_sms.yaml' %}", "{% extends '/etc/passwd' %}"]
)
def test_templates_cannot_read_files(tmp_path: Path, statement: str) -> None:
    sms_template(tmp_path, statement, "reader")
    with pytest.raises(TemplateError, match="cannot include"):
        TemplateRenderer(tmp_path).render("reader", channel="sms", locale="zh-CN", context={})


def test_user_html_is_escaped_in_email_html_only(renderer: TemplateRenderer) -> None:
    message = render_shipped(renderer, "new_user_last_chance_email", "en", name='<b>Bob</b> & "co"')
    assert message.html is not None
    assert "Hi &lt;b&gt;Bob&lt;/b&gt; &amp; &#34;co&#34;," in message.html
    assert "<b>Bob</b>" not in message.html
    assert message.body.startswith('Hi <b>Bob</b> & "co",')


def test_subject_and_title_stay_on_one_line(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "hello_push",
        """
        channel: push
        locales:
          zh-CN:
            title: "{{ user.name }}，你好"
            body: "正文"
            link: "{{ trigger.properties.link | default('') }}"
        """,
    )
    message = TemplateRenderer(tmp_path).render(
        "hello_push", channel="push", locale="zh-CN", context=context(name="王\r\n小明")
    )
    assert message.title == "王 小明，你好"
    assert message.data == {}  # an empty link is left out


def test_push_data_and_delivery_options_come_from_the_template(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "options_push",
        """
        channel: push
        data:
          coupon_code: "{{ coupon.code }}"
          nickname: "{{ user.name or '' }}"
        priority: high
        ttl: 6h
        sound: default
        locales:
          zh-CN:
            title: 券到账
            body: 快去用
            link: app://coupons
        """,
    )
    ctx = context(name=None) | {"coupon": {"code": "NEW20"}}

    message = TemplateRenderer(tmp_path).render(
        "options_push", channel="push", locale="zh-CN", context=ctx
    )

    # A data value that renders empty is left out, as the link is.
    assert message.data == {"link": "app://coupons", "coupon_code": "NEW20"}
    assert (message.priority, message.ttl_seconds, message.sound) == ("high", 6 * 3600, "default")


def test_push_without_options_leaves_them_to_fcm(renderer: TemplateRenderer) -> None:
    message = renderer.render(
        "new_user_reminder_push", channel="push", locale="zh-CN", context=sample_context()
    )

    assert (message.priority, message.ttl_seconds, message.sound) == (None, None, None)


def test_a_data_value_that_fails_names_the_data_key(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "bad_data",
        """
        channel: push
        data:
          code: "{{ coupon.missing.code }}"
        locales:
          zh-CN: {title: t, body: b}
        """,
    )

    [problem] = TemplateRenderer(tmp_path).check(
        "bad_data", channel="push", context=sample_context()
    )

    assert problem.startswith("bad_data.yaml, line 3 (data.code): undefined variable")


# --- check(), as journey validation uses it ------------------------------------------------


@pytest.mark.parametrize("part", ["subject", "html", "text"])
def test_check_refuses_an_email_whose_subject_or_body_renders_empty(
    tmp_path: Path, part: str
) -> None:
    parts = {"subject": "s", "html": "<p>h</p>", "text": "t"} | {part: "{{ '' }}"}
    write_template(
        tmp_path,
        "empty_email",
        "channel: email\nlocales:\n  zh-CN:\n"
        + "".join(f'    {name}: "{value}"\n' for name, value in parts.items()),
    )

    [problem] = TemplateRenderer(tmp_path).check(
        "empty_email", channel="email", context=sample_context()
    )

    assert f"(locales.zh-CN.{part}): renders empty" in problem


def test_check_passes_every_shipped_template(renderer: TemplateRenderer) -> None:
    for name in renderer.names():
        channel = renderer.channel_of(name)
        assert renderer.check(name, channel=channel, context=sample_context()) == []


def test_check_reports_each_broken_locale(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "half_broken",
        """
        channel: sms
        locales:
          zh-CN: {body: "{{ user.name }}你好"}
          en: {body: "Hi {{ user.first_name }}"}
        """,
    )
    problems = TemplateRenderer(tmp_path).check(
        "half_broken", channel="sms", context=sample_context()
    )
    assert len(problems) == 1
    assert "half_broken.yaml" in problems[0]
    assert "locales.en.body" in problems[0]
    assert "user.first_name" in problems[0]


def test_check_reports_unknown_malformed_and_misused_templates(tmp_path: Path) -> None:
    sms_template(tmp_path, "{{ oops }", "syntax")
    renderer = TemplateRenderer(tmp_path)
    ctx = sample_context()

    assert renderer.check("missing", channel="sms", context=ctx) == [
        f"missing: no template named 'missing' in {tmp_path}"
    ]
    [syntax] = renderer.check("syntax", channel="sms", context=ctx)
    assert syntax.startswith("syntax.yaml, line 4 (locales.zh-CN.body): template syntax error")
    [wrong] = TemplateRenderer().check("new_user_welcome_sms", channel="push", context=ctx)
    assert "written for sms, not push" in wrong


@pytest.mark.parametrize(
    "expression",
    [
        "{{ '{0.__class__}'|attr('format')(user) }}",
        "{{ '{0.__class__.__mro__}'.format(user) }}",
        "{{ 'a' * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ 9 ** 9999999 }}",
    ],
)
def test_template_injection_payloads_are_refused(tmp_path: Path, expression: str) -> None:
    sms_template(tmp_path, expression, "payload")
    with pytest.raises(SandboxViolationError, match=r"payload\.yaml"):
        TemplateRenderer(tmp_path).render(
            "payload", channel="sms", locale="zh-CN", context=context()
        )


def test_a_huge_range_is_refused(tmp_path: Path) -> None:
    sms_template(tmp_path, "{% for i in range(10000000) %}x{% endfor %}", "loop")
    with pytest.raises(TemplateError, match="Range too big"):
        TemplateRenderer(tmp_path).render("loop", channel="sms", locale="zh-CN", context=context())


def test_email_preheader_leads_the_html_hidden(renderer: TemplateRenderer) -> None:
    message = render_shipped(renderer, "new_user_last_chance_email", "zh-CN")
    assert message.html is not None
    first_line = message.html.splitlines()[0]
    assert first_line.startswith('<div style="display:none;')
    assert "满¥50减¥20" in first_line

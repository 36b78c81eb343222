"""The Templates pages: the list, a preview for the sample or a real user, and test sends
through the configured provider to allow-listed addresses only."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from console_support import NOW, console_client, csrf_of, log_in
from provider_servers import TWILIO_SID, TWILIO_TOKEN
from sqlalchemy import select

import message_templates.render
from config import Settings
from journey_support import add_user
from message_templates.render import TemplateRenderer
from message_templates.sms import sms_segments
from message_templates.spec import read_template_file
from store.db import transaction
from store.ledger import users_with_recent_sends
from store.models import Coupon, Message, OutboxMessage, User
from store.reports import journey_report, user_timeline

pytest_plugins = ["provider_fixtures"]

ALLOWED_PHONE = "+8613800138000"


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def locale_card(page: str, locale: str) -> str:
    match = re.search(rf'<div class="card" data-locale="{locale}">(.*?)\n</div>', page, re.S)
    assert match, f"no card for {locale}"
    return match.group(1)


def add_reader(db, user_id: str, *, name: str, locale: str, coupon: str) -> None:
    add_user(db.factory, user_id, NOW - timedelta(days=1), locale=locale)
    with transaction(db.factory) as session:
        session.get_one(User, user_id).traits = {"name": name}
        session.add(
            Coupon(
                issue_key=f"test:{user_id}",
                code=coupon,
                user_id=user_id,
                amount_fen=3000,
                min_spend_fen=9900,
                issued_at=NOW - timedelta(days=1),
                expires_at=NOW + timedelta(days=5),
            )
        )


def ledger(db) -> list[Message]:
    with db.factory() as session:
        return list(session.scalars(select(Message)))


@pytest.fixture
def own_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The renderer reads templates from a directory of the test's own."""
    directory = tmp_path / "templates"
    directory.mkdir()
    monkeypatch.setattr(message_templates.render, "TEMPLATES_DIRECTORY", directory)
    return directory


def test_the_list_shows_every_shipped_template_with_its_channel_and_locales(db, admin):
    http, _ = admin
    page = http.get("/console/templates")
    assert page.status_code == 200
    assert 'class="here">Templates</a>' in page.text
    rows = {
        key: text_of(body)
        for key, body in re.findall(r'<tr data-template="([^"]+)">(.*?)</tr>', page.text, re.S)
    }
    shipped = TemplateRenderer()
    assert sorted(rows) == shipped.names()
    for name, row in rows.items():
        spec = read_template_file(shipped.directory / f"{name}.yaml", name=name)
        assert f" {spec.channel} {', '.join(spec.locales)} 0" in row, row


def test_a_preview_for_a_real_user_uses_their_name_coupon_and_locale(db, admin):
    http, _ = admin
    add_reader(db, "reader-zh", name="李雷", locale="zh-CN", coupon="LILEI-30")
    add_reader(db, "reader-en", name="Alex", locale="en-US", coupon="ALEX-30")

    zh = http.get("/console/templates/new_user_welcome_sms", params={"user": "reader-zh"}).text
    assert re.search(r"<b data-chosen>zh-CN</b>", zh) and "the sample's" not in text_of(zh)
    body = text_of(locale_card(zh, "zh-CN"))
    assert "李雷，欢迎加入" in body and "LILEI-30" in body and "满¥99减¥30" in body

    en = http.get("/console/templates/new_user_welcome_sms", params={"user": "reader-en"}).text
    assert re.search(r"<b data-chosen>en</b>", en)
    body = text_of(locale_card(en, "en"))
    assert "Hi Alex, welcome!" in body and "ALEX-30" in body and "¥30 off" in body

    sample = http.get("/console/templates/new_user_welcome_sms").text
    assert "NEW20-7KQ9" in text_of(locale_card(sample, "zh-CN"))  # the sample coupon
    add_user(db.factory, "no-coupon", NOW - timedelta(days=1))
    bare = http.get("/console/templates/new_user_welcome_sms", params={"user": "no-coupon"})
    assert "coupon NEW20-7KQ9 (the sample's: this user holds none)" in text_of(bare.text)
    missing = http.get("/console/templates/new_user_welcome_sms", params={"user": "nobody"})
    assert "No user nobody: showing sample data." in text_of(missing.text)
    assert http.get("/console/templates/no_such_template").status_code == 404


def test_a_long_chinese_sms_shows_the_segments_and_encoding_it_is_billed_as(
    sqlite_db, own_templates
):
    long_text = "亲爱的{{ user.name }}，" + "感谢你一直以来的支持，本周会员日全场满减。" * 6
    (own_templates / "long_sms.yaml").write_text(
        f'channel: sms\nlocales:\n  zh-CN:\n    body: "{long_text}"\n', encoding="utf-8"
    )
    http = console_client(sqlite_db)
    log_in(http)
    card = locale_card(http.get("/console/templates/long_sms").text, "zh-CN")

    rendered = TemplateRenderer(own_templates).render(
        "long_sms", channel="sms", locale="zh-CN", context=sample_context_of()
    )
    segments = sms_segments(rendered.body)
    assert segments == rendered.segments and segments >= 3
    assert f'data-segments="{segments}" data-encoding="UCS-2"' in card
    assert f"{segments} SMS segments · UCS-2 · {len(rendered.body)} characters" in card
    assert unescape(re.search(r"<pre data-body[^>]*>(.*?)</pre>", card, re.S)[1]) == rendered.body


def sample_context_of() -> dict:
    from message_templates.sample import sample_context

    return sample_context()


def test_email_html_is_shown_in_a_sandboxed_frame_and_its_script_never_runs(
    sqlite_db, own_templates
):
    (own_templates / "scripted_email.yaml").write_text(
        "channel: email\n"
        "locales:\n"
        "  zh-CN:\n"
        '    subject: "你好 {{ user.name }}"\n'
        '    preheader: "今天下单立减"\n'
        '    html: "<p>Hi</p><script>alert(document.cookie)</script>"\n'
        '    text: "你好，文本版"\n',
        encoding="utf-8",
    )
    http = console_client(sqlite_db)
    log_in(http)
    answer = http.get("/console/templates/scripted_email")
    page = answer.text
    assert "<script" not in page.lower()  # nowhere in the console's own page
    frame = re.search(r"<iframe ([^>]*)>", page)[1]
    # An empty sandbox: no scripts, no same origin, no forms, no popups.
    assert re.search(r"(^| )sandbox( |$)", frame) and "allow-" not in frame
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame)[1]
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in srcdoc
    assert "今天下单立减" in unescape(srcdoc)  # the preheader leads the HTML
    card = text_of(locale_card(page, "zh-CN"))
    assert "Subject: 你好 王小明" in card and "Preheader: 今天下单立减" in card
    assert "你好，文本版" in card
    assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_a_push_preview_shows_title_body_and_data(sqlite_db):
    http = console_client(sqlite_db)
    log_in(http)
    card = locale_card(http.get("/console/templates/cart_reminder_push").text, "en")
    assert "<span data-title>Still in your cart</span>" in card
    assert re.search(r"<pre data-body[^>]*>[^<]+</pre>", card)
    assert '<tr data-push-data="link"><th>link</th><td>app://cart</td></tr>' in card


def test_a_templates_problems_are_listed_with_their_line(sqlite_db, own_templates):
    (own_templates / "broken_sms.yaml").write_text(
        "channel: sms\n"
        "locales:\n"
        "  zh-CN:\n"
        '    body: "你好"\n'
        "  en:\n"
        '    body: "Hi {{ user.nickname }}"\n',
        encoding="utf-8",
    )
    http = console_client(sqlite_db)
    log_in(http)
    listed = text_of(http.get("/console/templates").text)
    assert "broken_sms sms zh-CN, en 1" in listed
    page = http.get("/console/templates/broken_sms").text
    (problem,) = re.findall(r'<tr data-problem="1">(.*?)</tr>', page, re.S)
    assert text_of(problem) == "6 locales.en.body undefined variable 'user.nickname'"

    (own_templates / "unreadable_sms.yaml").write_text("channel: sms\nlocales: [\n")
    page = http.get("/console/templates/unreadable_sms").text
    (problem,) = re.findall(r'<tr data-problem="1">(.*?)</tr>', page, re.S)
    assert text_of(problem).startswith("3 not valid YAML")
    assert "This template cannot be read: fix the problems above first." in text_of(page)


def send_form(http, csrf: str, **fields: str):
    return http.post(
        "/console/templates/new_user_welcome_sms/send-test", data={"csrf": csrf, **fields}
    )


def through_twilio(server) -> dict[str, str]:
    return {
        "sms_provider": "twilio",
        "twilio_account_sid": TWILIO_SID,
        "twilio_auth_token": TWILIO_TOKEN,
        "twilio_from_number": "+15005550006",
        "twilio_base_url": server.url,
    }


def test_a_test_send_reaches_the_provider_and_is_one_ledger_row_marked_test(db, twilio_server):
    twilio = through_twilio(twilio_server)
    http = console_client(db, test_send_allowlist="+86 138 0013 8000, qa@example.com", **twilio)
    csrf = log_in(http)
    add_reader(db, "reader-en", name="Alex", locale="en", coupon="ALEX-30")
    page = http.get("/console/templates/new_user_welcome_sms", params={"user": "reader-en"}).text
    assert f'<option value="{ALLOWED_PHONE}">' in page
    assert 'value="qa@example.com"' not in page  # an email address is no SMS recipient

    answer = send_form(http, csrf, to=ALLOWED_PHONE, locale="en", user="reader-en")
    assert answer.status_code == 303
    (sent,) = twilio_server.messages
    assert sent.body["To"] == ALLOWED_PHONE
    assert sent.body["Body"].startswith("Hi Alex, welcome!") and "ALEX-30" in sent.body["Body"]

    (row,) = ledger(db)
    assert (row.topic, row.step_id, row.journey_id, row.broadcast_id, row.user_id) == (
        "test",
        "test_send",
        None,
        None,
        None,
    )
    assert (row.status, row.provider, row.provider_message_id) == (
        "sent",
        "twilio",
        twilio_server.sids[0],
    )
    shown = http.get(answer.headers["location"]).text
    assert f"Test message #{row.id}: sent through twilio ({twilio_server.sids[0]})." in text_of(
        shown
    )
    with db.factory() as session:
        # Caps count the user's marketing sends, reports the journey's and the user's own.
        assert (
            users_with_recent_sends(session, user_ids=["reader-en"], since=NOW - timedelta(days=30))
            == set()
        )
        assert journey_report(session, journey_id="new_user_coupon").steps == []
        assert all(entry.kind != "message" for entry in user_timeline(session, user_id="reader-en"))


def test_a_test_send_the_provider_refuses_says_why(sqlite_db, twilio_server):
    http = console_client(
        sqlite_db, test_send_allowlist=ALLOWED_PHONE, **through_twilio(twilio_server)
    )
    csrf = log_in(http)
    twilio_server.fail_next(400, code=21211, message="The 'To' number is not valid.")
    answer = send_form(http, csrf, to=ALLOWED_PHONE, locale="en")
    (row,) = ledger(sqlite_db)
    assert (row.topic, row.status, row.reason, row.provider) == (
        "test",
        "failed",
        "invalid_number",
        "twilio",
    )
    shown = text_of(http.get(answer.headers["location"]).text)
    assert f"Test message #{row.id}: failed through twilio: invalid_number." in shown


def test_a_test_send_through_the_outbox(db):
    http = console_client(db, test_send_allowlist=ALLOWED_PHONE)
    csrf = log_in(http)
    assert send_form(http, csrf, to=ALLOWED_PHONE, locale="zh-CN").status_code == 303
    with db.factory() as session:
        (kept,) = session.scalars(select(OutboxMessage))
        assert kept.recipient == ALLOWED_PHONE and "NEW20-7KQ9" in kept.body
    (row,) = ledger(db)
    assert (row.topic, row.status, row.provider, row.idempotency_key) == (
        "test",
        "sent",
        "outbox",
        kept.message_key,
    )


def test_an_address_off_the_allow_list_is_refused(db, twilio_server):
    http = console_client(db, test_send_allowlist=ALLOWED_PHONE)
    csrf = log_in(http)
    answer = send_form(http, csrf, to="+8613900000000", locale="zh-CN")
    assert answer.status_code == 400
    assert "that address is not on LIFECYCLE_TEST_SEND_ALLOWLIST for sms" in text_of(answer.text)
    assert ledger(db) == []

    closed = console_client(db)
    csrf = log_in(closed)
    page = closed.get("/console/templates/new_user_welcome_sms").text
    assert "Test sends are off" in text_of(page) and '/send-test"' not in page
    answer = send_form(closed, csrf, to=ALLOWED_PHONE, locale="zh-CN")
    assert answer.status_code == 400
    assert "test sends are off: list the addresses they may go to in " in text_of(answer.text)
    assert ledger(db) == []


def test_a_forged_test_send_is_refused(db):
    http = console_client(db, test_send_allowlist=ALLOWED_PHONE)
    csrf = log_in(http)
    assert send_form(http, "forged-token", to=ALLOWED_PHONE).status_code == 403
    assert send_form(http, "", to=ALLOWED_PHONE).status_code == 403
    stranger = console_client(db, test_send_allowlist=ALLOWED_PHONE)
    assert send_form(stranger, csrf, to=ALLOWED_PHONE).status_code == 303  # to the login page
    assert (
        stranger.post(
            "/console/templates/new_user_welcome_sms/send-test", data={"to": ALLOWED_PHONE}
        )
        .headers["location"]
        .endswith("/login")
    )
    assert ledger(db) == []
    assert csrf_of(http.get("/console/templates").text) == csrf


def test_the_allow_list_setting_normalises_phone_numbers_as_profiles_are():
    settings = Settings(test_send_allowlist=" +86 138-0013-8000 ,qa@example.com,, fcm-token-1")
    assert settings.test_send_allowlist == [ALLOWED_PHONE, "qa@example.com", "fcm-token-1"]
    assert Settings().test_send_allowlist == []
    with pytest.raises(ValueError, match="'138' is not an E.164 phone number"):
        Settings(test_send_allowlist="138")

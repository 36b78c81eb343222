"""``lifecycle templates preview --user``: a real user's name, coupon and locale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli import main
from journey_support import add_user
from store.db import transaction
from store.models import Coupon, User

NOW = datetime.now(UTC)


@pytest.fixture
def cli_db(db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The command line on ``db``, with no stray settings from the environment or .env."""
    monkeypatch.chdir(tmp_path)
    for name in ("LIFECYCLE_ENVIRONMENT", "LIFECYCLE_ADMIN_TOKEN", "LIFECYCLE_WRITE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", db.url)
    return db


def add_reader(db, user_id: str, *, name: str, locale: str, coupon: str | None) -> None:
    add_user(db.factory, user_id, NOW - timedelta(days=1), locale=locale)
    with transaction(db.factory) as session:
        session.get_one(User, user_id).traits = {"first_name": name}
        if coupon is None:
            return
        # A usable coupon, and a newer one that has already expired.
        for code, issued, expires in ((coupon, 72, 120), (f"{coupon}-EXPIRED", 2, -1)):
            session.add(
                Coupon(
                    issue_key=f"test:{code}",
                    code=code,
                    user_id=user_id,
                    amount_fen=3000,
                    min_spend_fen=9900,
                    issued_at=NOW - timedelta(hours=issued),
                    expires_at=NOW + timedelta(hours=expires),
                )
            )


def preview(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["templates", "preview", "new_user_welcome_sms", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_a_preview_for_a_user_has_their_name_usable_coupon_and_locale(cli_db, capsys):
    add_reader(cli_db, "reader-en", name="Alex", locale="en-US", coupon="ALEX-30")
    add_reader(cli_db, "reader-zh", name="李雷", locale="zh-CN", coupon=None)

    out = preview(capsys, "--user", "reader-en")
    assert out.startswith("new_user_welcome_sms · sms · en · ")
    assert "Hi Alex, welcome!" in out and "Code ALEX-30," in out and "ALEX-30-EXPIRED" not in out
    assert "¥30 off orders of ¥99 or more" in out

    out = preview(capsys, "--user", "reader-en", "--locale", "zh-CN")
    assert "Alex，欢迎加入" in out and "ALEX-30" in out

    out = preview(capsys, "--user", "reader-zh")  # no coupon: the sample's
    assert "李雷，欢迎加入" in out and "NEW20-7KQ9" in out

    assert main(["templates", "preview", "new_user_welcome_sms", "--user", "nobody"]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err

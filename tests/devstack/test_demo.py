"""``lifecycle demo`` tells the new-user journey's story for a synthetic population."""

from __future__ import annotations

import io

from rich.console import Console

from config import Settings
from devstack.demo import run_demo


async def test_demo_runs_every_user_through_the_journey(tmp_path):
    out = io.StringIO()
    settings = Settings(environment="test", data_dir=tmp_path)
    result = await run_demo(settings, users=60, seed=3, console=Console(file=out, width=140))
    text = out.getvalue()

    assert result.entered == 60
    assert 0 < result.converted < 60
    assert result.sample_user is not None
    # The sample user's timeline: coupon, SMS at signup, push on day 2, email on day 6, exit.
    for line in (
        "coupon",
        "sms welcome_sms",
        "push day2_push",
        "email day6_email",
        "converted",
    ):
        assert line in text, text
    assert "day  2.0" in text and "day  6.0" in text
    assert "treatment" in text and "holdout" in text
    assert (tmp_path / "demo.db").exists()

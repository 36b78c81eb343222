"""``lifecycle demo``: the four shipped journeys simulated for a synthetic population."""

from __future__ import annotations

import io

from rich.console import Console

from config import Settings
from devstack.demo import run_demo


async def test_demo_simulates_the_shipped_journeys(tmp_path):
    out = io.StringIO()
    settings = Settings(environment="development", data_dir=tmp_path, quiet_hours="21:00-08:00")
    result = await run_demo(
        settings, users=30, days=2, seed=3, console=Console(file=out, width=140)
    )
    text = out.getvalue()

    funnels = {j.journey_id: j for j in result.simulation.journeys}
    assert list(funnels) == [
        "new_user_coupon",
        "cart_abandonment",
        "coupon_expiry",
        "dormancy_wakeup",
    ]
    # Newcomers sign up, dormant users are swept in, carts are left, coupons are issued.
    for journey_id, funnel in funnels.items():
        assert sum(funnel.entered.values()) > 0, journey_id
    assert result.entered == sum(sum(f.entered.values()) for f in funnels.values())
    assert result.sample_user is not None
    assert f"Timeline of {result.sample_user} (treatment in new_user_coupon" in text
    for title in ("7-day new-user coupon", "Cart abandonment", "Coupon-expiry nudges"):
        assert title in text
    assert "marketing sends inside quiet hours: 0" in text
    assert (tmp_path / "demo.db").exists()
    # It ends with each journey's ROI, saying when the holdout is too small to tell.
    assert [line.split(":")[0] for line in result.roi] == list(funnels)
    ending = text.rstrip().splitlines()[-len(result.roi) :]
    assert [line.strip() for line in ending] == result.roi
    assert all(" — " in line for line in result.roi)
    # A lift from a handful held out says it is not significant.
    unsure = [f for f in funnels.values() if f.lift.significant is False]
    assert text.count("relative (not significant)") == len(unsure)

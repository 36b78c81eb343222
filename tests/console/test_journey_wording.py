"""The console's publish form shows journey problems in the marketer's words."""

from __future__ import annotations

from html import unescape

from console_support import NOW

from journey_support import publish_shipped
from journeys.models import STEP_TYPES
from journeys.validate import shipped_journey_files
from store.journeys import latest_version


def test_a_step_without_a_type_is_refused_with_the_step_types(db, admin):
    http, csrf = admin
    publish_shipped(db.factory, "new_user_coupon", NOW)
    (path,) = [p for p in shipped_journey_files() if p.stem == "new_user_coupon"]
    text = path.read_text(encoding="utf-8")
    assert "    type: wait\n" in text
    broken = text.replace("    type: wait\n", "", 1).replace(
        "    type: send\n", "    type: sned\n", 1
    )
    answer = http.post(
        "/console/journeys/publish",
        data={"csrf": csrf, "yaml": broken, "journey": "new_user_coupon"},
    )
    assert answer.status_code == 400
    page = unescape(answer.text)
    types = ", ".join(STEP_TYPES)
    assert f"has no `type:`; expected one of {types}" in page
    assert f"has `type: sned`, which is not a step type; expected one of {types}" in page
    assert "did you mean `type: send`?" in page
    assert "discriminator" not in page and "Input tag" not in page
    with db.factory() as session:
        assert latest_version(session, journey_id="new_user_coupon").version == 1

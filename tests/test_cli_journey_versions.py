"""``lifecycle journeys publish --note``, ``history``, ``rollback`` and ``draft``, run
in-process against a SQLite file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, database_url, run

from cli import main
from journeys.validate import shipped_journey_files

__all__ = ["database_url"]  # the fixture, used by name

SHIPPED = next(p for p in shipped_journey_files() if p.stem == "new_user_coupon")
SOURCE = SHIPPED.read_text()
EDITED = SOURCE.replace("holdout: 10 ", "holdout: 20 ")
BROKEN = EDITED.replace("template: new_user_reminder_push", "template: nope")

Capsys = pytest.CaptureFixture[str]


@pytest.mark.parametrize(
    "argv",
    [
        ["history"],
        ["rollback"],
        ["draft"],
        ["draft", "save"],
        ["draft", "show"],
        ["draft", "diff"],
        ["draft", "publish"],
    ],
    ids=" ".join,
)
def test_each_command_has_help_with_an_example(argv: list[str], capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["journeys", *argv, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: lifecycle journeys {' '.join(argv)}" in out
    assert re.search(r"^example:\n  lifecycle journeys ", out, re.MULTILINE)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "draft.yaml"
    path.write_text(text)
    return str(path)


def test_publish_with_a_note_then_history_and_rollback(
    database_url: str, tmp_path: Path, capsys: Capsys
) -> None:
    assert run(capsys, "migrate")[0] == 0
    assert run(capsys, "journeys", "publish", str(SHIPPED), "--author", "ana")[1] == (
        "new_user_coupon: version 1 published\n"
    )
    code, out, _ = run(
        capsys, "journeys", "publish", write(tmp_path, EDITED), "--note", "more holdout",
        "--author", "bo",
    )  # fmt: skip
    assert (code, out) == (0, "new_user_coupon: version 2 published\n")

    code, out, _ = run(capsys, "journeys", "history", "new_user_coupon")
    assert code == 0
    v2, v1 = out.splitlines()
    assert re.match(r"v2 +\d{4}-\d\d-\d\d \d\d:\d\d bo +published more holdout$", v2), v2
    assert re.match(r"v1 +\d{4}-\d\d-\d\d \d\d:\d\d ana +archived$", v1), v1

    out = run(capsys, "journeys", "history", "new_user_coupon", "--diff")[1]
    assert "--- new_user_coupon v1\n+++ new_user_coupon v2\n" in out
    assert "\n-holdout: 10 " in out and "\n+holdout: 20 " in out

    code, out, _ = run(
        capsys, "journeys", "rollback", "new_user_coupon", "1", "--note", "too many held out",
        "--author", "cy",
    )  # fmt: skip
    assert (code, out) == (
        0,
        "new_user_coupon: version 3 published (rolled back to v1: too many held out)\n",
    )
    out = run(capsys, "journeys", "show", "new_user_coupon")[1]
    assert out.startswith("new_user_coupon v3 (published") and "holdout: 10 " in out
    out = run(capsys, "journeys", "rollback", "new_user_coupon", "1")[1]
    assert out == "new_user_coupon: unchanged, version 3 stays live\n"

    for argv, said in (
        (("rollback", "new_user_coupon", "9"), "new_user_coupon has no version 9"),
        (("history", "nothing"), "no journey 'nothing' has been published"),
    ):
        code, _, err = run(capsys, "journeys", *argv)
        assert code == 1
        assert said in assert_one_line_error(err)


def test_a_draft_is_saved_with_its_problems_compared_and_published(
    database_url: str, tmp_path: Path, capsys: Capsys
) -> None:
    assert run(capsys, "migrate")[0] == 0
    assert run(capsys, "journeys", "publish", str(SHIPPED))[0] == 0

    code, out, _ = run(capsys, "journeys", "draft", "save", write(tmp_path, BROKEN))
    assert code == 0
    said, problem = out.splitlines()
    assert said == "new_user_coupon: draft saved; 1 error(s) to fix before it can be published:"
    line = BROKEN.splitlines().index("    template: nope") + 1
    assert (
        problem == f"  {tmp_path / 'draft.yaml'}:{line}: steps[3].template: unknown template 'nope'"
    )
    # Nothing went live.
    assert run(capsys, "journeys", "show", "new_user_coupon")[1].startswith("new_user_coupon v1 ")

    out = run(capsys, "journeys", "draft", "diff", "new_user_coupon")[1]
    assert out.startswith("--- new_user_coupon v1 (live)\n+++ new_user_coupon draft\n")
    assert "\n+    template: nope\n" in out

    code, _, err = run(capsys, "journeys", "draft", "publish", "new_user_coupon")
    assert code == 1 and "unknown template 'nope'" in err and "Traceback" not in err
    assert run(capsys, "journeys", "draft", "show", "new_user_coupon")[1].splitlines()[1] == (
        "problems:"
    )

    assert run(capsys, "journeys", "draft", "save", write(tmp_path, EDITED))[1] == (
        "new_user_coupon: draft saved\n"
    )
    code, out, _ = run(
        capsys, "journeys", "draft", "publish", "new_user_coupon", "--note", "more holdout",
        "--author", "ana",
    )  # fmt: skip
    assert (code, out) == (0, "new_user_coupon: version 2 published (more holdout)\n")
    code, _, err = run(capsys, "journeys", "draft", "diff", "new_user_coupon")
    assert code == 1
    assert assert_one_line_error(err) == (
        "lifecycle: new_user_coupon has no draft: lifecycle journeys draft save FILE"
    )


def test_a_draft_without_an_id_needs_one(database_url: str, tmp_path: Path, capsys: Capsys):
    assert run(capsys, "migrate")[0] == 0
    code, _, err = run(capsys, "journeys", "draft", "save", write(tmp_path, "steps: [\n"))
    assert code == 1
    assert "give --journey ID" in assert_one_line_error(err)
    code, out, _ = run(
        capsys, "journeys", "draft", "save", write(tmp_path, "steps: [\n"), "--journey", "mine"
    )
    assert code == 0 and out.startswith("mine: draft saved; 1 error(s)")

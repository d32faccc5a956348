"""The teams file: business hours, first-response targets, and how waits are worded for clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common.yamlfile import ContentError
from dialogs.content import load_content
from dialogs.engine import Engine
from dialogs.teams import TeamBook, TeamsFile, Wording, load_teams, parse_duration
from tests.conftest import Dialog

# Monday 23 November 2026; Novosibirsk is UTC+7.
MONDAY_NOON_NSK = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


def shipped() -> TeamBook:
    return load_teams(Path(__file__).resolve().parent.parent / "content" / "provider" / "teams.yaml")


def test_open_hours_and_the_next_opening() -> None:
    office = shipped().team_for("billing")
    assert office is not None
    assert office.is_open(MONDAY_NOON_NSK)
    late_monday = MONDAY_NOON_NSK + timedelta(hours=9)  # 21:00 local, closes at 20:00
    assert not office.is_open(late_monday)
    opens = office.next_opening(late_monday)
    assert opens is not None and (opens.weekday(), opens.hour, opens.minute) == (1, 9, 0)
    saturday_evening = MONDAY_NOON_NSK + timedelta(days=5, hours=6)  # Saturday 18:00, closed Sunday
    opens = office.next_opening(saturday_evening)
    assert opens is not None and (opens.weekday(), opens.hour) == (0, 9)


def test_plan_during_hours_is_due_after_the_channel_target() -> None:
    book = shipped()
    plan = book.plan("tech", "telegram", MONDAY_NOON_NSK)
    assert plan.open_now and plan.due_at == MONDAY_NOON_NSK + timedelta(minutes=2)
    assert plan.wait == "2 минут"
    email = book.plan("tech", "email", MONDAY_NOON_NSK)
    assert email.due_at == MONDAY_NOON_NSK + timedelta(hours=4) and email.wait == "4 часов"


def test_plan_out_of_hours_is_due_after_opening_and_says_when() -> None:
    book = shipped()
    late = MONDAY_NOON_NSK + timedelta(hours=9)
    plan = book.plan("billing", "telegram", late)
    assert not plan.open_now
    assert plan.opening == "завтра в 9:00"
    assert plan.due_at == datetime(2026, 11, 24, 2, 2, tzinfo=UTC)  # 09:02 in Novosibirsk
    saturday_evening = MONDAY_NOON_NSK + timedelta(days=5, hours=6)
    assert book.plan("billing", "web", saturday_evening).opening == "в понедельник в 9:00"
    early = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 07:30 local, support opens at 08:00
    assert book.plan("tech", "web", early).opening == "сегодня в 8:00"


@pytest.mark.parametrize(
    ("n", "word"), [(1, "минуты"), (2, "минут"), (5, "минут"), (11, "минут"), (21, "минуты"), (22, "минут")]
)
def test_russian_plural_forms_after_v_techenie(n: int, word: str) -> None:
    assert Wording().duration(timedelta(minutes=n)) == f"{n} {word}"


def test_durations_are_parsed_strictly() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    with pytest.raises(ValueError, match="like 90s"):
        parse_duration("2 minutes")


def test_an_unknown_category_has_no_team_and_is_always_open() -> None:
    book = TeamBook(TeamsFile())
    assert book.plan("anything", "telegram", MONDAY_NOON_NSK).open_now


def test_handoff_out_of_hours_tells_the_opening_time(engine: Engine) -> None:
    dialog = Dialog(engine, clock=MONDAY_NOON_NSK + timedelta(hours=9))  # 21:00 Monday in Novosibirsk
    dialog.send("позовите оператора")
    assert "завтра в 9:00" in dialog.last_text
    daytime = Dialog(engine, clock=MONDAY_NOON_NSK)
    daytime.send("позовите оператора")
    assert "2 минут" in daytime.last_text


def _broken(content_copy: Path, text: str) -> ContentError:
    (content_copy / "teams.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_content(content_copy)
    return caught.value


def test_bad_hours_are_reported_at_their_line(content_copy: Path) -> None:
    error = _broken(
        content_copy,
        "teams:\n  desk:\n    hours:\n      mon-fri: '9 to 6'\n    categories:\n"
        "      tech: {responsible: anna}\n      billing: {responsible: anna}\n"
        "      sales: {responsible: anna}\n      general: {responsible: anna}\n",
    )
    assert any(
        i.path.endswith("teams.yaml") and i.line == 4 and "09:00-18:00" in i.message for i in error.issues
    )


def test_unknown_and_unstaffed_categories_are_reported(content_copy: Path) -> None:
    error = _broken(
        content_copy,
        "teams:\n  desk:\n    categories:\n"
        "      tech: {responsible: anna}\n      tehc: {responsible: anna}\n",
    )
    messages = [str(issue) for issue in error.issues]
    assert any("teams.yaml:5:" in m and "unknown category 'tehc'" in m for m in messages)
    assert any("'billing' has no team" in m for m in messages)


def test_a_category_in_two_teams_is_reported(content_copy: Path) -> None:
    error = _broken(
        content_copy,
        "teams:\n  a:\n    categories:\n      tech: {responsible: anna}\n"
        "  b:\n    categories:\n      tech: {responsible: olga}\n",
    )
    assert any("already answered by team 'a'" in str(issue) for issue in error.issues)


def test_responsible_is_subscribed() -> None:
    staff = shipped().staff("sales")
    assert staff is not None and staff.responsible == "olga" and "olga" in staff.operators
    assert shipped().categories_of("anna") == ["tech", "billing", "general"]

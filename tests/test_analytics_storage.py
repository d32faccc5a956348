"""The analytics queries on a real SQLite file and a real PostgreSQL database: a small history with known
answers (tests/support/analytics.py) gives exact numbers, narrowed by period, channel and category; a
generated history is checked against counts made in Python from the same rows; local days follow the
time zone's clock changes; the export has one line per conversation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from bench.analytics_data import Shape, generate, write
from storage import connect
from storage.analytics import Dashboard, ResponseTimes, Scope, SqlAnalytics, nearest_rank
from storage.analytics.export import export_lines
from storage.database import dispose_all
from tests.support.analytics import FIRST, LAST, NOW, ZONE, write_history


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = connect(database_url)
    try:
        yield built
    finally:
        built.dispose()
        dispose_all()


@pytest.fixture
def ids(engine: Engine) -> dict[str, int]:
    return write_history(engine)


def dashboard(engine: Engine, first: date = FIRST, last: date = LAST, **narrowed: object) -> Dashboard:
    scope = Scope.local(first, last, ZONE, **narrowed)  # type: ignore[arg-type]
    return SqlAnalytics(engine).dashboard(scope, NOW)


def per_day(found: Dashboard) -> list[tuple[str, int, int, int, int]]:
    return [
        (line.day.isoformat(), line.conversations, line.incoming, line.outgoing, line.misunderstood)
        for line in found.days
    ]


def test_every_figure_of_three_local_days(engine: Engine, ids: dict[str, int]) -> None:
    found = dashboard(engine)
    # c1 started 00:30 local on the 20th (17:30 UTC on the 19th); c6 started before the period, but its
    # message of the 20th counts on the 20th; c2's messages after midnight count on the 21st.
    assert per_day(found) == [
        ("2026-11-20", 2, 6, 2, 2),
        ("2026-11-21", 1, 5, 6, 1),
        ("2026-11-22", 1, 1, 1, 0),
    ]
    assert [line.misunderstood_rate for line in found.days] == [pytest.approx(100 / 3), 20.0, 0.0]
    assert (found.conversations, found.handed_off, found.bot_alone) == (4, 3, 1)
    assert (found.incoming, found.outgoing) == (12, 9)
    assert found.handoffs == 5
    assert found.reasons == {"escalation": 1, "client_asked": 2, "scenario": 1, "stuck": 1}
    assert found.response == {
        "tech": ResponseTimes(handoffs=2, answered=1, breached=1, durations=(60.0,)),
        "billing": ResponseTimes(handoffs=2, answered=2, breached=1, durations=(120.0, 300.0)),
        "sales": ResponseTimes(handoffs=1, answered=1, breached=0, durations=(30.0,)),
    }
    billing = found.response["billing"]
    assert (billing.median_s, billing.p90_s, billing.breached_share) == (210.0, 300.0, 50.0)
    overall = found.overall
    assert (overall.handoffs, overall.answered, overall.breached) == (5, 4, 2)
    assert (overall.median_s, overall.p90_s) == (90.0, 300.0)
    assert found.ratings == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}
    assert found.average_rating == pytest.approx(11 / 3)
    assert (found.follow_ups_due, found.follow_up_tasks, found.follow_ups_done) == (1, 2, 1)
    personas = {line.persona: line for line in found.personas}
    assert {name: (p.conversations, p.handed_off, p.rated, p.rating_sum) for name, p in personas.items()} == {
        "aggressor": (2, 2, 1, 2),
        "neutral": (1, 0, 0, 0),
        "unsure": (1, 1, 1, 5),
        # c6 started before the period; its handoff of the 20th was rated 4.
        "talker": (0, 0, 1, 4),
    }
    assert personas["aggressor"].handoff_share == 100.0 and personas["neutral"].handoff_share == 0.0
    assert [line.persona for line in found.personas][:1] == ["aggressor"]
    scenarios = [(s.scenario, s.conversations, s.handed_off, s.tasks) for s in found.scenarios]
    assert scenarios == [("no_internet", 2, 2, 1), ("", 1, 0, 0), ("balance", 1, 1, 0), ("callback", 0, 0, 1)]
    assert found.misunderstood == {"not_understood": 2, "stuck": 1}


def test_a_channel_narrows_every_figure(engine: Engine, ids: dict[str, int]) -> None:
    found = dashboard(engine, channel="telegram")
    assert per_day(found) == [
        ("2026-11-20", 2, 5, 2, 1),
        ("2026-11-21", 0, 1, 2, 1),
        ("2026-11-22", 0, 0, 0, 0),
    ]
    assert (found.conversations, found.handed_off, found.handoffs) == (2, 1, 2)
    assert found.reasons == {"escalation": 1, "client_asked": 1}
    assert set(found.response) == {"tech", "billing"}
    assert found.ratings == {1: 0, 2: 1, 3: 0, 4: 0, 5: 0}
    assert (found.follow_up_tasks, found.follow_ups_done) == (1, 1)
    assert found.misunderstood == {"not_understood": 2}
    vk = dashboard(engine, channel="vk")
    assert per_day(vk) == [
        ("2026-11-20", 0, 1, 0, 1),
        ("2026-11-21", 1, 4, 4, 0),
        ("2026-11-22", 0, 0, 0, 0),
    ]
    assert vk.reasons == {"client_asked": 1, "stuck": 1}
    assert dashboard(engine, channel="max").days == [line.__class__(line.day, 0, 0, 0, 0) for line in vk.days]


def test_a_category_keeps_conversations_handed_to_it(engine: Engine, ids: dict[str, int]) -> None:
    tech = dashboard(engine, categories=["tech"])
    # c1 and c4 were handed to tech (c1 to billing too); their messages only.
    assert per_day(tech) == [
        ("2026-11-20", 1, 3, 2, 1),
        ("2026-11-21", 0, 0, 0, 0),
        ("2026-11-22", 1, 1, 1, 0),
    ]
    assert (tech.conversations, tech.handed_off, tech.handoffs) == (2, 2, 2)
    assert tech.reasons == {"escalation": 1, "scenario": 1}
    assert set(tech.response) == {"tech"}
    assert (tech.follow_up_tasks, tech.follow_ups_done) == (2, 1)
    assert [(s.scenario, s.conversations, s.tasks) for s in tech.scenarios] == [("no_internet", 2, 1)]
    team = dashboard(engine, categories=["billing", "sales"])
    assert team.handoffs == 3 and set(team.response) == {"billing", "sales"}
    assert team.conversations == 2  # c1 and c3; c6 started before the period
    nothing = dashboard(engine, categories=[])
    assert nothing.conversations == nothing.handoffs == nothing.incoming == 0


def test_the_period_moves_the_counts(engine: Engine, ids: dict[str, int]) -> None:
    one = dashboard(engine, date(2026, 11, 21), date(2026, 11, 21))
    assert per_day(one) == [("2026-11-21", 1, 5, 6, 1)]
    assert one.handoffs == 1 and one.reasons == {"client_asked": 1}
    later = dashboard(engine, date(2026, 11, 23), date(2026, 11, 23))
    assert per_day(later) == [("2026-11-23", 1, 5, 0, 1)]
    assert later.ratings[1] == 1 and later.follow_ups_due == 1
    empty = dashboard(engine, date(2026, 1, 1), date(2026, 1, 2))
    assert empty.conversations == empty.handoffs == 0 and empty.overall.median_s is None
    assert empty.personas == [] and empty.scenarios == []


def test_the_export_has_one_line_per_conversation(engine: Engine, ids: dict[str, int]) -> None:
    scope = Scope.local(FIRST, LAST, ZONE)
    # Small batches: the lines come from several reads, in the order the conversations started.
    lines = list(export_lines(engine, scope, NOW, batch=2))
    assert [line.conversation_id for line in lines] == [ids["c1"], ids["c2"], ids["c3"], ids["c4"]]
    c1, c2, c3, c4 = lines
    assert (c1.channel, c1.persona, c1.status, c1.handoffs) == ("telegram", "aggressor", "closed", 2)
    # The latest handoff's columns: c1 was handed to billing last, answered at exactly the target.
    assert (c1.reason, c1.category, c1.first_response_s, c1.breached, c1.rating) == (
        "client_asked", "billing", 120.0, False, None,
    )  # fmt: skip
    assert (c1.incoming, c1.outgoing) == (3, 2)
    assert c1.started == datetime(2026, 11, 19, 17, 30, tzinfo=UTC)
    assert (c2.handoffs, c2.reason, c2.first_response_s, c2.breached, c2.rating) == (0, "", None, None, None)
    assert (c2.incoming, c2.outgoing) == (3, 2)
    assert (c3.first_response_s, c3.breached, c3.rating, c3.incoming, c3.outgoing) == (300.0, True, 5, 4, 4)
    assert (c4.first_response_s, c4.breached, c4.reason) == (None, True, "scenario")
    telegram = [
        line.conversation_id for line in SqlAnalytics(engine).export(Scope(scope.days, "telegram"), NOW)
    ]
    assert telegram == [ids["c1"], ids["c2"]]


def test_local_days_follow_clock_changes() -> None:
    spring = Scope.local(date(2026, 3, 28), date(2026, 3, 30), "Europe/Berlin")
    assert [(d.stop - d.start).total_seconds() / 3600 for d in spring.days] == [24, 23, 24]
    assert spring.start == datetime(2026, 3, 27, 23, 0, tzinfo=UTC)
    assert spring.stop == datetime(2026, 3, 30, 22, 0, tzinfo=UTC)
    autumn = Scope.local(date(2026, 10, 25), date(2026, 10, 25), "Europe/Berlin")
    assert (autumn.stop - autumn.start) == timedelta(hours=25)
    with pytest.raises(ValueError):
        Scope.local(date(2026, 1, 2), date(2026, 1, 1), ZONE)


def test_percentiles_are_values_that_occurred() -> None:
    assert nearest_rank((), 90) is None
    assert nearest_rank((5.0,), 90) == 5.0
    ordered = tuple(float(n) for n in range(1, 11))
    assert nearest_rank(ordered, 90) == 9.0 and nearest_rank(ordered, 50) == 5.0
    assert nearest_rank((*ordered, 11.0), 90) == 10.0
    assert ResponseTimes.combine([]).median_s is None


def test_a_generated_history_matches_counts_made_from_its_rows(engine: Engine) -> None:
    shape = Shape(conversations=400, messages=6000, days=20, end=datetime(2026, 12, 1, tzinfo=UTC), seed=7)
    rows = generate(shape)
    write(engine, rows)
    zone = ZoneInfo(ZONE)
    last = (shape.end - timedelta(seconds=1)).astimezone(zone).date()
    first = last - timedelta(days=9)
    found = SqlAnalytics(engine).dashboard(Scope.local(first, last, ZONE), shape.end)

    def day(moment: datetime) -> date:
        return moment.astimezone(zone).date()

    def within(moment: datetime) -> bool:
        return first <= day(moment) <= last

    started = Counter(day(c[7]) for c in rows.conversations if within(c[7]))
    incoming = Counter(day(m[10]) for m in rows.messages if m[2] == "in" and within(m[10]))
    outgoing = Counter(day(m[10]) for m in rows.messages if m[2] == "out" and within(m[10]))
    missed = Counter(day(m[4]) for m in rows.misunderstood if within(m[4]))
    assert per_day(found) == [
        (
            (first + timedelta(days=n)).isoformat(),
            started[first + timedelta(days=n)],
            incoming[first + timedelta(days=n)],
            outgoing[first + timedelta(days=n)],
            missed[first + timedelta(days=n)],
        )
        for n in range(10)
    ]
    handed = [h for h in rows.handoffs if within(h[7])]
    assert found.handoffs == len(handed) > 0
    assert found.reasons == dict(Counter(str(h[2]) for h in handed))
    for category, times in found.response.items():
        mine = [h for h in handed if h[3] == category]
        waits = sorted(round((h[11] - h[7]).total_seconds(), 3) for h in mine if h[11] is not None)
        late = [h for h in mine if h[12] is not None or (h[11] is None and h[8] < shape.end)]
        assert times.durations == pytest.approx(tuple(waits), abs=0.002)
        assert (times.handoffs, times.answered, times.breached) == (len(mine), len(waits), len(late))
    ratings = Counter(h[14] for h in handed if h[14] is not None)
    assert found.ratings == {r: ratings.get(r, 0) for r in range(1, 6)}
    conversations = [c for c in rows.conversations if within(c[7])]
    with_people = {h[1] for h in rows.handoffs}
    assert found.conversations == len(conversations)
    assert found.handed_off == sum(1 for c in conversations if c[0] in with_people)
    assert {p.persona: p.conversations for p in found.personas if p.conversations} == dict(
        Counter(c[5] for c in conversations)
    )
